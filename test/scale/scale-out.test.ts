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

/** Rita's twin asks for discounts, which the CRM does not let be sent twice: 10.00 EUR of 1,000.00 a month. */
const REQUESTS_AUTHORITY = `kind: Authority
id: req-twin
version: 1
delegator: user:rita
delegate: twin:req-twin
parent: null
valid: { from: 2026-01-01T00:00:00Z, until: 2030-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: crm.discount.request
    outcome: execute
    limits: { perAction: "100", perPeriod: { amount: "1000", period: month } }
`;

const CONNECTOR = (url: string) => `kind: Connector
id: crm
type: rest
baseUrl: ${url}
auth: { header: Authorization, scheme: Bearer, secretEnv: SCALE_CRM_TOKEN }
operations:
  - action: crm.discount.request
    method: POST
    path: /accounts/{account}/discount-requests
    input:
      type: object
      required: [account, amount, currency, ref]
      properties: { account: { type: string }, amount: { type: string }, currency: { type: string }, ref: { type: string } }
    attributes: { counterparty: account, amount: amount, currency: currency }
    timeoutMs: 20000
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

/**
 * 10.00 EUR a request against 2,000.00 a month, on the sandbox (its records live in Regent's own
 * database, so requests execute with their decision, in batches): the load passes the total on
 * purpose. No approval section: over the total, the delegator (Sam) approves.
 */
const SALES_AUTHORITY = `kind: Authority
id: sales-twin
version: 1
delegator: user:sam
delegate: twin:sales-twin
parent: null
valid: { from: 2026-01-01T00:00:00Z, until: 2030-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: crm.discount.update
    outcome: execute
    limits: { perAction: "100", perPeriod: { amount: "2000", period: month } }
`;

const SANDBOX = `kind: Connector
id: sandbox
type: sandbox
operations:
  - action: crm.discount.update
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
 * Scale-out: several stateless Regent processes on one PostgreSQL lose nothing and do nothing twice
 * when one of them dies, fail cleanly while the database is away, and resume by themselves.
 */
describePostgres('three Regent processes on one PostgreSQL', () => {
  let tdb: TestDatabase;
  let proxy: TcpProxy;
  let receiver: Receiver;
  let hang = new Set<string>();
  const procs: (Proc | undefined)[] = [];
  let env: (i: number) => Record<string, string>;
  let admin: string;
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
      // Discount requests take a while, so that some are in flight when a process is killed.
      if (ref.startsWith('req-')) return { status: 201, body: { requested: ref }, delayMs: ref.startsWith('req-hang-') ? 15_000 : 250 };
      return hang.has(ref) ? { status: 200, delayMs: 10_000 } : { status: 201, body: { credited: ref }, delayMs: 3 };
    });
    const policies = path.join(tmpDir(), 'policies');
    fs.mkdirSync(path.join(policies, 'authorities'), { recursive: true });
    fs.mkdirSync(path.join(policies, 'connectors'), { recursive: true });
    fs.writeFileSync(path.join(policies, 'authorities', 'ops.yaml'), AUTHORITY);
    fs.writeFileSync(path.join(policies, 'connectors', 'crm.yaml'), CONNECTOR(receiver.url));
    fs.writeFileSync(path.join(policies, 'authorities', 'sales.yaml'), SALES_AUTHORITY);
    fs.writeFileSync(path.join(policies, 'authorities', 'requests.yaml'), REQUESTS_AUTHORITY);
    fs.writeFileSync(path.join(policies, 'connectors', 'sandbox.yaml'), SANDBOX);
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
    admin = /API key (rgt_[A-Za-z0-9_-]+)/.exec(procs[0].out())![1]!;
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

  /** The processes alive now (a process killed by a signal keeps exitCode null: signalCode says how it ended). */
  const live = () => procs.filter((p): p is Proc => !!p && p.child.exitCode === null && p.child.signalCode === null);

  /**
   * Sends requests 0…total-1 from `workers` workers over the live processes, SIGKILLs the
   * second process half way and starts it again 500 ms later. A request that got no answer goes
   * to another process with the same idempotency key, as a load balancer's retry would.
   * `send` throws unless the request was acknowledged. Returns the request at which it killed.
   */
  async function loadWithKill(total: number, workers: number, send: (p: Proc, i: number) => Promise<void>): Promise<number> {
    let next = 0;
    let killedAt = -1;
    let restarting: Promise<void> | undefined;
    const worker = async (w: number) => {
      while (next < total) {
        const i = next++;
        if (i === Math.floor(total / 2) && killedAt < 0) {
          killedAt = i;
          await kill(procs[1]!);
          restarting = sleep(500).then(async () => {
            procs[1] = await startServe(env(1));
          });
        }
        for (let attempt = 0; ; attempt++) {
          const targets = live();
          try {
            await send(targets[(i + attempt + w) % targets.length]!, i);
            break;
          } catch (err) {
            if (attempt > 20) throw err;
            await sleep(50);
          }
        }
      }
    };
    await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
    await restarting;
    return killedAt;
  }

  it('takes a concurrent load with one process SIGKILLed half way: every acknowledged action executes once, within the running total', async () => {
    const total = 240;
    const acknowledged = new Map<string, { id: string; status: string }>();
    const killedAt = await loadWithKill(total, 12, async (p, i) => {
      const ref = `load-${i}`;
      const r = await call(`${p.url}/v1/proposals`, 'POST', twinKey, body(ref));
      if (r.status !== 201 && r.status !== 200) throw new Error(`status ${r.status}: ${r.text}`);
      acknowledged.set(ref, { id: r.body!.id, status: r.body!.status });
    });
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

  it('takes non-idempotent requests with one process SIGKILLed half way: each is executed or in doubt, never failed for an unknown outcome, never sent twice, and in-doubt amounts still count', async () => {
    const rita = await call(`${procs[0]!.url}/v1/users`, 'POST', admin, { id: 'rita', name: 'Rita', roles: ['executive'] });
    expect(rita.status).toBe(201);
    const twin = await call(`${procs[2]!.url}/v1/twins`, 'POST', rita.body!.apiKey, { id: 'req-twin', owner: 'user:rita', authority: 'req-twin', mode: 'execute' });
    expect(twin.status).toBe(201);
    const reqKey: string = twin.body!.apiKey;
    const request = (ref: string) => ({
      action: 'crm.discount.request',
      args: { account: 'acme', amount: '10.00', currency: 'EUR', ref },
      rationale: 'renewal discount',
      idempotencyKey: ref,
    });
    // One call surely in flight on the process about to be killed: sent by its own executor, and
    // answered only after the kill.
    let hung: string | undefined;
    for (let attempt = 0; attempt < 5 && !hung; attempt++) {
      const ref = `req-hang-${attempt}`;
      const r = await call(`${procs[1]!.url}/v1/proposals`, 'POST', reqKey, request(ref));
      expect(r.status).toBe(201);
      let by: string | undefined;
      for (let i = 0; i < 200 && !by; i++) {
        by = (await sql.query<{ started_by: string }>('SELECT started_by FROM connector_calls WHERE idempotency_key = $1', [r.body!.id])).rows[0]?.started_by;
        if (!by) await sleep(20);
      }
      if (by?.startsWith(`executor-${procs[1]!.child.pid}-`)) hung = r.body!.id;
    }
    expect(hung).toBeDefined();
    const total = 80;
    const acknowledged = new Map<string, string>();
    await loadWithKill(total, 12, async (p, i) => {
      const ref = `req-${i}`;
      const r = await call(`${p.url}/v1/proposals`, 'POST', reqKey, {
        action: 'crm.discount.request',
        args: { account: 'acme', amount: '10.00', currency: 'EUR', ref },
        rationale: 'renewal discount',
        idempotencyKey: ref,
      });
      if (r.status !== 201 && r.status !== 200) throw new Error(`status ${r.status}: ${r.text}`);
      acknowledged.set(ref, r.body!.id);
    });
    expect(acknowledged.size).toBe(total);
    await settled();
    // The hung calls that another process sent answer after 15 s; the one on the killed process never does.
    const until = Date.now() + 30_000;
    while ((await sql.query(`SELECT 1 FROM proposals WHERE twin_id = 'req-twin' AND status IN ('approved', 'executing')`)).rows.length && Date.now() < until) await sleep(100);
    const rows = (await sql.query<{ id: string; status: string; ref: string; executor: string | null }>(
      `SELECT id, status, args->>'ref' AS ref, in_doubt->>'executor' AS executor FROM proposals WHERE twin_id = 'req-twin' AND args->>'ref' NOT LIKE 'req-hang-%'`,
    )).rows;
    expect(rows).toHaveLength(total);
    const hungNow = (await sql.query<{ status: string; executor: string }>(`SELECT status, in_doubt->>'executor' AS executor FROM proposals WHERE id = $1`, [hung])).rows[0];
    expect(hungNow?.status).toBe('in_doubt');
    const by = (s: string) => rows.filter((r) => r.status === s);
    process.stdout.write(`non-idempotent load with a SIGKILL: ${by('executed').length} executed, ${by('in_doubt').length} in doubt\n`);
    // 1,000.00 a month at 10.00 each: all 80 fit. Each ended executed or in doubt: none failed,
    // none left approved or executing.
    expect(by('executed').length + by('in_doubt').length).toBe(total);
    for (const r of by('in_doubt')) expect(r.executor).toMatch(/^executor-/);
    // Never sent twice, whatever process took it over.
    const sends = new Map<string, number>();
    for (const req of receiver.requests) {
      const ref = (JSON.parse(req.body || '{}') as { ref?: string }).ref ?? '';
      if (ref.startsWith('req-')) sends.set(ref, (sends.get(ref) ?? 0) + 1);
    }
    for (const [ref, n] of sends) expect({ ref, n }).toEqual({ ref, n: 1 });
    for (const r of by('executed')) expect(sends.get(r.ref)).toBe(1);
    // What may have been given away still counts: committed for executed, reserved for in doubt.
    const reservations = (await sql.query<{ ref: string; status: string }>(
      `SELECT ref, status FROM spend_reservations WHERE delegator = 'user:rita'`,
    )).rows;
    const statusOf = new Map(reservations.map((r) => [r.ref, r.status]));
    for (const r of by('executed')) expect(statusOf.get(`proposal:${r.id}`)).toBe('committed');
    for (const r of by('in_doubt')) expect(statusOf.get(`proposal:${r.id}`)).toBe('reserved');
    const spent = await sql.query<{ total_minor: string }>(`SELECT total_minor FROM spend_totals WHERE delegator = 'user:rita'`);
    const hangs = (await sql.query<{ n: string }>(`SELECT count(*) AS n FROM proposals WHERE twin_id = 'req-twin' AND args->>'ref' LIKE 'req-hang-%'`)).rows[0]!.n;
    expect(spent.rows.map((r) => Number(r.total_minor))).toEqual([(total + Number(hangs)) * 1000]);
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

  it('executes sandbox actions with their decision, in batches, with one process SIGKILLed half way: nothing lost, nothing done twice, within the running total', async () => {
    const sam = await call(`${procs[0]!.url}/v1/users`, 'POST', admin, { id: 'sam', name: 'Sam', roles: ['executive'] });
    expect(sam.status).toBe(201);
    const twin = await call(`${procs[2]!.url}/v1/twins`, 'POST', sam.body!.apiKey, { id: 'sales-twin', owner: 'user:sam', authority: 'sales-twin', mode: 'execute' });
    expect(twin.status).toBe(201);
    const salesKey: string = twin.body!.apiKey;
    const accounts = ['acme', 'globex', 'initech', 'umbrella'];
    const discount = (ref: string, account: string, discountPct: number) => ({
      action: 'crm.discount.update',
      args: { account, discountPct, amount: '10.00', currency: 'EUR' },
      rationale: 'renewal discount',
      idempotencyKey: ref,
    });

    // Warm-up. A process's sandbox connector executes with the decision only once it has executed
    // on the ordinary path (which writes the demo records). So, for each process, send requests
    // until one comes back executed with its decision (201 `executed`, which only the batched path
    // answers); any that does not is recorded `approved` and awaited until `executed`.
    let warmups = 0;
    for (const [k, p] of procs.entries()) {
      let inline = false;
      for (let attempt = 0; attempt < 10 && !inline; attempt++) {
        const r = await call(`${p!.url}/v1/proposals`, 'POST', salesKey, discount(`warm-${k}-${attempt}`, 'acme', 1));
        expect(r.status).toBe(201);
        warmups++;
        inline = r.body!.status === 'executed';
        if (inline) break;
        expect(r.body!.status).toBe('approved');
        let status = r.body!.status as string;
        for (let i = 0; i < 200 && status !== 'executed'; i++) {
          await sleep(50);
          status = (await call(`${p!.url}/v1/proposals/${r.body!.id}`, 'GET', salesKey)).body!.status;
        }
        expect(status).toBe('executed');
      }
      expect({ process: k, inline }).toEqual({ process: k, inline: true });
    }
    const accountRows = async () =>
      (await sql.query<{ key: string; version: number; data: { discountHistory: { key: string }[] } }>(
        `SELECT key, version, data FROM sandbox_records WHERE system = 'crm' AND kind = 'account' ORDER BY key`,
      )).rows;
    const baseline = new Map((await accountRows()).map((r) => [r.key, r.version]));
    expect([...baseline.keys()].sort()).toEqual([...accounts].sort());

    // The load, part one: requests from 9 workers over the three processes, one process SIGKILLed
    // half way and restarted; all within the running total (leaving room for ten).
    const limit = 200;
    const room = 10;
    const total = limit - warmups - room;
    const acknowledged = new Map<string, { id: string; status: string }>();
    const send = async (p: Proc, ref: string, i: number) => {
      const r = await call(`${p.url}/v1/proposals`, 'POST', salesKey, discount(ref, accounts[i % accounts.length]!, (i % 20) + 1));
      if (r.status !== 201 && r.status !== 200) throw new Error(`status ${r.status}: ${r.text}`);
      acknowledged.set(ref, { id: r.body!.id, status: r.body!.status });
    };
    const killedAt = await loadWithKill(total, 9, (p, i) => send(p, `sbx-a-${i}`, i));
    expect(killedAt).toBe(Math.floor(total / 2));
    expect(acknowledged.size).toBe(total);

    // Settled: nothing of the twin's still approved or executing (the outbox finishes what the
    // dead process had claimed, once its lease lapses).
    const settle = async () => {
      for (const until = Date.now() + 60_000; ; ) {
        const open = (await sql.query<{ n: string }>(`SELECT count(*) AS n FROM proposals WHERE twin_id = 'sales-twin' AND status IN ('approved', 'executing')`)).rows[0]!.n;
        if (Number(open) === 0) return;
        expect(Date.now()).toBeLessThan(until);
        await sleep(100);
      }
    };
    await settle();
    const spentNow = async () => (await sql.query<{ total_minor: string }>(`SELECT total_minor FROM spend_totals WHERE delegator = 'user:sam'`)).rows.map((r) => Number(r.total_minor));
    expect(await spentNow()).toEqual([(limit - room) * 1000]);

    // Part two passes the total: 40 requests at once to the two processes that ran throughout,
    // held up behind the running total's lock until they have queued, so that the total is
    // crossed inside batches of several (a batch that did not count the amounts it admitted
    // before each request would let all of them through).
    const batchStats = async () => {
      let transactions = 0;
      let requests = 0;
      for (const p of [procs[0]!, procs[2]!]) {
        const text = await (await fetch(`${p.url}/metrics`)).text();
        transactions += Number(/regent_executed_with_decision_total\{count="transactions"\} (\d+)/.exec(text)?.[1] ?? 0);
        requests += Number(/regent_executed_with_decision_total\{count="requests"\} (\d+)/.exec(text)?.[1] ?? 0);
      }
      return { transactions, requests };
    };
    const before = await batchStats();
    const burst = 40;
    const holder = new Client({ connectionString: tdb.env.DATABASE_URL! });
    await holder.connect();
    let sent: Promise<unknown> | undefined;
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT total_minor FROM spend_totals WHERE delegator = 'user:sam' FOR UPDATE`);
      sent = Promise.all(Array.from({ length: burst }, (_, i) => send(procs[i % 2 === 0 ? 0 : 2]!, `sbx-b-${i}`, i)));
      sent.catch(() => undefined);
      // Each process's first transaction waits for the lock; the rest queue up behind it.
      for (let i = 0; ; i++) {
        const waiting = (await sql.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)).rows[0]!.n;
        if (Number(waiting) >= 2) break;
        expect(i).toBeLessThan(400);
        await sleep(25);
      }
      await sleep(1000);
    } finally {
      await holder.query('COMMIT');
      await holder.end();
    }
    await sent;
    expect(acknowledged.size).toBe(total + burst);
    const after = await batchStats();
    // The 40 went in a few transactions, not one each.
    expect(after.requests - before.requests).toBe(burst);
    expect(after.transactions - before.transactions).toBeLessThanOrEqual(8);
    await settle();

    // Every acknowledged proposal is the one recorded under its key, and ended executed (decided
    // execute) or pending_approval (decided approve: over the running total, Sam approves).
    const rows = (await sql.query<{ id: string; status: string; outcome: string; codes: string[]; ref: string; account: string }>(
      `SELECT id, status, decision->>'outcome' AS outcome, ARRAY(SELECT jsonb_array_elements(decision->'reasons')->>'code') AS codes,
              idempotency_key AS ref, args->>'account' AS account
         FROM proposals WHERE twin_id = 'sales-twin'`,
    )).rows;
    expect(rows).toHaveLength(warmups + total + burst);
    for (const r of rows) {
      if (r.ref.startsWith('sbx-')) {
        // Acknowledged executed or pending stays so; acknowledged approved or executing (recorded,
        // then executed by the outbox) has executed.
        const ack = acknowledged.get(r.ref);
        expect(ack?.id).toBe(r.id);
        expect({ ref: r.ref, acknowledged: ack?.status, status: r.status }).toEqual({ ref: r.ref, acknowledged: ack?.status, status: ack?.status === 'approved' || ack?.status === 'executing' ? 'executed' : ack?.status });
      }
      if (r.status === 'executed') expect(r.outcome).toBe('execute');
      else expect({ ref: r.ref, status: r.status, outcome: r.outcome, over: r.codes.includes('over_period') }).toEqual({ ref: r.ref, status: 'pending_approval', outcome: 'approve', over: true });
    }
    const executed = rows.filter((r) => r.status === 'executed');
    // 2,000.00 a month at 10.00 each: exactly 200 execute, never more: every warm-up and every
    // request of part one, and exactly ten of part two.
    expect(executed).toHaveLength(limit);
    expect(executed.filter((r) => r.ref.startsWith('sbx-b-'))).toHaveLength(room);
    expect(rows.filter((r) => r.status === 'pending_approval')).toHaveLength(burst - room);

    // The running total: one committed reservation per executed proposal, summing to the total,
    // which is the limit exactly; nothing left reserved, nothing released.
    const spent = await sql.query<{ total_minor: string }>(`SELECT total_minor FROM spend_totals WHERE delegator = 'user:sam'`);
    expect(spent.rows.map((r) => Number(r.total_minor))).toEqual([limit * 1000]);
    const reservations = (await sql.query<{ ref: string; status: string; amount_minor: string }>(
      `SELECT ref, status, amount_minor FROM spend_reservations WHERE delegator = 'user:sam'`,
    )).rows;
    expect(reservations.filter((r) => r.status !== 'committed')).toEqual([]);
    expect(reservations.reduce((sum, r) => sum + Number(r.amount_minor), 0)).toBe(limit * 1000);
    expect(reservations.map((r) => r.ref).sort()).toEqual(executed.map((r) => `proposal:${r.id}`).sort());

    // The sandbox records: each account's version grew by exactly the executed load proposals that
    // touched it; its history (at most 50 entries) names executed proposals of that account, none
    // twice, and all of them while it holds fewer than 50; no proposal in two histories.
    const records = await accountRows();
    const everyKey: string[] = [];
    for (const rec of records) {
      const mine = executed.filter((r) => r.account === rec.key);
      const load = mine.filter((r) => r.ref.startsWith('sbx-'));
      expect({ account: rec.key, grew: rec.version - baseline.get(rec.key)! }).toEqual({ account: rec.key, grew: load.length });
      const keys = rec.data.discountHistory.map((h) => h.key);
      expect(keys.length).toBeLessThanOrEqual(50);
      expect(new Set(keys).size).toBe(keys.length);
      const ids = new Set(mine.map((r) => r.id));
      expect(keys.filter((k) => !ids.has(k))).toEqual([]);
      if (mine.length < 50) expect([...keys].sort()).toEqual([...ids].sort());
      else expect(keys).toHaveLength(50);
      everyKey.push(...keys);
    }
    expect(new Set(everyKey).size).toBe(everyKey.length);

    // The journal: each executed proposal went to executed exactly once; the pending ones never did.
    const transitions = (await sql.query<{ subject: string; n: string; inline: boolean }>(
      `SELECT subject, count(*) AS n, EXISTS (
                SELECT 1 FROM journal_entries e WHERE e.subject = j.subject AND e.kind = 'proposal.transitioned'
                   AND e.data->>'reason' = 'executed with its decision (in-database connector)') AS inline
         FROM journal_entries j
        WHERE kind = 'proposal.transitioned' AND data->>'to' = 'executed' AND data->>'twin' = 'sales-twin'
        GROUP BY subject`,
    )).rows;
    expect(transitions.map((t) => t.subject).sort()).toEqual(executed.map((r) => `proposal:${r.id}`).sort());
    expect(transitions.filter((t) => Number(t.n) !== 1)).toEqual([]);
    // The load did go the batched way: most executions were with their decision.
    const inlineLoad = transitions.filter((t) => t.inline && !rows.find((r) => `proposal:${r.id}` === t.subject)!.ref.startsWith('warm-'));
    expect(inlineLoad.length).toBeGreaterThan(limit / 2);

    // The journal is contiguous and verifies with the one verifier key.
    const seqs = (await sql.query<{ n: string; lo: string; hi: string }>(`SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM journal_entries`)).rows[0]!;
    expect(Number(seqs.hi) - Number(seqs.lo) + 1).toBe(Number(seqs.n));
    const out = path.join(tmpDir(), 'export');
    const exported = regent(['journal', 'export', '--out', out], { ...env(0), DATABASE_URL: tdb.env.DATABASE_URL! });
    expect(exported.stderr).toBe('');
    const verified = regent(['journal', 'verify', out, '--key', path.join(env(0).REGENT_DATA_DIR!, 'journal.vkey')]);
    expect(verified.stdout + verified.stderr).toMatch(/verified|ok/i);
    expect(verified.code).toBe(0);
    for (const p of procs) expect({ exit: p!.child.exitCode, out: p!.child.exitCode === null ? '' : p!.out() }).toEqual({ exit: null, out: '' });
  }, 120_000);
});
