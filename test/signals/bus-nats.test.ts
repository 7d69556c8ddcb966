import { connect, headers, type JetStreamClient, type NatsConnection } from 'nats';
import { createTestDatabase, type TestDatabase } from '../support/databases';
import { BROKERS, describeBroker, uniqueName, waitFor } from '../support/brokers';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { makePolicies, startRegent, type Harness } from '../objectives/support';
import { ce, journalOf, readyz, receivedCount, signalRow, writeSource } from './bus-support';

/** Signals from a JetStream stream on the machine's nats-server: a durable consumer, explicit acks. */
describeBroker('nats')('signal sources: NATS JetStream', () => {
  const S = uniqueName('REGENT_TEST_');
  let db: TestDatabase;
  let h: Harness;
  let proxy: TcpProxy;
  let nc: NatsConnection;
  let js: JetStreamClient;
  const dead: number[] = [];

  beforeAll(async () => {
    nc = await connect({ servers: BROKERS.nats.url });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: S, subjects: [`${S}.>`] });
    js = nc.jetstream();
    const sub = nc.subscribe(`${S}_dead`);
    void (async () => {
      for await (const m of sub) dead.push(m.data.length);
    })();
    proxy = await startTcpProxy({ host: BROKERS.nats.host, port: BROKERS.nats.port });
    const policies = makePolicies();
    writeSource(policies, 'js-ce', `type: nats\nurl: nats://127.0.0.1:${proxy.port}\nsubscribe: ${S}.ce.>\nstream: ${S}\nformat: cloudevents\ngroup: regent-${S}\ndeadLetter: ${S}_dead\nmaxBytes: 4096\nackWaitSeconds: 5\n`);
    db = await createTestDatabase('embedded');
    h = await startRegent(db, policies, { signalSources: true });
    await waitFor('the NATS source connected', async () => (await readyz(h)).status === 'ok');
  });

  afterAll(async () => {
    await h?.close();
    await (await nc?.jetstreamManager())?.streams.delete(S).catch(() => undefined);
    await nc?.close();
    await proxy?.close();
    await db?.drop();
  });

  const structured = (subject: string, event: object) => {
    const hdrs = headers();
    hdrs.set('Content-Type', 'application/cloudevents+json');
    return js.publish(subject, JSON.stringify(event), { headers: hdrs });
  };

  it('takes structured and binary-mode (ce- headers) CloudEvents; a repeated id is one signal', async () => {
    await structured(`${S}.ce.a`, ce('js-s-1'));
    const { data, ...attrs } = ce('js-b-1');
    const hdrs = headers();
    for (const [k, v] of Object.entries(attrs)) hdrs.set(`ce-${k}`, String(v));
    hdrs.set('Content-Type', 'application/json');
    await js.publish(`${S}.ce.b`, JSON.stringify(data), { headers: hdrs });
    for (let i = 0; i < 3; i++) await structured(`${S}.ce.a`, ce('js-dup-1'));
    expect(await waitFor('js-s-1', () => signalRow(h, 'js-s-1'))).toMatchObject({ source: '/plant/berlin', payload: { asset: 'press-7' } });
    expect(await waitFor('js-b-1', () => signalRow(h, 'js-b-1'))).toMatchObject({ type: 'plant.reading_taken', payload: data });
    await waitFor('js-dup-1', () => signalRow(h, 'js-dup-1'));
    await waitFor('the repeats acknowledged', async () => h.regent.signalSources!.status()[0]!.repeats >= 2);
    expect(await receivedCount(h, 'js-dup-1')).toBe(1);
  });

  it('refuses a CloudEvent without id and one over the size cap: journaled, acked (never redelivered), dead-lettered', async () => {
    const before = (await journalOf(h, 'signal.refused')).length;
    const { id: _id, ...noId } = ce('x');
    await structured(`${S}.ce.bad`, noId);
    await js.publish(`${S}.ce.big`, Buffer.alloc(100_000, 'y'));
    const refused = await waitFor('two refusals', async () => {
      const r = (await journalOf(h, 'signal.refused')).slice(before);
      return r.length >= 2 && r;
    });
    expect(refused.map((e) => e.data.reason).sort()).toEqual(['message of 100000 bytes is over the limit of 4096 bytes', 'not a CloudEvent (structured mode): no id']);
    await waitFor('two dead letters', async () => dead.length >= 2);
    // Past the ack wait (5 s) an unacknowledged message would have come back.
    await new Promise((r) => setTimeout(r, 6000));
    const info = await (await nc.jetstreamManager()).consumers.info(S, `regent-${S}`);
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_redelivered).toBe(0);
    expect((await journalOf(h, 'signal.refused')).length).toBe(before + 2);
  });

  it('names the source in /readyz while its connection is cut, and takes what was published meanwhile', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `js-gap-${i}`);
    for (const [i, id] of ids.entries()) {
      if (i === 10) {
        proxy.cut();
        const r = await waitFor('degraded', async () => {
          const r = await readyz(h);
          return r.status === 'degraded' && r;
        });
        expect(r.reason).toMatch(/signal source js-ce \(nats\) is not connected/);
      }
      await structured(`${S}.ce.gap`, ce(id));
    }
    proxy.restore();
    await waitFor('reconnected', async () => (await readyz(h)).status === 'ok', 30_000);
    await waitFor('every signal published across the gap', async () => {
      for (const id of ids) if (!(await signalRow(h, id))) return false;
      return true;
    }, 30_000);
    for (const id of ids) expect(await receivedCount(h, id)).toBe(1);
  });
});
