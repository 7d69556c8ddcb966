import amqp from 'amqplib';
import { createTestDatabase, type TestDatabase } from '../support/databases';
import { BROKERS, describeBroker, uniqueName, waitFor } from '../support/brokers';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { makePolicies, startRegent, type Harness } from '../objectives/support';
import { ce, journalOf, readyz, receivedCount, signalRow, writeSource } from './bus-support';

/** Signals from a durable RabbitMQ queue: prefetch, manual acks, refused messages dead-lettered by the broker. */
describeBroker('amqp')('signal sources: AMQP (RabbitMQ)', () => {
  const Q = uniqueName('regent-test-');
  let db: TestDatabase;
  let h: Harness;
  let proxy: TcpProxy;
  let conn: amqp.ChannelModel;
  let ch: amqp.Channel;
  const dead: { bytes: number; reason: unknown }[] = [];

  beforeAll(async () => {
    proxy = await startTcpProxy({ host: BROKERS.amqp.host, port: BROKERS.amqp.port });
    const policies = makePolicies();
    process.env.AMQP_TEST_PASSWORD = BROKERS.amqp.password;
    writeSource(
      policies,
      'rabbit-ce',
      `type: amqp\nurl: amqp://127.0.0.1:${proxy.port}\nsubscribe: ${Q}\nformat: cloudevents\nauth: { username: guest, secretEnv: AMQP_TEST_PASSWORD }\ndeadLetter: ${Q}.dead\nprefetch: 8\n`,
    );
    db = await createTestDatabase('embedded');
    h = await startRegent(db, policies, { signalSources: true });
    await waitFor('the AMQP source connected (it declares the queue)', async () => (await readyz(h)).status === 'ok');
    conn = await amqp.connect(`amqp://guest:guest@${BROKERS.amqp.host}:${BROKERS.amqp.port}`);
    ch = await conn.createChannel();
    await ch.assertQueue(`${Q}.dead.q`, { durable: false, autoDelete: true });
    await ch.bindQueue(`${Q}.dead.q`, `${Q}.dead`, '');
    await ch.consume(`${Q}.dead.q`, (m) => m && dead.push({ bytes: m.content.length, reason: (m.properties.headers?.['x-death'] as any)?.[0]?.reason }), { noAck: true });
  });

  afterAll(async () => {
    await h?.close();
    if (ch) {
      await ch.deleteQueue(Q).catch(() => undefined);
      await ch.deleteQueue(`${Q}.dead.q`).catch(() => undefined);
      await ch.deleteExchange(`${Q}.dead`).catch(() => undefined);
    }
    await conn?.close().catch(() => undefined);
    await proxy?.close();
    await db?.drop();
    delete process.env.AMQP_TEST_PASSWORD;
  });

  const structured = (event: object) => ch.sendToQueue(Q, Buffer.from(JSON.stringify(event)), { persistent: true, contentType: 'application/cloudevents+json' });

  it('takes structured and binary-mode (cloudEvents: headers) CloudEvents; a repeated id is one signal', async () => {
    structured(ce('mq-s-1'));
    const { data, ...attrs } = ce('mq-b-1');
    ch.sendToQueue(Q, Buffer.from(JSON.stringify(data)), {
      persistent: true,
      contentType: 'application/json',
      headers: Object.fromEntries(Object.entries(attrs).map(([k, v]) => [`cloudEvents:${k}`, v])),
    });
    for (let i = 0; i < 3; i++) structured(ce('mq-dup-1'));
    expect(await waitFor('mq-s-1', () => signalRow(h, 'mq-s-1'))).toMatchObject({ source: '/plant/berlin', payload: { asset: 'press-7' } });
    expect(await waitFor('mq-b-1', () => signalRow(h, 'mq-b-1'))).toMatchObject({ type: 'plant.reading_taken', payload: data });
    await waitFor('the repeats acknowledged', async () => h.regent.signalSources!.status()[0]!.repeats >= 2);
    expect(await receivedCount(h, 'mq-dup-1')).toBe(1);
  });

  it('refuses a CloudEvent without type and a 10 MB message: journaled, rejected to the dead-letter exchange, queue empty', async () => {
    const before = (await journalOf(h, 'signal.refused')).length;
    const { type: _t, ...noType } = ce('mq-no-type');
    structured(noType);
    ch.sendToQueue(Q, Buffer.alloc(10 * 1024 * 1024, 'z'), { persistent: true });
    const refused = await waitFor('two refusals', async () => {
      const r = (await journalOf(h, 'signal.refused')).slice(before);
      return r.length >= 2 && r;
    });
    expect(refused.map((e) => e.data.reason).sort()).toEqual(['message of 10485760 bytes is over the limit of 1048576 bytes', 'not a CloudEvent (structured mode): no type']);
    expect(refused.find((e) => e.data.id === 'mq-no-type')!.data).toMatchObject({ via: 'rabbit-ce', deadLetter: `${Q}.dead` });
    await waitFor('two dead letters', async () => dead.length >= 2);
    expect(dead.map((d) => d.reason)).toEqual(['rejected', 'rejected']);
    const q = await ch.checkQueue(Q);
    expect(q.messageCount).toBe(0);
  });

  it('names the source in /readyz while its connection is cut, and takes what was queued meanwhile', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `mq-gap-${i}`);
    for (const [i, id] of ids.entries()) {
      if (i === 10) {
        proxy.cut();
        const r = await waitFor('degraded', async () => {
          const r = await readyz(h);
          return r.status === 'degraded' && r;
        });
        expect(r.reason).toMatch(/signal source rabbit-ce \(amqp\) is not connected/);
      }
      structured(ce(id));
    }
    proxy.restore();
    await waitFor('reconnected', async () => (await readyz(h)).status === 'ok', 30_000);
    await waitFor('every signal queued across the gap', async () => {
      for (const id of ids) if (!(await signalRow(h, id))) return false;
      return true;
    }, 30_000);
    for (const id of ids) expect(await receivedCount(h, id)).toBe(1);
  });
});
