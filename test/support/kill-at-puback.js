// Preloaded (node --require) into a `regent serve` child by the signal-source crash test: the
// process SIGKILLs itself the moment mqtt.js is about to send its first PUBACK, that is after the
// signal was journaled and before the broker heard it was taken.
const { MqttClient } = require('mqtt');
const send = MqttClient.prototype._sendPacket;
MqttClient.prototype._sendPacket = function (packet, ...rest) {
  if (packet && packet.cmd === 'puback' && process.env.REGENT_TEST_KILL_AT_PUBACK === '1') process.kill(process.pid, 'SIGKILL');
  return send.call(this, packet, ...rest);
};
