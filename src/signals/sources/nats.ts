/**
 * NATS JetStream: a durable pull consumer (named by `group`, default regent-<id>) with explicit
 * acks on the source's stream, filtered by `subscribe`. Every process with the same durable name
 * pulls from the same consumer, so each message goes to one of them; an unacknowledged message
 * is delivered again after ackWaitSeconds. The stream itself is the broker's (not created here);
 * the consumer is created when missing.
 */
import { AckPolicy, DeliverPolicy, connect, nanos, type JsMsg, type NatsConnection } from 'nats';
import type { Transport, TransportContext } from './runner';
import { backoff, sleep } from './runner';

/** CloudEvents NATS binding, binary mode: `ce-` headers. */
function attributesOf(m: JsMsg): { attributes?: Record<string, string>; contentType?: string } {
  const h = m.headers;
  if (!h) return {};
  const out: Record<string, string> = {};
  let contentType: string | undefined;
  for (const k of h.keys()) {
    const lower = k.toLowerCase();
    if (lower === 'content-type') contentType = h.get(k);
    else if (lower.startsWith('ce-')) out[lower.slice(3)] = h.get(k);
  }
  return { ...(out.specversion !== undefined ? { attributes: out } : {}), ...(contentType ? { contentType } : {}) };
}

export function natsTransport(ctx: TransportContext): Transport {
  const doc = ctx.source.doc;
  const durable = doc.group ?? `regent-${doc.id}`;
  const stream = doc.stream!;
  const inFlightMax = Math.max(1, doc.prefetch ?? 64);
  let nc: NatsConnection | undefined;
  let loop: Promise<void> | undefined;

  async function ensureConsumer(conn: NatsConnection) {
    const jsm = await conn.jetstreamManager();
    try {
      await jsm.consumers.info(stream, durable);
    } catch (err) {
      if (!/consumer not found|10014/i.test(String((err as Error).message ?? err))) throw err;
      await jsm.consumers.add(stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: doc.subscribe,
        ack_wait: nanos(doc.ackWaitSeconds * 1000),
        max_ack_pending: 10_000,
      });
      ctx.log.info('created the JetStream durable consumer', { source: doc.id, stream, durable });
    }
  }

  async function session(conn: NatsConnection) {
    await ensureConsumer(conn);
    const consumer = await conn.jetstream().consumers.get(stream, durable);
    const messages = await consumer.consume({ max_messages: inFlightMax });
    ctx.connected(true);
    void (async () => {
      for await (const s of conn.status()) {
        if (s.type === 'disconnect') ctx.connected(false, new Error(`disconnected from ${doc.url}`));
        else if (s.type === 'reconnect') ctx.connected(true);
      }
    })().catch(() => undefined);
    let active = 0;
    let freed: (() => void) | undefined;
    const closed = conn.closed().then(() => messages.stop());
    for await (const m of messages) {
      if (!ctx.running()) break;
      while (active >= inFlightMax) await new Promise<void>((r) => (freed = r));
      active++;
      const { attributes, contentType } = attributesOf(m);
      void ctx
        .handle({
          msg: { body: Buffer.from(m.data), ...(attributes ? { attributes } : {}), ...(contentType ? { contentType } : {}) },
          // On a connection that closed, the message is the server's again (redelivered after ackWait).
          ack: async () => {
            if (!conn.isClosed()) await m.ackAck();
          },
          refuse: async () => {
            if (conn.isClosed()) return;
            if (doc.deadLetter) {
              // A plain publish (a JetStream stream may capture the dead-letter subject).
              conn.publish(doc.deadLetter, m.data, m.headers ? { headers: m.headers } : {});
              await conn.flush();
            }
            await m.ackAck();
          },
        })
        .finally(() => {
          active--;
          freed?.();
          freed = undefined;
        });
    }
    await closed.catch(() => undefined);
  }

  return {
    start() {
      loop = (async () => {
        for (let attempt = 0; ctx.running(); attempt++) {
          try {
            nc = await connect({
              servers: doc.url,
              name: `regent-${doc.id}-${ctx.instance}`,
              reconnect: true,
              maxReconnectAttempts: -1,
              reconnectTimeWait: 1000,
              reconnectJitter: 500,
              timeout: 10_000,
              ...(doc.auth ? { user: doc.auth.username, pass: ctx.source.password } : {}),
            });
            attempt = 0;
            await session(nc);
          } catch (err) {
            if (!ctx.running()) break;
            ctx.connected(false, err);
          }
          await nc?.close().catch(() => undefined);
          nc = undefined;
          if (!ctx.running()) break;
          await sleep(backoff(attempt));
        }
      })();
    },
    async stop() {
      await nc?.drain().catch(() => nc?.close());
      await Promise.race([loop, sleep(3000)]);
      ctx.connected(false, new Error('stopped'));
    },
  };
}
