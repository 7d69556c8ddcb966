import mqtt, { type MqttClient } from 'mqtt';
import { createTestDatabase, type TestDatabase } from '../support/databases';
import { BROKERS, describeBroker, uniqueName, waitFor } from '../support/brokers';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { addPeople, addTwin, makePolicies, startRegent, type Harness } from '../objectives/support';
import { ce, failure, journalOf, readyz, receivedCount, signalRow, writeSource } from './bus-support';

/**
 * Signals over MQTT 5 from the machine's Mosquitto, through a TCP proxy the test can cut: QoS 1
 * on a persistent session with a shared subscription, acknowledged once journaled.
 */
describeBroker('mqtt')('signal sources: MQTT (Mosquitto)', () => {
  const T = uniqueName('regent-test/');
  const instance = uniqueName('jest-');
  let db: TestDatabase;
  let h: Harness;
  let proxy: TcpProxy;
  let pub: MqttClient;
  let dead: MqttClient;
  const deadLettered: { topic: string; bytes: number; props: Record<string, unknown> }[] = [];
  let keys: Record<string, string>;

  beforeAll(async () => {
    proxy = await startTcpProxy({ host: BROKERS.mqtt.host, port: BROKERS.mqtt.port });
    const policies = makePolicies();
    const url = `mqtt://127.0.0.1:${proxy.port}`;
    writeSource(policies, 'mq-ce', `type: mqtt\nurl: ${url}\nsubscribe: ${T}/ce/#\nformat: cloudevents\ngroup: g-${instance}\ndeadLetter: ${T}/dead\nsessionExpirySeconds: 60\nmaxBytes: 1048576\n`);
    writeSource(policies, 'mq-json', `type: mqtt\nurl: ${url}\nsubscribe: ${T}/json\nformat: json\nmap: { id: $.eventId, type: plant.reading_taken, source: $.plant, time: $.at, data: $.reading }\nsessionExpirySeconds: 60\n`);
    process.env.REGENT_INSTANCE = instance;
    db = await createTestDatabase('embedded');
    h = await startRegent(db, policies, { signalSources: true, env: { REGENT_AGENT_RATE_PER_MINUTE: '1000' } });
    keys = await addPeople(h);
    keys['ops-twin'] = await addTwin(h, keys.olga!, 'olga', 'ops-twin', 'execute');
    pub = await mqtt.connectAsync(BROKERS.mqtt.url, { protocolVersion: 5, clientId: `${instance}-pub` });
    dead = await mqtt.connectAsync(BROKERS.mqtt.url, { protocolVersion: 5, clientId: `${instance}-dead` });
    dead.on('message', (topic, payload, packet) => deadLettered.push({ topic, bytes: payload.length, props: (packet.properties?.userProperties ?? {}) as Record<string, unknown> }));
    await dead.subscribeAsync(`${T}/dead`, { qos: 1 });
    await waitFor('both MQTT sources connected', async () => (await readyz(h)).status === 'ok');
  });

  afterAll(async () => {
    await h?.close();
    await pub?.endAsync();
    await dead?.endAsync();
    // Forget the persistent sessions this run made on the shared broker.
    for (const id of [`regent-mq-ce-${instance}`, `regent-mq-json-${instance}`]) {
      const c = await mqtt.connectAsync(BROKERS.mqtt.url, { protocolVersion: 5, clientId: id, clean: true }).catch(() => undefined);
      await c?.endAsync();
    }
    await proxy?.close();
    await db?.drop();
    delete process.env.REGENT_INSTANCE;
  });

  const publish = (topic: string, body: string | Buffer, properties: mqtt.IClientPublishOptions['properties'] = {}) =>
    pub.publishAsync(topic, body, { qos: 1, properties });

  it('takes a structured CloudEvent, journals it and starts the objective its rule names', async () => {
    await publish(`${T}/ce/press-7`, JSON.stringify(failure('mq-s-1')), { contentType: 'application/cloudevents+json' });
    const row = await waitFor('signal mq-s-1', () => signalRow(h, 'mq-s-1'));
    expect(row).toMatchObject({ source: '/plant/berlin', type: 'machine.failure_predicted', payload: { asset: 'press-7' } });
    expect(row.result.objectives).toEqual([expect.objectContaining({ twin: 'ops-twin', playbook: 'maintenance-from-prediction', rule: 'failure-prediction-urgent' })]);
    const [entry] = (await journalOf(h, 'signal.received')).filter((e) => e.subject === 'signal:mq-s-1');
    expect(entry).toMatchObject({ actor: 'source:mq-ce', data: { type: 'machine.failure_predicted', source: '/plant/berlin' } });
  });

  it('takes a binary-mode CloudEvent (MQTT 5 user properties), and plain JSON by the source map', async () => {
    const { data, ...attrs } = ce('mq-b-1');
    await publish(`${T}/ce/x`, JSON.stringify(data), { contentType: 'application/json', userProperties: attrs as Record<string, string> });
    await publish(`${T}/json`, JSON.stringify({ eventId: 'mq-j-1', plant: 'plant-hamburg', at: '2026-11-20T07:00:00Z', reading: { asset: 'pump-3', reading: 7 } }));
    expect(await waitFor('signal mq-b-1', () => signalRow(h, 'mq-b-1'))).toMatchObject({ source: '/plant/berlin', type: 'plant.reading_taken', payload: data });
    expect(await waitFor('signal mq-j-1', () => signalRow(h, 'mq-j-1'))).toMatchObject({ source: 'plant-hamburg', payload: { asset: 'pump-3', reading: 7 } });
  });

  it('journals one signal for a repeated event id', async () => {
    for (let i = 0; i < 3; i++) await publish(`${T}/ce/dup`, JSON.stringify(ce('mq-dup-1')), { contentType: 'application/cloudevents+json' });
    await publish(`${T}/ce/dup`, JSON.stringify(ce('mq-after-dup')), { contentType: 'application/cloudevents+json' });
    await waitFor('the message after the repeats', () => signalRow(h, 'mq-after-dup'));
    expect(await receivedCount(h, 'mq-dup-1')).toBe(1);
  });

  it('refuses a CloudEvent without id or type, and a 10 MB message: journaled, acknowledged, dead-lettered, not delivered again', async () => {
    const before = (await journalOf(h, 'signal.refused')).length;
    const { id: _id, ...noId } = ce('x');
    const { type: _type, ...noType } = ce('mq-no-type');
    await publish(`${T}/ce/bad`, JSON.stringify(noId), { contentType: 'application/cloudevents+json' });
    await publish(`${T}/ce/bad`, JSON.stringify(noType), { contentType: 'application/cloudevents+json' });
    const big = Buffer.alloc(10 * 1024 * 1024, 'x');
    await publish(`${T}/ce/big`, big);
    const refused = await waitFor("three refusals", async () => {
      const r = (await journalOf(h, 'signal.refused')).slice(before);
      return r.length >= 3 && r;
    });
    expect(refused.map((e) => e.data.reason)).toEqual([
      'not a CloudEvent (structured mode): no id',
      'not a CloudEvent (structured mode): no type',
      'message of 10485760 bytes is over the limit of 1048576 bytes',
    ]);
    expect(refused[1]).toMatchObject({ actor: 'source:mq-ce', data: { id: 'mq-no-type', type: null, via: 'mq-ce', deadLetter: `${T}/dead` } });
    expect(refused[2]!.data).toMatchObject({ bytes: 10485760, excerpt: 'x'.repeat(200) });
    await waitFor('three dead letters', async () => deadLettered.length >= 3);
    expect(deadLettered.map((d) => d.bytes)).toEqual([Buffer.byteLength(JSON.stringify(noId)), Buffer.byteLength(JSON.stringify(noType)), 10485760]);
    expect(deadLettered[0]!.props).toMatchObject({ 'regent-source': 'mq-ce', 'regent-topic': `${T}/ce/bad` });
    // Acknowledged: a new session of the same client gets nothing again.
    await h.regent.signalSources!.stop();
    h.regent.signalSources!.start();
    await waitFor('reconnected', async () => (await readyz(h)).status === 'ok');
    await publish(`${T}/ce/bad`, JSON.stringify(ce('mq-marker-1')), { contentType: 'application/cloudevents+json' });
    await waitFor('the marker', () => signalRow(h, 'mq-marker-1'));
    expect((await journalOf(h, 'signal.refused')).length).toBe(before + 3);
  });

  it('names a source that lost its broker in /readyz, reconnects, and loses nothing published meanwhile', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `mq-gap-${i}`);
    for (const [i, id] of ids.entries()) {
      if (i === 10) {
        proxy.cut();
        const r = await waitFor('degraded', async () => {
          const r = await readyz(h);
          return r.status === 'degraded' && /mq-ce/.test(r.reason) && r;
        });
        expect(r.httpStatus).toBe(200);
        expect(r.reason).toMatch(/signal source mq-ce \(mqtt\) is not connected/);
        expect(r.signalSources.find((s: any) => s.id === 'mq-ce')).toMatchObject({ connected: false });
      }
      await publish(`${T}/ce/gap`, JSON.stringify(ce(id)), { contentType: 'application/cloudevents+json' });
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
