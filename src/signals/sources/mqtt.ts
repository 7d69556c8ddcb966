/**
 * MQTT 5 (Mosquitto and others): QoS 1 on a persistent session (clean start off, a session expiry,
 * a client id stable across restarts) so the broker keeps what arrives while Regent is away, and
 * a shared subscription `$share/<group>/<filter>` so several processes split the messages. The
 * PUBACK goes out only once the signal is journaled: mqtt.js sends it when `handleMessage`
 * calls back. `prefetch` opens that many sessions in the group (messages in parallel).
 */
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import type { Transport, TransportContext } from './runner';
import { backoff } from './runner';

/** CloudEvents MQTT binding: binary mode puts the attributes in MQTT 5 user properties, named as they are. */
function attributesOf(packet: IPublishPacket): Record<string, string> | undefined {
  const props = packet.properties?.userProperties;
  if (!props) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(props)) {
    const name = k.toLowerCase().replace(/^ce[-_]/, '');
    out[name] = Array.isArray(v) ? String(v[0]) : String(v);
  }
  return out.specversion !== undefined ? out : undefined;
}

export function mqttTransport(ctx: TransportContext): Transport {
  const doc = ctx.source.doc;
  const sessions = Math.max(1, doc.prefetch ?? 1);
  const group = doc.group ?? `regent-${doc.id}`;
  const filter = `$share/${group}/${doc.subscribe}`;
  const clients: MqttClient[] = [];
  let deadLetters: MqttClient | undefined;
  const up = new Set<number>();
  const report = (error?: unknown) => ctx.connected(up.size === sessions, error);

  function open(i: number): MqttClient {
    const clientId = `${doc.clientId ?? `regent-${doc.id}`}-${ctx.instance}${sessions > 1 ? `-${i}` : ''}`.slice(0, 128);
    let attempt = 0;
    const client = mqtt.connect(doc.url, {
      clientId,
      protocolVersion: 5,
      clean: false,
      properties: { sessionExpiryInterval: doc.sessionExpirySeconds },
      reconnectPeriod: backoff(0),
      connectTimeout: 10_000,
      keepalive: 15,
      resubscribe: false,
      ...(doc.auth ? { username: doc.auth.username, password: ctx.source.password } : {}),
    });
    client.on('connect', (connack) => {
      attempt = 0;
      client.options.reconnectPeriod = backoff(0);
      // Subscribing again on a session that has it is harmless; a new session needs it.
      client.subscribe(filter, { qos: 1 }, (err, granted) => {
        const refused = granted?.find((g) => g.qos > 2);
        if (err || refused) {
          ctx.log.error('MQTT subscription refused', { source: doc.id, filter, error: err ?? `reason code ${refused?.qos}` });
          up.delete(i);
          report(err ?? new Error(`subscription to ${filter} refused (reason code ${refused?.qos})`));
          return;
        }
        up.add(i);
        report();
      });
      if (!connack.sessionPresent) ctx.log.info('MQTT session started', { source: doc.id, clientId });
    });
    const down = (err?: unknown) => {
      if (up.delete(i) || err) report(err ?? new Error('connection closed'));
    };
    client.on('close', () => {
      client.options.reconnectPeriod = backoff(++attempt);
      down();
    });
    client.on('offline', () => down());
    client.on('error', (err) => down(err));
    client.handleMessage = (packet: IPublishPacket, callback: (err?: Error) => void) => {
      const body = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
      let settled = false;
      const done = async () => {
        if (settled) return;
        settled = true;
        callback(); // mqtt.js sends the PUBACK now
      };
      void ctx.handle({
        msg: { body, contentType: packet.properties?.contentType, attributes: attributesOf(packet) },
        ack: done,
        refuse: async () => {
          if (doc.deadLetter && deadLetters) {
            // On a connection of its own: this one's PUBACKs wait behind the message in hand.
            await deadLetters.publishAsync(doc.deadLetter, body, {
              qos: 1,
              properties: { ...(packet.properties?.contentType ? { contentType: packet.properties.contentType } : {}), userProperties: { ...(packet.properties?.userProperties ?? {}), 'regent-source': doc.id, 'regent-topic': packet.topic } },
            });
          }
          await done();
        },
      });
    };
    return client;
  }

  return {
    start() {
      if (doc.deadLetter) {
        deadLetters = mqtt.connect(doc.url, {
          clientId: `regent-${doc.id}-${ctx.instance}-dead-letters`.slice(0, 128),
          protocolVersion: 5,
          clean: true,
          reconnectPeriod: 1000,
          connectTimeout: 10_000,
          ...(doc.auth ? { username: doc.auth.username, password: ctx.source.password } : {}),
        });
        deadLetters.on('error', (err) => ctx.log.warn('MQTT dead-letter connection', { source: doc.id, error: err }));
      }
      for (let i = 0; i < sessions; i++) clients.push(open(i));
    },
    async stop() {
      // Not a clean-session end: the session (and what is unacknowledged) stays with the broker.
      await Promise.all(
        clients.map((c) =>
          Promise.race([c.endAsync(false), new Promise((r) => setTimeout(r, 2000).unref())])
            .catch(() => undefined)
            .then(() => c.end(true)),
        ),
      );
      clients.length = 0;
      up.clear();
      await deadLetters?.endAsync(true).catch(() => undefined);
      deadLetters = undefined;
      ctx.connected(false, new Error('stopped'));
    },
  };
}
