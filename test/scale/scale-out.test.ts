import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { startReceiver, type Receiver } from '../../src/connectors/testing/receiver';
import { generateSigningKey, signingKeyToString, vkeyOf } from '../../src/journal/note';
import { call } from '../support/api';
import { regent, startServe, type ServeProcess } from '../support/cli';
import { createTestDatabase, describePostgres, tmpDir, type TestDatabase } from '../support/databases';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';

/** 10.00 EUR a request against 2,000.00 a month: the load passes the running total on purpose. */
const AUTHORITY = `kind: Authority
id: ops-twin
version: 1
delegator: user:olga
delegate: twin:ops-twin
parent: null
valid: { from: 2026-01-01T00:00:00Z, until: 2030-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: crm.credit.apply
    outcome: execute
    limits: { perAction: "100", perPeriod: { amount: "2000", period: month } }
`;

const CONNECTOR = (url: string) => `kind: Connector
id: crm
type: rest
baseUrl: ${url}
auth: { header: Authorization, scheme: Bearer, secretEnv: SCALE_CRM_TOKEN }
operations:
  - action: crm.credit.apply
    method: POST
    path: /accounts/{account}/credits
    input:
      type: object
      required: [account, amount, currency, ref]
      properties: { account: { type: string }, amount: { type: string }, currency: { type: string }, ref: { type: string } }
    attributes: { counterparty: account, amount: amount, currency: currency }
    idempotent: true
    timeoutMs: 1500
    retries: 0
`;

type Proc = ServeProcess;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function kill(p: Proc | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!p || p.child.exitCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill(signal);
  await exited;
}

/**
 * Issue 7: several stateless Regent processes on one PostgreSQL lose nothing and do nothing twice
 * when one of them dies, fail cleanly while the database is away, and resume by themselves.
 */
describePostgres('three Regent processes on one PostgreSQL', () => {
  let tdb: TestDatabase;
  let proxy: TcpProxy;
  let receiver: Receiver;
  let hang = new Set<string>();
  const procs: (Proc | undefined)[] = [];
  let env: (i: number) => Record<string, string>;
  let olga: string;
  let twinKey: string;
  let sql: Client;

  beforeAll(async () => {
    tdb = await createTestDatabase('postgres');
    const direct = new URL(tdb.env.DATABASE_URL!);
    proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
    const viaProxy = new URL(direct.toString());
    viaProxy.port = String(proxy.port);
    sql = new Client({ connectionString: direct.toString() });
    await sql.connect();
    receiver = await startReceiver((req) => {
      const ref = (JSON.parse(req.body || '{}') as { ref?: string }).ref ?? '';
      return hang.has(ref) ? { status: 200, delayMs: 10_000 } : { status: 201, body: { credited: ref }, delayMs: 3 };
    });
    const policies = path.join(tmpDir(), 'policies');
    fs.mkdirSync(path.join(policies, 'authorities'), { recursive: true });
    fs.mkdirSync(path.join(policies, 'connectors'), { recursive: true });
    fs.writeFileSync(path.join(policies, 'authorities', 'ops.yaml'), AUTHORITY);
    fs.writeFileSync(path.join(policies, 'connectors', 'crm.yaml'), CONNECTOR(receiver.url));
    // One signing key for every process (the deployment guide's rule).
    const key = generateSigningKey('scale.regent.test/journal');
    const dirs = [tmpDir(), tmpDir(), tmpDir()];
    env = (i) => ({
      DATABASE_URL: viaProxy.toString(),
      DATABASE_POOL_MAX: '8',
      REGENT_DATA_DIR: dirs[i]!,
      REGENT_SIGNING_KEY: signingKeyToString(key),
      REGENT_POLICIES_DIR: policies,
      REGENT_EXECUTION_LEASE_MS: '2000',
      SCALE_CRM_TOKEN: 'scale-token-0c7e',
      LOG_LEVEL: 'warn',
      PORT: '0',
    });
    fs.writeFileSync(path.join(dirs[0]!, 'journal.vkey'), vkeyOf(key) + '\n');
    procs[0] = await startServe(env(0));
    const admin = /API key (rgt_[A-Za-z0-9_-]+)/.exec(procs[0].out())![1]!;
    procs[1] = await startServe(env(1));
    procs[2] = await startServe(env(2));
    // Only the first process created an admin: the database is shared.
    expect(procs[1].out()).not.toMatch(/API key rgt_/);
    olga = (await call(`${procs[0].url}/v1/users`, 'POST', admin, { id: 'olga', name: 'Olga', roles: ['executive'] })).body!.apiKey;
    const twin = await call(`${procs[1].url}/v1/twins`, 'POST', olga, { id: 'ops-twin', owner: 'user:olga', authority: 'ops-twin', mode: 'execute' });
    expect(twin.status).toBe(201);
    twinKey = twin.body!.apiKey;
  }, 120_000);

  afterAll(async () => {
    for (const p of procs) await kill(p);
    await receiver?.close();
    await proxy?.close();
    await sql?.end();
    await tdb?.drop();
  });

  const body = (ref: string) => ({ action: 'crm.credit.apply', args: { account: 'acme', amount: '10.00', currency: 'EUR', ref }, rationale: 'goodwill credit', idempotencyKey: ref });

  async function settled(timeoutMs = 60_000): Promise<Record<string, number>> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const rows = (await sql.query<{ status: string; n: string }>('SELECT status, count(*) AS n FROM proposals GROUP BY status')).rows;
      const counts = Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
      if (!counts.approved && !counts.executing) return counts;
      if (Date.now() > until) return counts;
      await sleep(100);
    }
  }

  it('takes a concurrent load with one process SIGKILLed half way: every acknowledged action executes once, within the running total', async () => {
    const total = 240;
    const acknowledged = new Map<string, { id: string; status: string }>();
    let next = 0;
    let killedAt = -1;
    let restarting: Promise<void> | undefined;
    const live = () => procs.filter((p): p is Proc => !!p && p.child.exitCode === null);
    const worker = async (w: number) => {
      while (next < total) {
        const i = next++;
        const ref = `load-${i}`;
        if (i === total / 2 && killedAt < 0) {
          // Half way: kill one process outright, and bring it back a little later.
          killedAt = i;
          const victim = procs[1]!;
          await kill(victim);
          restarting = sleep(500).then(async () => {
            procs[1] = await startServe(env(1));
          });
        }
        // A load balancer's retry: a request that got no answer goes to another process, same key.
        for (let attempt = 0; ; attempt++) {
          const targets = live();
          const p = targets[(i + attempt + w) % targets.length]!;
          try {
            const r = await call(`${p.url}/v1/proposals`, 'POST', twinKey, body(ref));
            if (r.status === 201 || r.status === 200) {
              acknowledged.set(ref, { id: r.body!.id, status: r.body!.status });
              break;
            }
            throw new Error(`status ${r.status}: ${r.text}`);
          } catch (err) {
            if (attempt > 20) throw err;
            await sleep(50);
          }
        }
      }
    };
    await Promise.all(Array.from({ length: 12 }, (_, w) => worker(w)));
    await restarting;
    expect(killedAt).toBe(total / 2);
    expect(acknowledged.size).toBe(total);

    const counts = await settled();
    expect(counts.approved ?? 0).toBe(0);
    expect(counts.executing ?? 0).toBe(0);
    // 2,000.00 a month at 10.00 each: exactly 200 execute; the rest wait for Olga (over the total).
    expect(counts.executed).toBe(200);
    expect(counts.pending_approval).toBe(total - 200);
    const spent = await sql.query<{ total_minor: string }>(`SELECT total_minor FROM spend_totals WHERE delegator = 'user:olga'`);
    expect(spent.rows.map((r) => Number(r.total_minor))).toEqual([200_000]);

    // Every acknowledged proposal decided "execute" ended executed, each under one idempotency key.
    const rows = (await sql.query<{ id: string; status: string; outcome: string; ref: string }>(
      `SELECT id, status, decision->>'outcome' AS outcome, args->>'ref' AS ref FROM proposals`,
    )).rows;
    expect(rows).toHaveLength(total);
    for (const r of rows) {
      expect(acknowledged.get(r.ref)?.id).toBe(r.id);
      if (r.outcome === 'execute') expect(r.status).toBe('executed');
    }
    const keysByRef = new Map<string, Set<string>>();
    for (const req of receiver.requests) {
      const ref = (JSON.parse(req.body) as { ref: string }).ref;
      if (!ref.startsWith('load-')) continue;
      (keysByRef.get(ref) ?? keysByRef.set(ref, new Set()).get(ref)!).add(String(req.headers['idempotency-key']));
    }
    expect(keysByRef.size).toBe(200);
    for (const [ref, keys] of keysByRef) expect([...keys]).toEqual([rows.find((r) => r.ref === ref)!.id]);

    // The journal is contiguous and verifies with the one verifier key.
    const out = path.join(tmpDir(), 'export');
    // Straight to the database: the proxy lives in this process, which spawnSync blocks.
    const exported = regent(['journal', 'export', '--out', out], { ...env(0), DATABASE_URL: tdb.env.DATABASE_URL! });
    expect(exported.stderr).toBe('');
    const verified = regent(['journal', 'verify', out, '--key', path.join(env(0).REGENT_DATA_DIR!, 'journal.vkey')]);
    expect(verified.stdout + verified.stderr).toMatch(/verified|ok/i);
    expect(verified.code).toBe(0);
    for (const p of procs) expect({ exit: p!.child.exitCode, out: p!.child.exitCode === null ? '' : p!.out() }).toEqual({ exit: null, out: '' });
  }, 240_000);

  it('answers 503 while the database is unreachable, executes nothing, and resumes by itself', async () => {
    const before = receiver.requests.length;
    proxy.cut();
    try {
      await sleep(300);
      for (const p of procs) expect({ exit: p!.child.exitCode, out: p!.child.exitCode === null ? '' : p!.out() }).toEqual({ exit: null, out: '' });
      for (const p of procs) {
        const r = await call(`${p!.url}/v1/proposals`, 'POST', twinKey, body(`down-${p!.url}`));
        expect(r.status).toBe(503);
        expect(r.headers.get('content-type')).toMatch(/problem\+json/);
        const ready = await call(`${p!.url}/readyz`, 'GET', null);
        expect(ready.status).toBe(503);
      }
      await sleep(300);
      expect(receiver.requests.length).toBe(before);
    } finally {
      proxy.restore();
    }
    // Each process finds the database again by itself.
    for (const p of procs) {
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        status = (await call(`${p!.url}/readyz`, 'GET', null)).status;
        if (status !== 200) await sleep(100);
      }
      expect(status).toBe(200);
    }
    await sql.query(`UPDATE spend_totals SET total_minor = 0 WHERE delegator = 'user:olga'`);
    const r = await call(`${procs[2]!.url}/v1/proposals`, 'POST', twinKey, body('after-outage'));
    expect(r.status).toBe(201);
    expect((await settled()).approved ?? 0).toBe(0);
    expect((await sql.query(`SELECT status FROM proposals WHERE idempotency_key = 'after-outage'`)).rows[0]).toEqual({ status: 'executed' });
  }, 120_000);

  it('lets other work through while the connector hangs on one request', async () => {
    hang = new Set(['stuck-1']);
    const stuck = await call(`${procs[0]!.url}/v1/proposals`, 'POST', twinKey, body('stuck-1'));
    expect(stuck.status).toBe(201);
    await sleep(100);
    const started = Date.now();
    for (let i = 0; i < 10; i++) expect((await call(`${procs[i % 3]!.url}/v1/proposals`, 'POST', twinKey, body(`flow-${i}`))).status).toBe(201);
    for (;;) {
      const n = (await sql.query<{ n: string }>(`SELECT count(*) AS n FROM proposals WHERE idempotency_key LIKE 'flow-%' AND status = 'executed'`)).rows[0]!.n;
      if (Number(n) === 10) break;
      expect(Date.now() - started).toBeLessThan(20_000);
      await sleep(50);
    }
    // The hung call times out and is retried with its one key until it answers, then executes.
    hang = new Set();
    const until = Date.now() + 60_000;
    let status = '';
    while (status !== 'executed' && Date.now() < until) {
      status = (await sql.query<{ status: string }>(`SELECT status FROM proposals WHERE idempotency_key = 'stuck-1'`)).rows[0]!.status;
      await sleep(100);
    }
    expect(status).toBe('executed');
    const keys = new Set(receiver.requests.filter((r) => r.body.includes('"stuck-1"')).map((r) => r.headers['idempotency-key']));
    expect(keys.size).toBe(1);
  }, 120_000);
});
