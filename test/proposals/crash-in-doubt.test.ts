/**
 * A Regent process SIGKILLed (for real) while its call to a slow business system is in flight,
 * after the request arrived and before its answer was recorded.
 *
 * - Not idempotent: nobody can know whether it took effect, so it goes in_doubt, never failed;
 *   its amount still counts against the month, the owner settles it with evidence, and the
 *   journal holds it all and verifies.
 * - Idempotent: it is repeated with the same key and executes.
 *
 * Takeover comes from the dead process's liveness lock, not its lease: the lease here is 120 s,
 * far longer than any wait below, so a takeover at all proves it (the seconds it took are
 * printed, not asserted; `regent bench` is where speed is measured).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { startReceiver, type Receiver } from '../../src/connectors/testing/receiver';
import { generateSigningKey, signingKeyToString } from '../../src/journal/note';
import { call } from '../support/api';
import { startServe, type ServeProcess } from '../support/cli';
import { createTestDatabase, POSTGRES_ENABLED, tmpDir, type TestDatabase } from '../support/databases';

const AUTHORITY = `kind: Authority
id: ops-twin
version: 1
delegator: user:olga
delegate: twin:ops-twin
parent: null
valid: { from: 2026-01-01T00:00:00Z, until: 2036-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: crm.discount.request
    outcome: execute
    limits: { perPeriod: { amount: "100", period: month } }
  - action: crm.credit.apply
    outcome: execute
`;

const CONNECTOR = (url: string) => `kind: Connector
id: crm
type: rest
baseUrl: ${url}
operations:
  - action: crm.discount.request
    method: POST
    path: /accounts/{account}/discount-requests
    input:
      type: object
      required: [account, amount, currency, ref]
      properties: { account: { type: string }, amount: { type: string }, currency: { type: string }, ref: { type: string } }
    attributes: { counterparty: account, amount: amount, currency: currency }
    timeoutMs: 60000
  - action: crm.credit.apply
    method: POST
    path: /accounts/{account}/credits
    input:
      type: object
      required: [account, ref]
      properties: { account: { type: string }, ref: { type: string } }
    attributes: { counterparty: account }
    idempotencyKey: honoured
    timeoutMs: 60000
    retries: 0
`;

const LEASE_MS = 120_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function kill(p: ServeProcess | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGKILL');
  await exited;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

for (const kind of ['embedded', 'postgres'] as const) {
  const d = kind === 'postgres' && !POSTGRES_ENABLED ? describe.skip : describe;
  d(`a process SIGKILLed mid-call (${kind === 'embedded' ? 'PGlite, restarted' : 'PostgreSQL, a second process takes over'})`, () => {
    let tdb: TestDatabase;
    let receiver: Receiver;
    const procs: (ServeProcess | undefined)[] = [];
    let env: (i: number) => Record<string, string>;
    let olga: string;
    let admin: string;
    let twinKey: string;
    let auditor: string;
    /** The first request of each ref hangs (the process is killed meanwhile); later ones answer. */
    const seen = new Map<string, number>();

    beforeAll(async () => {
      tdb = await createTestDatabase(kind);
      receiver = await startReceiver((req) => {
        const ref = (JSON.parse(req.body || '{}') as { ref?: string }).ref ?? '';
        const n = (seen.get(ref) ?? 0) + 1;
        seen.set(ref, n);
        return ref.startsWith('hang-') && n === 1 ? { status: 201, delayMs: 50_000 } : { status: 201, body: { accepted: ref } };
      });
      const policies = path.join(tmpDir(), 'policies');
      fs.mkdirSync(path.join(policies, 'authorities'), { recursive: true });
      fs.mkdirSync(path.join(policies, 'connectors'), { recursive: true });
      fs.writeFileSync(path.join(policies, 'authorities', 'ops.yaml'), AUTHORITY);
      fs.writeFileSync(path.join(policies, 'connectors', 'crm.yaml'), CONNECTOR(receiver.url));
      const key = signingKeyToString(generateSigningKey('crash.regent.test/journal'));
      const dirs = [tmpDir(), tmpDir()];
      env = (i) => ({
        ...tdb.env,
        // Embedded: the one data directory; PostgreSQL: a working directory each.
        REGENT_DATA_DIR: kind === 'embedded' ? tdb.dataDir : dirs[i]!,
        REGENT_SIGNING_KEY: key,
        REGENT_POLICIES_DIR: policies,
        REGENT_EXECUTION_LEASE_MS: String(LEASE_MS),
        LOG_LEVEL: 'warn',
        PORT: '0',
      });
      procs[0] = await startServe(env(0));
      admin = /API key (rgt_[A-Za-z0-9_-]+)/.exec(procs[0].out())![1]!;
      if (kind === 'postgres') procs[1] = await startServe(env(1));
      const url = procs[0].url;
      olga = (await call(`${url}/v1/users`, 'POST', admin, { id: 'olga', name: 'Olga', roles: ['executive'] })).body!.apiKey;
      auditor = (await call(`${url}/v1/users`, 'POST', admin, { id: 'aud', name: 'Aud', roles: ['auditor'] })).body!.apiKey;
      const twin = await call(`${url}/v1/twins`, 'POST', olga, { id: 'ops-twin', owner: 'user:olga', authority: 'ops-twin', mode: 'execute' });
      expect(twin.status).toBe(201);
      twinKey = twin.body!.apiKey;
    }, 120_000);

    afterAll(async () => {
      for (const p of procs) await kill(p);
      await receiver?.close();
      await tdb?.drop();
    });

    /**
     * Kills the process whose executor sent `ref` (by pid, from the call's record) once the
     * business system has it; returns the survivor (embedded: the restarted process).
     */
    async function killMidCall(ref: string, id: string): Promise<{ survivor: ServeProcess; killedAt: number }> {
      await until(`the business system to receive ${ref}`, async () => (seen.get(ref) ? true : undefined), 20_000);
      let victim = 0;
      if (kind === 'postgres') {
        const c = new Client({ connectionString: (tdb.config as { url: string }).url });
        await c.connect();
        const [row] = (await c.query<{ started_by: string }>('SELECT started_by FROM connector_calls WHERE idempotency_key = $1', [id])).rows;
        await c.end();
        victim = procs.findIndex((p) => p && row && row.started_by.startsWith(`executor-${p.child.pid}-`));
        expect(victim).toBeGreaterThanOrEqual(0);
      }
      await kill(procs[victim]);
      const killedAt = Date.now();
      procs[victim] = kind === 'embedded' ? await startServe(env(0)) : undefined;
      return { survivor: (procs[0] ?? procs[1])!, killedAt };
    }

    /** PostgreSQL: two processes again (one was killed by the test before). */
    async function twoProcesses(): Promise<void> {
      if (kind !== 'postgres') return;
      for (const i of [0, 1]) if (!procs[i]) procs[i] = await startServe(env(i));
    }

    const status = async (p: ServeProcess, id: string, key = olga) => (await call(`${p.url}/v1/proposals/${id}`, 'GET', key)).body!;

    it('a non-idempotent call cut off by the crash goes in doubt, stays counted against the month, and is settled by its owner', async () => {
      const created = await call(`${procs[0]!.url}/v1/proposals`, 'POST', twinKey, {
        action: 'crm.discount.request',
        args: { account: 'acme', amount: '80.00', currency: 'EUR', ref: 'hang-discount' },
        rationale: 'keep acme',
        idempotencyKey: 'hang-discount',
      });
      expect(created.body!.status).toBe('approved');
      const id = created.body!.id as string;
      const { survivor, killedAt } = await killMidCall('hang-discount', id);

      const doubtful = await until('the proposal to go in doubt', async () => {
        const p = await status(survivor, id);
        return p.status === 'in_doubt' ? p : p.status === 'executing' || p.status === 'approved' ? undefined : p;
      });
      process.stdout.write(`[${kind}] in doubt ${((Date.now() - killedAt) / 1000).toFixed(2)} s after the SIGKILL (lease ${LEASE_MS / 1000} s)\n`);
      expect(doubtful.status).toBe('in_doubt');
      expect(doubtful.inDoubt).toMatchObject({
        connector: 'crm',
        checkIn: `crm for idempotency key ${id}`,
        executor: expect.stringMatching(/^executor-/),
        sentAt: expect.any(String),
        lastHeard: null,
      });
      // Never sent a second time: a repeat could give the discount twice.
      expect(seen.get('hang-discount')).toBe(1);

      // 80 of 100 EUR may already be given away: a 30 EUR request does not fit the month and waits.
      const over = await call(`${survivor.url}/v1/proposals`, 'POST', twinKey, {
        action: 'crm.discount.request',
        args: { account: 'acme', amount: '30.00', currency: 'EUR', ref: 'after-crash' },
        rationale: 'another',
        idempotencyKey: 'after-crash',
      });
      expect(over.body!.status).toBe('pending_approval');
      expect(over.body!.decision.reasons.map((r: { code: string }) => r.code)).toContain('over_period');
      expect(seen.get('after-crash')).toBeUndefined();

      // The owner looks in crm, finds the discount request applied, and says so.
      const settled = await call(`${survivor.url}/v1/proposals/${id}/reconcile`, 'POST', olga, {
        outcome: 'executed',
        evidence: 'crm shows discount request hang-discount applied',
      });
      expect(settled.status).toBe(200);
      expect(settled.body).toMatchObject({ status: 'executed', reconciliation: { outcome: 'executed', by: 'user:olga' } });
      const again = await call(`${survivor.url}/v1/proposals/${id}/reconcile`, 'POST', olga, { outcome: 'not_executed', evidence: 'changed my mind' });
      expect(again.status).toBe(409);

      // The journal holds it all, in order, and verifies.
      const entries = (await call(`${survivor.url}/v1/journal?subject=proposal:${id}&limit=100`, 'GET', auditor)).body!.entries as {
        kind: string;
        actor: string;
        data: Record<string, unknown>;
      }[];
      expect(entries.map((e) => (e.kind === 'proposal.transitioned' ? `${e.data.to}` : e.kind))).toEqual([
        'policy.decided',
        'approved',
        'executing',
        // taken over from the dead executor: attempt 2, which learns the call's outcome is unknown
        'executing',
        'in_doubt',
        'proposal.reconciled',
        'executed',
      ]);
      expect(entries.find((e) => e.kind === 'proposal.reconciled')).toMatchObject({ actor: 'user:olga', data: { evidence: 'crm shows discount request hang-discount applied' } });
      const verified = await call(`${survivor.url}/v1/journal/verify`, 'GET', auditor);
      expect(verified.body).toMatchObject({ ok: true });
    }, 120_000);

    it('an idempotent call cut off by the crash is repeated with the same key and executes', async () => {
      await twoProcesses();
      const created = await call(`${procs[0]!.url}/v1/proposals`, 'POST', twinKey, {
        action: 'crm.credit.apply',
        args: { account: 'acme', ref: 'hang-credit' },
        rationale: 'goodwill',
        idempotencyKey: 'hang-credit',
      });
      expect(created.body!.status).toBe('approved');
      const id = created.body!.id as string;
      const { survivor, killedAt } = await killMidCall('hang-credit', id);
      const done = await until('the credit to execute', async () => {
        const p = await status(survivor, id);
        return p.status === 'executed' || p.status === 'failed' || p.status === 'in_doubt' ? p : undefined;
      });
      process.stdout.write(`[${kind}] idempotent call repeated and executed ${((Date.now() - killedAt) / 1000).toFixed(2)} s after the SIGKILL\n`);
      expect(done.status).toBe('executed');
      const sent = receiver.requests.filter((r) => r.url === '/accounts/acme/credits');
      expect(sent).toHaveLength(2);
      expect(new Set(sent.map((r) => r.headers['idempotency-key']))).toEqual(new Set([id]));
    }, 120_000);
  });
}
