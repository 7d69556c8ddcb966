/**
 * Signal sources (`policies/signals/sources/*.yaml`, DESIGN.md "A portfolio of twins"): a broker
 * subscription whose messages become signals. `kind`, `id`, `type`, `url`, `subscribe` and
 * `format` are fixed by the design; the rest are per transport.
 */
import { z } from 'zod';

const Name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, { error: 'letters, digits, ".", "_" and "-" (at most 128), starting with a letter or digit' });
const EnvName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, { error: 'an environment variable name such as MQTT_PASSWORD' });

/** Where a signal field comes from in a plain JSON message: `$` (the whole message), `$.a.b` (a field), or a constant. */
const Pick = z.string().min(1).max(200);

export const SignalSourceSchema = z
  .object({
    kind: z.literal('SignalSource', { error: (iss) => (iss.input === undefined ? 'required' : 'kind must be SignalSource') }),
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, { error: 'source ids are lower-case letters, digits and "-", e.g. plant-mqtt' }),
    description: z.string().max(2000).optional(),
    type: z.enum(['mqtt', 'nats', 'amqp'], { error: 'type is mqtt, nats or amqp' }),
    /** The broker: mqtt://host:1883, nats://host:4222, amqp://host:5672/vhost; no credentials (use auth). */
    url: z.string().min(1).max(2000),
    /** MQTT topic filter, NATS subject filter, AMQP queue. */
    subscribe: z.string().min(1).max(1000),
    /** cloudevents: CloudEvents 1.0 (structured JSON, or binary mode from the headers); json: plain JSON mapped by `map`. */
    format: z.enum(['cloudevents', 'json'], { error: 'format is cloudevents or json' }),
    /** For format json: where the signal's fields are in a message. */
    map: z
      .object({ id: Pick, type: Pick, source: Pick.optional(), time: Pick.optional(), data: Pick.default('$') })
      .strict()
      .optional(),
    auth: z.object({ username: z.string().min(1).max(200), secretEnv: EnvName }).strict().optional(),
    /**
     * MQTT: the shared subscription group ($share/<group>/<topic>); NATS: the durable consumer
     * name. Processes with the same group share the messages. Default: regent-<id>.
     */
    group: Name.optional(),
    /** MQTT: the stable client id (persistent session); each process adds REGENT_INSTANCE (default: the host name). */
    clientId: Name.optional(),
    /** MQTT: how long the broker keeps the session (and its queued messages) while no process is connected, in seconds. */
    sessionExpirySeconds: z.number().int().min(60).max(4294967295).default(86400),
    /** NATS: the JetStream stream holding the subject. */
    stream: Name.optional(),
    /** NATS: seconds before an unacknowledged message is redelivered. */
    ackWaitSeconds: z.number().int().min(1).max(3600).default(30),
    /** AMQP: unacknowledged messages in flight per process; MQTT: parallel sessions in the shared group; NATS: messages pulled at once. */
    prefetch: z.number().int().min(1).max(1000).optional(),
    /** AMQP: declare the queue (durable, with deadLetter as its x-dead-letter-exchange); off when the broker's admin declares it. */
    declare: z.boolean().default(true),
    /** Where refused messages are copied: an MQTT topic, a NATS subject, an AMQP exchange (the queue's dead-letter exchange). */
    deadLetter: z.string().min(1).max(1000).optional(),
    /** Messages larger than this are refused (default REGENT_SIGNAL_MAX_BYTES, 1 MiB). */
    maxBytes: z.number().int().min(1024).max(256 * 1024 * 1024).optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const need = (cond: boolean, path: string, message: string) => {
      if (!cond) ctx.addIssue({ code: 'custom', path: [path], message });
    };
    const protocols: Record<string, string[]> = { mqtt: ['mqtt:', 'mqtts:', 'ws:', 'wss:'], nats: ['nats:', 'tls:'], amqp: ['amqp:', 'amqps:'] };
    let url: URL | undefined;
    try {
      url = new URL(s.url);
    } catch {
      need(false, 'url', `not a URL: ${s.url}`);
    }
    if (url) {
      need(protocols[s.type]!.includes(url.protocol), 'url', `a ${s.type} source's url starts with ${protocols[s.type]!.map((p) => `${p}//`).join(' or ')}`);
      need(!url.username && !url.password, 'url', 'url must not contain credentials; use auth.secretEnv');
    }
    need(s.format !== 'json' || s.map !== undefined, 'format', 'format json needs map: { id, type, data } saying where they are in a message');
    need(s.format !== 'cloudevents' || s.map === undefined, 'map', 'map is for format json; CloudEvents carry their own id and type');
    need(s.type === 'nats' || s.stream === undefined, 'stream', 'stream is for nats sources');
    need(s.type !== 'nats' || s.stream !== undefined, 'type', 'a nats source names its JetStream stream (stream: …)');
    need(s.type === 'mqtt' || s.clientId === undefined, 'clientId', 'clientId is for mqtt sources');
    if (s.type === 'mqtt') need(!s.subscribe.startsWith('$share/'), 'subscribe', 'give the topic filter; Regent subscribes as $share/<group>/<filter>');
    if (s.map) {
      for (const [k, v] of Object.entries(s.map)) {
        if (v.startsWith('$') && !/^\$(\.[A-Za-z0-9_-]+)*$/.test(v)) ctx.addIssue({ code: 'custom', path: ['map', k], message: `"${v}" is not a path: $ or $.field.field` });
      }
      need(s.map.data.startsWith('$'), 'map', 'map.data is a path ($ or $.field)');
    }
  });
export type SignalSourceDoc = z.output<typeof SignalSourceSchema>;

export interface SignalSourceConfig {
  doc: SignalSourceDoc;
  file: string;
  line: number;
  /** The password from auth.secretEnv. */
  password?: string;
}
