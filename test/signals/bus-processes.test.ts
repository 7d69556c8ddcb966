import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import mqtt from 'mqtt';
import { Client } from 'pg';
import { call } from '../support/api';
import { BROKERS, describeBroker, uniqueName, waitFor } from '../support/brokers';
import { startServe } from '../support/cli';
import { createTestDatabase, POSTGRES_ENABLED, tmpDir, type TestDatabase } from '../support/databases';
import { makePolicies } from '../objectives/support';
import { ce, failure, writeSource } from './bus-support';

const KILL_AT_PUBACK = path.resolve(__dirname, '../support/kill-at-puback.js');

const readyz = async (url: string) => (await (await fetch(`${url}/readyz`)).json()) as Record<string, any>;
const exited = (child: ChildProcess) => new Promise<string | null>((r) => (child.exitCode !== null || child.signalCode ? r(child.signalCode) : child.once('exit', (_c, s) => r(s))));

/** `regent serve` processes with an MQTT source: killed before its PUBACK, and two sharing one subscription. */
describeBroker('mqtt')('signal sources across processes (MQTT)', () => {
  const T = uniqueName('regent-test/');
  const children: ChildProcess[] = [];
  const sessions: string[] = [];
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const id of sessions) {
      const c = await mqtt.connectAsync(BROKERS.mqtt.url, { protocolVersion: 5, clientId: id, clean: true }).catch(() => undefined);
      await c?.endAsync();
    }
  });

  it('a process SIGKILLed after journaling a signal and before acknowledging it: the broker delivers it again, and it is still one signal and one objective', async () => {
    const dataDir = tmpDir();
    const policies = makePolicies();
    const group = uniqueName('crash-');
    writeSource(policies, 'plant', `type: mqtt\nurl: ${BROKERS.mqtt.url}\nsubscribe: ${T}/crash\nformat: cloudevents\ngroup: ${group}\nsessionExpirySeconds: 60\n`);
    const instance = uniqueName('crash-');
    sessions.push(`regent-plant-${instance}`);
    const env = { REGENT_DATA_DIR: dataDir, REGENT_POLICIES_DIR: policies, PORT: '0', REGENT_INSTANCE: instance, REGENT_AGENT_RATE_PER_MINUTE: '1000' };

    const first = await startServe({ ...env, NODE_OPTIONS: `--require ${KILL_AT_PUBACK}`, REGENT_TEST_KILL_AT_PUBACK: '1' });
    children.push(first.child);
    const admin = /API key (rgt_[A-Za-z0-9_-]+)/.exec(first.out())![1]!;
    const olga = (await call(`${first.url}/v1/users`, 'POST', admin, { id: 'olga', name: 'Olga', roles: ['executive'] })).body!.apiKey as string;
    expect((await call(`${first.url}/v1/twins`, 'POST', olga, { id: 'ops-twin', owner: 'user:olga', authority: 'ops-twin', mode: 'execute' })).status).toBe(201);
    await waitFor('the source connected', async () => (await readyz(first.url)).status === 'ok');

    const pub = await mqtt.connectAsync(BROKERS.mqtt.url, { protocolVersion: 5 });
    await pub.publishAsync(`${T}/crash`, JSON.stringify(failure('crash-1')), { qos: 1, properties: { contentType: 'application/cloudevents+json' } });
    await pub.endAsync();
    expect(await exited(first.child)).toBe('SIGKILL');

    const second = await startServe(env);
    children.push(second.child);
    // The broker redelivers the unacknowledged message to the resumed session: a repeat, acked.
    await waitFor('the redelivery', async () => (await readyz(second.url)).signalSources?.[0]?.repeats === 1, 30_000);
    const status = (await readyz(second.url)).signalSources[0];
    expect(status).toMatchObject({ id: 'plant', connected: true, received: 0, repeats: 1 });
    const signal = await call(`${second.url}/v1/signals/crash-1`, 'GET', admin);
    expect(signal.status).toBe(200);
    expect(signal.body!.objectives).toHaveLength(1);
    const journal = await call(`${second.url}/v1/journal?kind=signal.received&subject=signal:crash-1`, 'GET', admin);
    expect(journal.body!.entries).toHaveLength(1);
    const objectives = (await call(`${second.url}/v1/twins/ops-twin/objectives`, 'GET', olga)).body!.objectives as Array<{ signal: string | null }>;
    expect(objectives.filter((o) => o.signal === 'crash-1')).toHaveLength(1);
    second.child.kill('SIGTERM');
    await exited(second.child);
  });

  (POSTGRES_ENABLED ? it : it.skip)('two processes on one PostgreSQL database share the subscription: every message taken once, by one of them', async () => {
    const db: TestDatabase = await createTestDatabase('postgres');
    try {
      const policies = makePolicies();
      const group = uniqueName('pair-');
      writeSource(policies, 'plant', `type: mqtt\nurl: ${BROKERS.mqtt.url}\nsubscribe: ${T}/pair\nformat: cloudevents\ngroup: ${group}\nsessionExpirySeconds: 60\n`);
      const base = { ...db.env, REGENT_POLICIES_DIR: policies, PORT: '0' };
      const servers = [];
      for (const n of [1, 2]) {
        const instance = uniqueName(`pair${n}-`);
        sessions.push(`regent-plant-${instance}`);
        const s = await startServe({ ...base, REGENT_INSTANCE: instance });
        children.push(s.child);
        servers.push(s);
        await waitFor(`process ${n} connected`, async () => (await readyz(s.url)).status === 'ok');
      }
      const pub = await mqtt.connectAsync(BROKERS.mqtt.url, { protocolVersion: 5 });
      const N = 200;
      for (let i = 0; i < N; i++) await pub.publishAsync(`${T}/pair`, JSON.stringify(ce(`pair-${i}`)), { qos: 1, properties: { contentType: 'application/cloudevents+json' } });
      await pub.endAsync();
      const pg = new Client({ connectionString: db.config.kind === 'postgres' ? db.config.url : '' });
      await pg.connect();
      try {
        await waitFor('every signal', async () => (await pg.query(`SELECT count(*)::int AS n FROM signals WHERE id LIKE 'pair-%'`)).rows[0].n === N, 60_000);
        const received = await pg.query(`SELECT subject FROM journal_entries WHERE kind = 'signal.received'`);
        expect(received.rows.length).toBe(N);
        expect(new Set(received.rows.map((r) => r.subject)).size).toBe(N);
      } finally {
        await pg.end();
      }
      const counts = await Promise.all(servers.map(async (s) => (await readyz(s.url)).signalSources[0]));
      expect(counts.map((c) => c.repeats)).toEqual([0, 0]);
      expect(counts[0].received + counts[1].received).toBe(N);
      expect(counts[0].received).toBeGreaterThan(0);
      expect(counts[1].received).toBeGreaterThan(0);
      for (const s of servers) s.child.kill('SIGTERM');
      await Promise.all(servers.map((s) => exited(s.child)));
    } finally {
      await db.drop();
    }
  });
});
