/**
 * AMQP 0-9-1 (RabbitMQ): a durable queue (declared with `deadLetter` as its
 * x-dead-letter-exchange unless `declare: false`), `prefetch` unacknowledged messages per
 * process, manual acks. Several processes consuming the queue compete for its messages. A refused
 * message is rejected without requeue, which the broker dead-letters to the queue's exchange.
 */
import amqp from 'amqplib';
import type { Transport, TransportContext } from './runner';
import { backoff, sleep } from './runner';

/** Binary-mode CloudEvents attributes from AMQP headers: cloudEvents:x (AMQP binding), cloudEvents_x (JMS), ce-x / ce_x. */
function attributesOf(headers: Record<string, unknown> | undefined): Record<string, string> | undefined {
  if (!headers) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    const m = /^(?:cloudevents[:_]|ce[-_])(.+)$/i.exec(k);
    if (m && v !== undefined && v !== null) out[m[1]!.toLowerCase()] = Buffer.isBuffer(v) ? v.toString('utf8') : v instanceof Date ? v.toISOString() : String(v);
  }
  return out.specversion !== undefined ? out : undefined;
}

export function amqpTransport(ctx: TransportContext): Transport {
  const doc = ctx.source.doc;
  let conn: amqp.ChannelModel | undefined;
  let loop: Promise<void> | undefined;

  function url(): string {
    const u = new URL(doc.url);
    if (doc.auth) {
      u.username = doc.auth.username;
      u.password = ctx.source.password ?? '';
    }
    // A dead peer is noticed within ~20 s rather than the OS's TCP timeout.
    if (!u.searchParams.has('heartbeat')) u.searchParams.set('heartbeat', '10');
    return u.toString();
  }

  async function session(): Promise<void> {
    conn = await amqp.connect(url(), { clientProperties: { connection_name: `regent-${doc.id}-${ctx.instance}` } });
    const c = conn;
    const closed = new Promise<void>((resolve) => {
      c.on('close', () => resolve());
      c.on('error', (err) => ctx.connected(false, err));
    });
    const ch = await c.createChannel();
    let open = true;
    ch.on('error', (err) => ctx.log.warn('AMQP channel error', { source: doc.id, error: err }));
    ch.on('close', () => {
      open = false;
      void c.close().catch(() => undefined);
    });
    // A delivery on a channel that closed is the broker's again (it redelivers it): nothing to settle.
    const settle = (f: () => void) => async () => {
      if (open) f();
    };
    if (doc.declare) {
      if (doc.deadLetter) await ch.assertExchange(doc.deadLetter, 'fanout', { durable: true });
      await ch.assertQueue(doc.subscribe, { durable: true, ...(doc.deadLetter ? { arguments: { 'x-dead-letter-exchange': doc.deadLetter } } : {}) });
    }
    await ch.prefetch(doc.prefetch ?? 32);
    await ch.consume(
      doc.subscribe,
      (m) => {
        if (!m) return; // cancelled by the broker (queue deleted): the connection is closed below
        const headers = m.properties.headers as Record<string, unknown> | undefined;
        const attributes = attributesOf(headers);
        void ctx.handle({
          msg: { body: m.content, ...(m.properties.contentType ? { contentType: String(m.properties.contentType) } : {}), ...(attributes ? { attributes } : {}) },
          ack: settle(() => ch.ack(m)),
          refuse: settle(() => ch.nack(m, false, false)),
        });
      },
      { noAck: false },
    );
    ch.on('cancel', () => void c.close().catch(() => undefined));
    ctx.connected(true);
    await closed;
    conn = undefined;
    if (ctx.running()) ctx.connected(false, new Error(`connection to ${doc.url} closed`));
  }

  return {
    start() {
      loop = (async () => {
        for (let attempt = 0; ctx.running(); attempt++) {
          try {
            await session();
            attempt = 0;
          } catch (err) {
            await conn?.close().catch(() => undefined);
            conn = undefined;
            if (!ctx.running()) break;
            ctx.connected(false, err);
          }
          if (!ctx.running()) break;
          await sleep(backoff(attempt));
        }
      })();
    },
    async stop() {
      await conn?.close().catch(() => undefined);
      await Promise.race([loop, sleep(3000)]);
      ctx.connected(false, new Error('stopped'));
    },
  };
}
