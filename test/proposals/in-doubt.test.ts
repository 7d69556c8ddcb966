/**
 * Actions in doubt, against a real Regent app over HTTP with a rest connector pointing
 * at a scriptable local business system: a call whose outcome is unknown on a non-idempotent
 * operation goes in_doubt (never failed), its amount stays reserved, a person (the twin's owner
 * or an admin) settles it once, and where the operation declares a status lookup Regent settles
 * it itself. An operation whose system honours Idempotency-Key is simply repeated.
 */
import fs from 'node:fs';
import path from 'node:path';
import { openRegent, type Regent } from '../../src/app';
import { loadConfig } from '../../src/config/config';
import { startReceiver, type Received, type Receiver, type Reply } from '../../src/connectors/testing/receiver';
import { createHttpApp, httpDepsOf } from '../../src/http/app';
import { listen, type RunningServer } from '../../src/http/server';
import { createProposalService, type ProposalService } from '../../src/proposals/service';
import { createProposalStore } from '../../src/proposals/store';
import type { Proposal } from '../../src/proposals/types';
import { call } from '../support/api';
import { describeEachDatabase, tmpDir } from '../support/databases';
import { silentLog } from '../support/journal';

const SHIPPED = path.resolve(__dirname, '../../policies');
const TIMEOUT_MS = 300;
const LOOKUP_MS = 1000; // how often an in-doubt call is looked up again (the app's and the sweeper's)
/** Longer than any operation's timeout: the system "does not answer". */
const HANG: Reply = { status: 201, delayMs: 5_000 };

/** Olga's twin: discount requests run on their own within 100 EUR a month. */
const OLGA = `kind: Authority
id: olga-twin
version: 1
delegator: user:olga
delegate: twin:olga-twin
parent: null
valid: { from: 2026-01-01T00:00:00Z, until: 2036-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: crm.discount.request
    outcome: execute
    limits: { perPeriod: { amount: "100", period: month } }
`;

/** Kai's twin: the operations with a status lookup, an honoured key, and the shipped playbook's. */
const KAI = `kind: Authority
id: kai-twin
version: 1
delegator: user:kai
delegate: twin:kai-twin
parent: null
valid: { from: 2026-01-01T00:00:00Z, until: 2036-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: crm.discount.request
    outcome: execute
    limits: { perPeriod: { amount: "100000", period: month } }
  - action: crm.discount.checked
    outcome: execute
    limits: { perPeriod: { amount: "100000", period: month } }
  - action: crm.refund.checked
    outcome: execute
  - action: crm.credit.apply
    outcome: execute
  - action: crm.credit.once
    outcome: execute
  - action: crm.discount.update
    outcome: execute
    limits: { perPeriod: { amount: "100000", period: month } }
  - action: crm.note.create
    outcome: execute
`;

const MONEY = `input:
      type: object
      required: [account, amount, currency]
      properties: { account: { type: string }, amount: { type: string }, currency: { type: string } }
    attributes: { counterparty: account, amount: amount, currency: currency }`;

const CRM = (url: string) => `kind: Connector
id: crm
type: rest
baseUrl: ${url}
auth: { header: Authorization, scheme: Bearer, secretEnv: REGENT_TEST_IN_DOUBT_TOKEN }
operations:
  - action: crm.discount.request
    method: POST
    path: /accounts/{account}/discount-requests
    ${MONEY}
    timeoutMs: ${TIMEOUT_MS}
  - action: crm.discount.checked
    method: POST
    path: /accounts/{account}/discount-requests
    ${MONEY}
    timeoutMs: ${TIMEOUT_MS}
    status: { path: "/accounts/{account}/discount-requests/{idempotencyKey}", timeoutMs: 1000 }
  - action: crm.refund.checked
    method: POST
    path: /accounts/{account}/refunds
    ${MONEY}
    timeoutMs: ${TIMEOUT_MS}
    status: { path: "/accounts/{account}/refunds/{idempotencyKey}", field: state, executed: [applied], notExecuted: [rejected, unknown], timeoutMs: 1000 }
  - action: crm.credit.apply
    method: POST
    path: /accounts/{account}/credits
    ${MONEY}
    idempotencyKey: honoured
    timeoutMs: ${TIMEOUT_MS}
    retries: 1
  - action: crm.credit.once
    method: POST
    path: /accounts/{account}/credits
    ${MONEY}
    idempotencyKey: honoured
    timeoutMs: ${TIMEOUT_MS}
    retries: 0
  - action: crm.discount.update
    method: POST
    path: /accounts/{account}/discount
    input:
      type: object
      required: [account, discountPct, amount]
      properties: { account: { type: string }, discountPct: { type: number }, amount: { type: string }, currency: { type: string } }
    attributes: { counterparty: account, amount: amount, discountPct: discountPct, currency: currency }
    timeoutMs: ${TIMEOUT_MS}
`;

const SANDBOX = 'kind: Connector\nid: sandbox\ntype: sandbox\noperations:\n  - action: crm.note.create\n';

/** Prometheus text → series (name and labels as printed) → value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** The value of `name` whose labels include every one of `labels` (in any order). */
function series(m: Map<string, number>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const [k, v] of m) {
    const [n, rest] = k.includes('{') ? [k.slice(0, k.indexOf('{')), k.slice(k.indexOf('{'))] : [k, ''];
    if (n !== name) continue;
    if (Object.entries(labels).every(([l, val]) => rest.includes(`${l}="${val}"`))) return v;
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually<T>(fn: () => Promise<T | undefined>, ms = 5_000): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined || Date.now() > end) return v;
    await sleep(20);
  }
}

describeEachDatabase('actions in doubt', (getDb) => {
  let receiver: Receiver;
  let regent: Regent;
  let server: RunningServer;
  /** A second executor and sweeper on the same database, with a short lookup interval and fast retries. */
  let sweeper: ProposalService;
  const keys: Record<string, string> = {};
  /** How the business system answers, per account (the default: 201 at once). */
  const script = new Map<string, (req: Received, n: number) => Reply>();
  const seen = new Map<string, number>();

  beforeAll(async () => {
    receiver = await startReceiver((req) => {
      const account = /^\/accounts\/([^/?]+)/.exec(req.url)?.[1] ?? '';
      const key = `${req.method} ${account}`;
      const n = (seen.get(key) ?? 0) + 1;
      seen.set(key, n);
      return script.get(account)?.(req, n) ?? { status: 201, body: { accepted: account } };
    });
    const policies = path.join(tmpDir('regent-in-doubt-'), 'policies');
    for (const sub of ['authorities', 'connectors', 'playbooks']) fs.mkdirSync(path.join(policies, sub), { recursive: true });
    fs.writeFileSync(path.join(policies, 'authorities', 'olga-twin.yaml'), OLGA);
    fs.writeFileSync(path.join(policies, 'authorities', 'kai-twin.yaml'), KAI);
    fs.writeFileSync(path.join(policies, 'connectors', 'crm.yaml'), CRM(receiver.url));
    fs.writeFileSync(path.join(policies, 'connectors', 'sandbox.yaml'), SANDBOX);
    // The shipped playbook, unchanged: its discount step goes to the rest connector here.
    fs.copyFileSync(path.join(SHIPPED, 'playbooks', 'renewal-discount.yaml'), path.join(policies, 'playbooks', 'renewal-discount.yaml'));
    process.env.REGENT_TEST_IN_DOUBT_TOKEN = 'crm-token-in-doubt-5e1';
    const config = loadConfig({
      ...getDb().env,
      REGENT_POLICIES_DIR: policies,
      REGENT_CHECKPOINT_INTERVAL_MS: '60000',
      REGENT_AGENT_RATE_PER_MINUTE: '1000',
      REGENT_WEBHOOK_URL: `${receiver.url}/hooks`,
      REGENT_WEBHOOK_SECRET: 'webhook-secret-in-doubt-0123',
      REGENT_IN_DOUBT_LOOKUP_MS: String(LOOKUP_MS),
    });
    regent = await openRegent(config, silentLog, { command: 'jest', policies: 'load' });
    const first = await regent.people.ensureFirstAdmin();
    keys.admin = first!.apiKey;
    for (const [id, roles] of [
      ['olga', ['executive']],
      ['kai', ['executive']],
      ['ivan', ['executive']],
      ['sara', ['approver', 'sales-director']],
      ['audrey', ['auditor']],
    ] as const)
      keys[id] = (await regent.people.addUser({ id, name: id, roles: [...roles] }, 'system')).apiKey;
    keys['olga-twin'] = (
      await regent.twins.create({ id: 'olga-twin', owner: 'user:olga', authority: 'olga-twin', mode: 'execute' }, 'user:olga')
    ).apiKey;
    keys['kai-twin'] = (
      await regent.twins.create({ id: 'kai-twin', owner: 'user:kai', authority: 'kai-twin', mode: 'execute' }, 'user:kai')
    ).apiKey;
    server = await listen(createHttpApp(httpDepsOf(regent, { http: { rateLimitPerMinute: 0 } })), '127.0.0.1', 0, silentLog);
    // The app's executor runs on each request (kick); its periodic sweeper is not started, so the
    // status lookups below happen exactly when a test asks for them.
    sweeper = createProposalService({
      store: createProposalStore(regent.db.sql),
      journal: regent.journal,
      policy: regent.policy!,
      connectors: () => regent.connectors!,
      twins: regent.twins,
      log: silentLog,
      options: { lookupIntervalMs: LOOKUP_MS, retryBaseMs: 10, maxAttempts: 2, pollIntervalMs: 60_000, sweepIntervalMs: 60_000 },
    });
  });

  afterAll(async () => {
    await sweeper?.stop();
    await server?.close(1000);
    await regent?.close();
    await receiver?.close();
    delete process.env.REGENT_TEST_IN_DOUBT_TOKEN;
  });

  const api = (method: string, p: string, key: string | null, body?: unknown) => call(`${server.url}${p}`, method, key, body);
  const reconcile = (id: string, key: string, body: unknown) => api('POST', `/v1/proposals/${id}/reconcile`, key, body);

  let n = 0;
  async function request(twin: string, action: string, args: Record<string, unknown>): Promise<Record<string, any>> {
    const r = await api('POST', '/v1/proposals', keys[twin]!, { action, args, rationale: 'in doubt test', idempotencyKey: `k-${++n}` });
    expect(r.status).toBe(201);
    return r.body!;
  }

  /** Waits until the proposal leaves approved/executing (and, with `more`, those statuses too). */
  async function settled(id: string, more: string[] = []): Promise<Proposal> {
    const open = ['approved', 'executing', ...more];
    for (let i = 0; i < 500; i++) {
      const p = await regent.proposals!.get(id);
      if (!open.includes(p.status)) return p;
      await sleep(20);
    }
    return regent.proposals!.get(id);
  }

  const requestsFor = (id: string) => receiver.requests.filter((r) => r.headers['idempotency-key'] === id);
  const reservations = (id: string) =>
    regent.db.sql.query<{ status: string; amount_minor: string }>(
      `SELECT status, amount_minor::text AS amount_minor FROM spend_reservations WHERE ref = $1`,
      [`proposal:${id}`],
    );
  async function monthTotal(delegator: string): Promise<number> {
    const rows = await regent.db.sql.query<{ total: string | null }>(
      `SELECT sum(total_minor) AS total FROM spend_totals WHERE delegator = $1`,
      [delegator],
    );
    return Number(rows[0]?.total ?? 0);
  }
  async function scrape(): Promise<Map<string, number>> {
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    return parseMetrics(await res.text());
  }
  async function journalOf(id: string): Promise<Array<{ kind: string; actor: string; data: Record<string, any> }>> {
    const r = await api('GET', `/v1/journal?proposal=${id}&limit=100`, keys.audrey!);
    expect(r.status).toBe(200);
    return r.body!.entries;
  }

  /** Ids of the proposals of test 1 and 2, in the order they were made. */
  const olga: Record<string, string> = {};

  it('puts a non-idempotent call the system does not answer in time in doubt, not failed, sent once and still counted against the month', async () => {
    script.set('slow-a', () => HANG);
    const a = await request('olga-twin', 'crm.discount.request', { account: 'slow-a', amount: '60.00', currency: 'EUR' });
    expect(a).toMatchObject({ status: 'approved', decision: { outcome: 'execute' } });
    olga.a = a.id;
    const p = await settled(a.id);
    expect(p.status).toBe('in_doubt');
    expect(p.reconciliation).toBeNull();
    expect(p.inDoubt).toEqual({
      since: expect.any(String),
      sentAt: expect.any(String),
      executor: regent.proposals!.executorId,
      connector: 'crm',
      checkIn: `crm for idempotency key ${a.id}`,
      lastHeard: `crm did not answer POST /accounts/slow-a/discount-requests within ${TIMEOUT_MS} ms`,
      error: expect.stringContaining('is not idempotent, so it is not repeated'),
    });
    expect(Date.parse(p.inDoubt!.sentAt!)).toBeLessThanOrEqual(Date.parse(p.inDoubt!.since));
    // The same over HTTP, for the owner.
    const shown = await api('GET', `/v1/proposals/${a.id}`, keys.olga!);
    expect(shown.body).toMatchObject({
      status: 'in_doubt',
      inDoubt: { connector: 'crm', checkIn: p.inDoubt!.checkIn },
      reconciliation: null,
    });

    // Sent exactly once, with its credential; a later executor pass does not send it again.
    expect(requestsFor(a.id)).toHaveLength(1);
    expect(requestsFor(a.id)[0]).toMatchObject({ method: 'POST', url: '/accounts/slow-a/discount-requests' });
    expect(requestsFor(a.id)[0]!.headers.authorization).toBe('Bearer crm-token-in-doubt-5e1');
    expect(await regent.proposals!.executeDue()).toBe(0);
    expect(requestsFor(a.id)).toHaveLength(1);

    // Its amount stays reserved: 60 of the month's 100 are taken, so 50 more would exceed it.
    expect(await reservations(a.id)).toEqual([{ status: 'reserved', amount_minor: '6000' }]);
    expect(await monthTotal('user:olga')).toBe(6000);
    const b = await request('olga-twin', 'crm.discount.request', { account: 'fast', amount: '50.00', currency: 'EUR' });
    expect(b).toMatchObject({ status: 'pending_approval', decision: { outcome: 'approve' } });
    expect(b.decision.reasons.map((r: { code: string }) => r.code)).toContain('over_period');
    expect(b.decision.reasons.find((r: { code: string }) => r.code === 'over_period').message).toMatch(/60\.00 EUR already spent/);
    olga.b = b.id;
    await sleep(100);
    expect(requestsFor(b.id)).toHaveLength(0);

    // The journal says what is known; a webhook announces it like a pending approval.
    const entries = await journalOf(a.id);
    const toDoubt = entries.find((e) => e.kind === 'proposal.transitioned' && e.data.to === 'in_doubt');
    expect(toDoubt).toMatchObject({
      actor: 'system',
      data: { from: 'executing', inDoubt: { connector: 'crm', executor: p.inDoubt!.executor, sentAt: p.inDoubt!.sentAt } },
    });
    expect(entries.some((e) => e.kind === 'proposal.transitioned' && e.data.to === 'failed')).toBe(false);
    const hooks = await eventually(async () => {
      const rows = await regent.db.sql.query<{ event: string; payload: Record<string, unknown> }>(
        `SELECT event, payload FROM webhook_deliveries WHERE payload->>'proposal' = $1`,
        [a.id],
      );
      return rows.length ? rows : undefined;
    });
    expect(hooks).toEqual([
      {
        event: 'proposal.in_doubt',
        payload: expect.objectContaining({
          proposal: a.id,
          twin: 'olga-twin',
          action: 'crm.discount.request',
          connector: 'crm',
          checkIn: p.inDoubt!.checkIn,
        }),
      },
    ]);

    const m = await scrape();
    expect(series(m, 'regent_in_doubt')).toBe(1);
  });

  it('lets only the twin’s owner or an admin reconcile, with a valid outcome and evidence', async () => {
    const id = olga.a!;
    const evidence = 'CRM shows the discount request applied at 10:02';
    // Never the twin; never an approver or another executive.
    expect((await reconcile(id, keys['olga-twin']!, { outcome: 'executed', evidence })).status).toBe(403);
    expect((await reconcile(id, keys.sara!, { outcome: 'executed', evidence })).status).toBe(403);
    const ivan = await reconcile(id, keys.ivan!, { outcome: 'executed', evidence });
    expect(ivan.status).toBe(403);
    expect(ivan.headers.get('content-type')).toMatch(/problem\+json/);
    expect((await reconcile(id, keys.audrey!, { outcome: 'executed', evidence })).status).toBe(403);
    // A bad body names the field.
    const noEvidence = await reconcile(id, keys.olga!, { outcome: 'executed' });
    expect(noEvidence.status).toBe(400);
    expect(noEvidence.body!.detail).toMatch(/evidence/);
    const blank = await reconcile(id, keys.olga!, { outcome: 'executed', evidence: '   ' });
    expect(blank.status).toBe(400);
    expect(blank.body!.detail).toMatch(/evidence/);
    const maybe = await reconcile(id, keys.olga!, { outcome: 'maybe', evidence });
    expect(maybe.status).toBe(400);
    expect(maybe.body!.detail).toMatch(/outcome/);
    expect((await reconcile(id, keys.olga!, { outcome: 'executed', evidence, extra: 1 })).status).toBe(400);
    // No such proposal.
    expect((await reconcile('not-a-uuid', keys.olga!, { outcome: 'executed', evidence })).status).toBe(404);
    expect((await reconcile('00000000-0000-4000-8000-000000000000', keys.admin!, { outcome: 'executed', evidence })).status).toBe(404);
    // Nothing of that changed it.
    const still = await regent.proposals!.get(id);
    expect(still).toMatchObject({ status: 'in_doubt', reconciliation: null });
    expect(await reservations(id)).toEqual([{ status: 'reserved', amount_minor: '6000' }]);
    expect((await journalOf(id)).filter((e) => e.kind === 'proposal.reconciled')).toEqual([]);
  });

  it('settles it as executed when the owner says so: the amount stays spent, the journal has who and why, and only once', async () => {
    const id = olga.a!;
    const before = await scrape();
    const evidence = 'CRM shows the discount request applied at 10:02';
    const r = await reconcile(id, keys.olga!, { outcome: 'executed', evidence });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      id,
      status: 'executed',
      owner: 'user:olga',
      reconciliation: { outcome: 'executed', evidence, by: 'user:olga', at: expect.any(String) },
      inDoubt: { connector: 'crm', checkIn: `crm for idempotency key ${id}` },
      error: null,
    });
    // Committed: the month still counts the 60, so 50 more is still over the limit.
    expect(await reservations(id)).toEqual([{ status: 'committed', amount_minor: '6000' }]);
    expect(await monthTotal('user:olga')).toBe(6000);
    const c = await request('olga-twin', 'crm.discount.request', { account: 'fast', amount: '50.00', currency: 'EUR' });
    expect(c.status).toBe('pending_approval');
    expect(c.decision.reasons.map((x: { code: string }) => x.code)).toContain('over_period');

    const entries = await journalOf(id);
    expect(entries.filter((e) => e.kind === 'proposal.reconciled')).toEqual([
      expect.objectContaining({
        actor: 'user:olga',
        data: expect.objectContaining({
          outcome: 'executed',
          evidence,
          twin: 'olga-twin',
          inDoubt: expect.objectContaining({ connector: 'crm' }),
        }),
      }),
    ]);
    expect(entries.filter((e) => e.kind === 'proposal.transitioned' && e.data.from === 'in_doubt')).toEqual([
      expect.objectContaining({ actor: 'user:olga', data: expect.objectContaining({ to: 'executed' }) }),
    ]);

    // Once only, whoever asks.
    const again = await reconcile(id, keys.olga!, { outcome: 'not_executed', evidence: 'changed my mind' });
    expect(again.status).toBe(409);
    expect(again.body!.detail).toMatch(/already reconciled by user:olga/);
    expect((await reconcile(id, keys.admin!, { outcome: 'executed', evidence })).status).toBe(409);
    expect((await regent.proposals!.get(id)).reconciliation!.by).toBe('user:olga');

    const after = await scrape();
    const k = { outcome: 'executed', by: 'person' };
    expect(series(after, 'regent_reconciliations_total', k)! - (series(before, 'regent_reconciliations_total', k) ?? 0)).toBe(1);
    expect(series(after, 'regent_in_doubt')).toBe(0);
  });

  it('releases the amount when an admin settles it as not executed, so a request that now fits executes', async () => {
    script.set('slow-e', () => HANG);
    const e = await request('olga-twin', 'crm.discount.request', { account: 'slow-e', amount: '30.00', currency: 'EUR' });
    expect(e.status).toBe('approved'); // 60 + 30 fits the 100
    expect((await settled(e.id)).status).toBe('in_doubt');
    expect(await monthTotal('user:olga')).toBe(9000);
    const f = await request('olga-twin', 'crm.discount.request', { account: 'fast', amount: '20.00', currency: 'EUR' });
    expect(f.status).toBe('pending_approval'); // 90 + 20 does not
    const before = await scrape();

    const evidence = 'No request with this key in the CRM audit log for 2026-12-02';
    const r = await reconcile(e.id, keys.admin!, { outcome: 'not_executed', evidence });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'failed', reconciliation: { outcome: 'not_executed', by: 'user:admin', evidence } });
    expect(r.body!.error).toBe(`not executed (reconciled by user:admin): ${evidence}`);
    expect(await reservations(e.id)).toEqual([{ status: 'released', amount_minor: '3000' }]);
    expect(await monthTotal('user:olga')).toBe(6000);
    const g = await request('olga-twin', 'crm.discount.request', { account: 'fast', amount: '20.00', currency: 'EUR' });
    expect(g).toMatchObject({ status: 'approved', decision: { outcome: 'execute' } });
    expect((await settled(g.id)).status).toBe('executed');
    expect(requestsFor(g.id)).toHaveLength(1);
    // The released call was never sent again.
    expect(requestsFor(e.id)).toHaveLength(1);

    // A proposal that was never in doubt cannot be reconciled.
    const notInDoubt = await reconcile(g.id, keys.olga!, { outcome: 'not_executed', evidence: 'x' });
    expect(notInDoubt.status).toBe(409);
    expect(notInDoubt.body!.detail).toMatch(/only a proposal in doubt can be reconciled/);
    const pending = await reconcile(f.id, keys.olga!, { outcome: 'executed', evidence: 'x' });
    expect(pending.status).toBe(409);

    const entries = await journalOf(e.id);
    expect(entries.find((x) => x.kind === 'proposal.reconciled')).toMatchObject({
      actor: 'user:admin',
      data: { outcome: 'not_executed', evidence },
    });
    expect(entries.find((x) => x.kind === 'proposal.transitioned' && x.data.from === 'in_doubt')).toMatchObject({
      actor: 'user:admin',
      data: { to: 'failed' },
    });
    const after = await scrape();
    const k = { outcome: 'not_executed', by: 'person' };
    expect(series(after, 'regent_reconciliations_total', k)! - (series(before, 'regent_reconciliations_total', k) ?? 0)).toBe(1);
    expect(series(after, 'regent_in_doubt')).toBe(0);
  });

  it('puts a non-idempotent call answered 5xx in doubt, and fails one the system refused with 4xx (releasing it)', async () => {
    script.set('five', () => ({ status: 502, body: 'bad gateway' }));
    script.set('four', () => ({ status: 422, body: { error: 'discount too high' } }));
    const five = await request('kai-twin', 'crm.discount.request', { account: 'five', amount: '10.00', currency: 'EUR' });
    const four = await request('kai-twin', 'crm.discount.request', { account: 'four', amount: '10.00', currency: 'EUR' });
    const p5 = await settled(five.id);
    expect(p5.status).toBe('in_doubt');
    expect(p5.inDoubt!.lastHeard).toMatch(/^HTTP 502 from crm for POST \/accounts\/five\/discount-requests/);
    expect(await reservations(five.id)).toEqual([{ status: 'reserved', amount_minor: '1000' }]);
    expect(requestsFor(five.id)).toHaveLength(1);
    const p4 = await settled(four.id);
    expect(p4).toMatchObject({ status: 'failed', inDoubt: null });
    expect(p4.error).toMatch(/HTTP 422/);
    expect(await reservations(four.id)).toEqual([{ status: 'released', amount_minor: '1000' }]);
    // Settled by its owner, so the gauge counts only what the next tests leave.
    expect((await reconcile(five.id, keys.kai!, { outcome: 'not_executed', evidence: 'the CRM has no such request' })).status).toBe(200);
  });

  it('settles an in-doubt call at once from the system’s status answer: 200 executed, 404 not executed, both by system', async () => {
    const before = await scrape();
    script.set('look-yes', (req) => (req.method === 'POST' ? HANG : { status: 200, body: { id: 'dr-1', applied: true } }));
    script.set('look-no', (req) => (req.method === 'POST' ? HANG : { status: 404, body: { error: 'no such request' } }));
    const yes = await request('kai-twin', 'crm.discount.checked', { account: 'look-yes', amount: '10.00', currency: 'EUR' });
    const no = await request('kai-twin', 'crm.discount.checked', { account: 'look-no', amount: '15.00', currency: 'EUR' });

    const py = await settled(yes.id, ['in_doubt']);
    expect(py).toMatchObject({
      status: 'executed',
      reconciliation: { outcome: 'executed', by: 'system' },
      result: { status: 200, body: { id: 'dr-1', applied: true } },
      inDoubt: { connector: 'crm', lastHeard: expect.stringContaining('did not answer') },
    });
    expect(py.reconciliation!.evidence).toBe(`crm answered GET /accounts/look-yes/discount-requests/${yes.id} with HTTP 200`);
    expect(await reservations(yes.id)).toEqual([{ status: 'committed', amount_minor: '1000' }]);
    const ry = requestsFor(yes.id);
    expect(ry.map((r) => `${r.method} ${r.url}`)).toEqual([
      `POST /accounts/look-yes/discount-requests`,
      `GET /accounts/look-yes/discount-requests/${yes.id}`,
    ]);
    expect(ry[1]!.headers.authorization).toBe('Bearer crm-token-in-doubt-5e1');
    expect(ry[1]!.body).toBe('');

    const pn = await settled(no.id, ['in_doubt']);
    expect(pn).toMatchObject({ status: 'failed', reconciliation: { outcome: 'not_executed', by: 'system' } });
    expect(pn.reconciliation!.evidence).toMatch(new RegExp(`^crm answered GET /accounts/look-no/discount-requests/${no.id}: HTTP 404 `));
    expect(pn.error).toMatch(/^not executed \(reconciled by system\)/);
    expect(await reservations(no.id)).toEqual([{ status: 'released', amount_minor: '1500' }]);
    expect(requestsFor(no.id).filter((r) => r.method === 'POST')).toHaveLength(1);

    for (const id of [yes.id, no.id]) {
      const entries = await journalOf(id);
      expect(entries.filter((e) => e.kind === 'proposal.reconciled')).toEqual([expect.objectContaining({ actor: 'system' })]);
      expect(entries.map((e) => e.data.to).filter(Boolean)).toEqual([
        'approved',
        'executing',
        'in_doubt',
        id === yes.id ? 'executed' : 'failed',
      ]);
    }
    const after = await scrape();
    for (const outcome of ['executed', 'not_executed']) {
      const k = { outcome, by: 'system' };
      expect(series(after, 'regent_reconciliations_total', k)! - (series(before, 'regent_reconciliations_total', k) ?? 0)).toBe(1);
    }
    // A person cannot overrule what the system settled.
    expect((await reconcile(yes.id, keys.kai!, { outcome: 'not_executed', evidence: 'x' })).status).toBe(409);
  });

  it('leaves it in doubt while the status answer settles nothing, and a later lookup settles it', async () => {
    let answer: Reply = { status: 500, body: 'status service down' };
    script.set('look-later', (req) => (req.method === 'POST' ? HANG : answer));
    const p = await request('kai-twin', 'crm.discount.checked', { account: 'look-later', amount: '10.00', currency: 'EUR' });
    const doubt = await settled(p.id);
    expect(doubt).toMatchObject({ status: 'in_doubt', reconciliation: null });
    await regent.proposals!.idle(); // the lookup made when it went in doubt has ended
    expect(requestsFor(p.id).map((r) => r.method)).toEqual(['POST', 'GET']); // asked once, at once
    expect((await regent.proposals!.get(p.id)).status).toBe('in_doubt');
    expect(await reservations(p.id)).toEqual([{ status: 'reserved', amount_minor: '1000' }]);
    expect(series(await scrape(), 'regent_in_doubt')).toBe(1);

    // Not asked again before the interval has passed.
    expect(await regent.proposals!.lookupDue()).toBe(0);
    expect(requestsFor(p.id)).toHaveLength(2);
    // The system answers now: the next lookup (the sweeper's) settles it.
    answer = { status: 200, body: { id: 'dr-7' } };
    await sleep(LOOKUP_MS + 50);
    expect(await regent.proposals!.lookupDue()).toBe(1);
    const done = await regent.proposals!.get(p.id);
    expect(done).toMatchObject({ status: 'executed', reconciliation: { outcome: 'executed', by: 'system' } });
    expect(requestsFor(p.id).map((r) => r.method)).toEqual(['POST', 'GET', 'GET']);
    expect(await reservations(p.id)).toEqual([{ status: 'committed', amount_minor: '1000' }]);
    // Nothing more to look up.
    expect(await regent.proposals!.lookupDue()).toBe(0);
    expect(requestsFor(p.id)).toHaveLength(3);
  });

  it('looks an in-doubt call up again only every lookupIntervalMs, and a not-executed answer then releases it', async () => {
    let answer: Reply = { status: 503 };
    script.set('look-interval', (req) => (req.method === 'POST' ? HANG : answer));
    const p = await request('kai-twin', 'crm.discount.checked', { account: 'look-interval', amount: '10.00', currency: 'EUR' });
    expect((await settled(p.id)).status).toBe('in_doubt');
    await regent.proposals!.idle();
    const gets = () => requestsFor(p.id).filter((r) => r.method === 'GET').length;
    expect(gets()).toBe(1);
    expect((await regent.proposals!.get(p.id)).status).toBe('in_doubt');
    // Not again until the interval passed; then the sweeper asks (still 503: nothing settled),
    // and again not before the next interval.
    expect(await sweeper.lookupDue()).toBe(0);
    expect(gets()).toBe(1);
    await sleep(LOOKUP_MS + 50);
    expect(await sweeper.lookupDue()).toBe(0);
    expect(gets()).toBe(2);
    expect(await sweeper.lookupDue()).toBe(0);
    expect(gets()).toBe(2);
    answer = { status: 410 };
    await sleep(LOOKUP_MS + 50);
    expect(await sweeper.lookupDue()).toBe(1);
    expect(gets()).toBe(3);
    const done = await regent.proposals!.get(p.id);
    expect(done).toMatchObject({ status: 'failed', reconciliation: { outcome: 'not_executed', by: 'system' } });
    expect(done.reconciliation!.evidence).toMatch(/HTTP 410/);
    expect(await reservations(p.id)).toEqual([{ status: 'released', amount_minor: '1000' }]);
  });

  it('reads a declared status field: a value that settles nothing keeps it in doubt, a notExecuted value settles it', async () => {
    let state = 'queued';
    script.set('refund', (req) => (req.method === 'POST' ? HANG : { status: 200, body: { state } }));
    const p = await request('kai-twin', 'crm.refund.checked', { account: 'refund', amount: '10.00', currency: 'EUR' });
    expect((await settled(p.id)).status).toBe('in_doubt');
    await regent.proposals!.idle();
    expect(requestsFor(p.id).map((r) => `${r.method} ${r.url}`)).toEqual([
      'POST /accounts/refund/refunds',
      `GET /accounts/refund/refunds/${p.id}`,
    ]);
    expect((await regent.proposals!.get(p.id)).status).toBe('in_doubt'); // "queued" settles nothing
    state = 'rejected';
    await sleep(LOOKUP_MS + 50);
    expect(await regent.proposals!.lookupDue()).toBe(1);
    const done = await regent.proposals!.get(p.id);
    expect(done).toMatchObject({ status: 'failed', reconciliation: { outcome: 'not_executed', by: 'system' } });
    expect(done.reconciliation!.evidence).toBe(`crm answered GET /accounts/refund/refunds/${p.id}: state = "rejected"`);
  });

  it('repeats a timed-out call with the same Idempotency-Key where the system honours it, and executes it (never in doubt)', async () => {
    script.set('credit', (_req, n) => (n === 1 ? HANG : { status: 201, body: { credit: 'c-1' } }));
    const p = await request('kai-twin', 'crm.credit.apply', { account: 'credit', amount: '10.00', currency: 'EUR' });
    const done = await settled(p.id);
    expect(done).toMatchObject({
      status: 'executed',
      inDoubt: null,
      reconciliation: null,
      result: { status: 201, body: { credit: 'c-1' } },
    });
    const sent = requestsFor(p.id);
    expect(sent).toHaveLength(2);
    expect(sent.map((r) => r.url)).toEqual(['/accounts/credit/credits', '/accounts/credit/credits']);
    expect(sent[1]!.body).toBe(sent[0]!.body);
    expect(receiver.requests.filter((r) => r.url === '/accounts/credit/credits')).toHaveLength(2); // none under another key
    const entries = await journalOf(p.id);
    expect(entries.some((e) => e.data.to === 'in_doubt')).toBe(false);
  });

  it('puts an honoured-key call in doubt, not failed, when every repeat went unanswered', async () => {
    script.set('credit-never', () => HANG);
    const { proposal } = await sweeper.create('kai-twin', {
      action: 'crm.credit.once',
      args: { account: 'credit-never', amount: '10.00', currency: 'EUR' },
      rationale: 'in doubt test',
      idempotencyKey: 'k-credit-never',
    });
    let p = proposal;
    for (let i = 0; i < 200 && ['approved', 'executing'].includes(p.status); i++) {
      await sleep(25);
      await sweeper.executeDue();
      p = await sweeper.get(p.id);
    }
    expect(p.status).toBe('in_doubt');
    expect(p.inDoubt).toMatchObject({
      connector: 'crm',
      executor: sweeper.executorId,
      lastHeard: expect.stringContaining(`did not answer POST /accounts/credit-never/credits within ${TIMEOUT_MS} ms`),
    });
    // Every attempt (maxAttempts 2 here) carried the one key.
    const sent = requestsFor(p.id);
    expect(sent).toHaveLength(2);
    expect((await journalOf(p.id)).some((e) => e.data.to === 'failed')).toBe(false);
    expect((await reconcile(p.id, keys.kai!, { outcome: 'executed', evidence: 'the CRM shows credit c-9 under this key' })).status).toBe(
      200,
    );
  });

  it('makes an objective whose step is in doubt wait like an approval, and continue once the owner reconciles it', async () => {
    regent.objectives!.start();
    script.set('acme', (req) => (req.url.endsWith('/discount') ? HANG : { status: 201 }));
    const created = await api('POST', '/v1/twins/kai-twin/objectives', keys.kai!, {
      text: 'Keep the account',
      playbook: 'renewal-discount',
      params: { account: 'acme', discountPct: 5, amount: '10.00' },
    });
    expect(created.status).toBe(201);
    const oid = created.body!.id as string;
    let o: Record<string, any> = {};
    for (let i = 0; i < 500; i++) {
      o = (await api('GET', `/v1/objectives/${oid}`, keys.kai!)).body!;
      if (o.status === 'waiting_for_approval' || ['completed', 'failed', 'cancelled'].includes(o.status)) break;
      await sleep(30);
    }
    expect(o.status).toBe('waiting_for_approval');
    expect(o.proposals).toHaveLength(1);
    expect(o.proposals[0]).toMatchObject({ action: 'crm.discount.update', status: 'in_doubt' });
    expect(o.summary).toMatch(/in doubt/);
    const pid = o.proposals[0].id as string;
    // It stays waiting: the step is not sent again, and the note step does not run.
    await sleep(500);
    o = (await api('GET', `/v1/objectives/${oid}`, keys.kai!)).body!;
    expect(o.status).toBe('waiting_for_approval');
    expect(o.proposals).toHaveLength(1);
    expect(requestsFor(pid)).toHaveLength(1);

    expect((await reconcile(pid, keys.kai!, { outcome: 'executed', evidence: 'the CRM shows 5% on acme' })).status).toBe(200);
    for (let i = 0; i < 500; i++) {
      o = (await api('GET', `/v1/objectives/${oid}`, keys.kai!)).body!;
      if (['completed', 'failed', 'cancelled'].includes(o.status)) break;
      await sleep(30);
    }
    expect(o.status).toBe('completed');
    expect(o.steps.map((s: { key: string; status: string }) => [s.key, s.status])).toEqual([
      ['discount', 'executed'],
      ['note', 'executed'],
    ]);
    expect(requestsFor(pid)).toHaveLength(1);
  });

  it('ends an objective whose in-doubt step is settled as not executed, as a failed step would, and never sends it again', async () => {
    script.set('globex', (req) => (req.url.endsWith('/discount') ? HANG : { status: 201 }));
    const created = await api('POST', '/v1/twins/kai-twin/objectives', keys.kai!, {
      text: 'Keep the account',
      playbook: 'renewal-discount',
      params: { account: 'globex', discountPct: 5, amount: '10.00' },
    });
    expect(created.status).toBe(201);
    const oid = created.body!.id as string;
    const wait = async (want: string[]) => {
      let o: Record<string, any> = {};
      for (let i = 0; i < 500; i++) {
        o = (await api('GET', `/v1/objectives/${oid}`, keys.kai!)).body!;
        if (want.includes(o.status)) break;
        await sleep(30);
      }
      return o;
    };
    let o = await wait(['waiting_for_approval', 'completed', 'failed']);
    expect(o.status).toBe('waiting_for_approval');
    const pid = o.proposals[0].id as string;
    expect((await reconcile(pid, keys.admin!, { outcome: 'not_executed', evidence: 'no 5% on globex in the CRM' })).status).toBe(200);
    o = await wait(['completed', 'failed', 'cancelled']);
    expect(o.status).toBe('failed');
    expect(o.steps.map((s: { key: string; status: string }) => [s.key, s.status])).toEqual([['discount', 'failed']]);
    expect(o.proposals).toHaveLength(1);
    expect(requestsFor(pid)).toHaveLength(1);
  });
});
