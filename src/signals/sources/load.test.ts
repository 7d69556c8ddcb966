import { formatProblem } from '../../yaml/problems';
import { loadSourcesFrom } from './load';

const FILE = 'policies/signals/sources/plant.yaml';
const errorsOf = (text: string, env: Record<string, string> = {}) => {
  const r = loadSourcesFrom([{ file: FILE, text }], env);
  return r.ok ? [] : r.errors.map(formatProblem);
};

const mqtt = `kind: SignalSource
id: plant-mqtt
type: mqtt
url: mqtt://127.0.0.1:1883
subscribe: plant/+/predictions
format: cloudevents
group: regent
deadLetter: regent/dead
`;

describe('signal sources (policies/signals/sources)', () => {
  it('loads the three transports with their defaults', () => {
    const r = loadSourcesFrom(
      [
        { file: FILE, text: mqtt },
        {
          file: 'policies/signals/sources/js.yaml',
          text: `kind: SignalSource\nid: plant-nats\ntype: nats\nurl: nats://127.0.0.1:4222\nsubscribe: plant.>\nstream: PLANT\nformat: json\nmap: { id: $.eventId, type: machine.failure_predicted, data: $.reading }\n`,
        },
        {
          file: 'policies/signals/sources/rabbit.yaml',
          text: `kind: SignalSource\nid: plant-amqp\ntype: amqp\nurl: amqp://127.0.0.1:5672\nsubscribe: plant-signals\nformat: cloudevents\nauth: { username: guest, secretEnv: RABBIT_PASSWORD }\nprefetch: 8\n`,
        },
      ],
      { RABBIT_PASSWORD: 'guest' },
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.sources.map((s) => [s.doc.id, s.doc.type, s.line])).toEqual([
      ['plant-mqtt', 'mqtt', 2],
      ['plant-nats', 'nats', 2],
      ['plant-amqp', 'amqp', 2],
    ]);
    expect(r.sources[0]!.doc).toMatchObject({ sessionExpirySeconds: 86400, declare: true });
    expect(r.sources[1]!.doc.map).toEqual({ id: '$.eventId', type: 'machine.failure_predicted', data: '$.reading' });
    expect(r.sources[2]!.password).toBe('guest');
  });

  it('refuses a broken source with file:line', () => {
    expect(errorsOf(mqtt.replace('type: mqtt', 'type: kafka'))).toEqual([`${FILE}:3: type: type is mqtt, nats or amqp`]);
    expect(errorsOf(mqtt.replace('mqtt://127.0.0.1:1883', 'mqtt://u:p@127.0.0.1:1883'))).toEqual([`${FILE}:4: url: url must not contain credentials; use auth.secretEnv`]);
    expect(errorsOf(mqtt.replace('mqtt://', 'amqp://'))).toEqual([`${FILE}:4: url: a mqtt source's url starts with mqtt:// or mqtts:// or ws:// or wss://`]);
    expect(errorsOf(mqtt.replace('format: cloudevents', 'format: json'))).toEqual([
      `${FILE}:6: format: format json needs map: { id, type, data } saying where they are in a message`,
    ]);
    expect(errorsOf(mqtt.replace('plant/+/predictions', '$share/g/plant/#'))).toEqual([
      `${FILE}:5: subscribe: give the topic filter; Regent subscribes as $share/<group>/<filter>`,
    ]);
    expect(errorsOf(mqtt + 'auth: { username: regent, secretEnv: MQTT_PASSWORD }\n')).toEqual([
      `${FILE}:9: environment variable MQTT_PASSWORD (auth.secretEnv) is not set; set it, or rename the file to *.yaml.example to disable source plant-mqtt`,
    ]);
    expect(errorsOf(mqtt.replace('type: mqtt', 'type: nats').replace('mqtt://', 'nats://'))).toEqual([`${FILE}:3: type: a nats source names its JetStream stream (stream: …)`]);
    expect(errorsOf(mqtt + 'qos: 2\n')[0]).toMatch(new RegExp(`^${FILE}:9: .*qos`));
    expect(errorsOf(`${mqtt}---\n${mqtt}`)).toEqual([`${FILE}:11: duplicate signal source id "plant-mqtt" (also in ${FILE}:2)`]);
  });
});
