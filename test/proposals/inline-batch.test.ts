import fs from 'node:fs';
import path from 'node:path';
import { createRegistry } from '../../src/connectors/registry';
import { createSandboxConnector, describeChange, readSandboxRecord } from '../../src/connectors/sandbox';
import type { Connector } from '../../src/connectors/types';
import type { Database } from '../../src/db/database';
import { exportJournal } from '../../src/journal/export';
import type { JournalService } from '../../src/journal/service';
import { verifyExport } from '../../src/journal/verify';
import { createPeopleService } from '../../src/people/service';
import { createPolicyService, type PolicyService } from '../../src/policy/service';
import { createPolicyStore } from '../../src/policy/store';
import { perRequest } from '../../src/proposals/inline';
import { createProposalService, type ProposalService } from '../../src/proposals/service';
import { createProposalStore } from '../../src/proposals/store';
import type { Proposal } from '../../src/proposals/types';
import { createTwinService, type TwinService } from '../../src/twins/service';
import { describeEachDatabase, tmpDir } from '../support/databases';
import { silentLog, startJournal } from '../support/journal';

/**
 * Requests executed with their decision go to the database in batches (src/proposals/inline.ts):
 * these tests send many at once and check that a batch behaves exactly as the same requests one
 * after another would: running totals, records written twice in one batch, idempotency keys,
 * refusals, and a batch that fails as a whole.
 */

const authority = (id: string, delegator: string, perPeriod: string) => `kind: Authority
id: ${id}
version: 1
delegator: user:${delegator}
delegate: twin:${id}
parent: null
valid: { from: 2026-01-01T00:00:00Z, until: 2035-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: crm.discount.update
    outcome: execute
    when: { discountPct: { $lte: 20 } }
    limits: { perAction: "1000", perPeriod: { amount: "${perPeriod}", period: month } }
    approval:
      tiers:
        - { above: "0", approvers: [role:sales-director], quorum: 1 }
      expiresAfter: PT1H
  - action: crm.note.create
    outcome: execute
`;

const discount = (key: string, account: string, discountPct: number, amount = '10.00') => ({
  action: 'crm.discount.update',
  args: { account, discountPct, amount, currency: 'EUR' },
  rationale: 'renewal',
  idempotencyKey: key,
});

describeEachDatabase('governed actions executed with their decision, in batches', (getDb) => {
  let db: Database;
  let journal: JournalService & { vkeyText: string };
  let policy: PolicyService;
  let twins: TwinService;
  let proposals: ProposalService;
  /** Batches holding an account named here fail as a whole (not a business refusal). */
  const poisoned = new Set<string>();
  /** Set: every batch of several fails the way a lost database connection does. */
  let connectionLost = false;
  /** While set, a transaction waits for it before it begins (so that requests queue up behind it). */
  let hold: Promise<void> | undefined;

  beforeAll(async () => {
    db = await getDb().open();
    journal = await startJournal(db);
    const dir = path.join(tmpDir(), 'policies');
    fs.mkdirSync(path.join(dir, 'authorities'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'authorities', 'wide.yaml'), authority('wide-twin', 'wendy', '1000000'));
    fs.writeFileSync(path.join(dir, 'authorities', 'tight.yaml'), authority('tight-twin', 'tom', '100'));
    fs.writeFileSync(path.join(dir, 'authorities', 'kill.yaml'), authority('kill-twin', 'kim', '1000000'));
    policy = createPolicyService({ dir, store: createPolicyStore(db.sql, db.prisma), journal, log: silentLog });
    expect((await policy.start()).ok).toBe(true);
    const people = createPeopleService({ sql: db.sql, prisma: db.prisma, journal, log: silentLog });
    for (const id of ['wendy', 'tom', 'kim']) await people.addUser({ id, name: id, roles: ['executive'] }, 'system');
    twins = createTwinService({ sql: db.sql, prisma: db.prisma, journal, people, policy, log: silentLog });
    await twins.create({ id: 'wide-twin', owner: 'user:wendy', authority: 'wide-twin', mode: 'execute' }, 'user:wendy');
    await twins.create({ id: 'tight-twin', owner: 'user:tom', authority: 'tight-twin', mode: 'execute' }, 'user:tom');
    await twins.create({ id: 'kill-twin', owner: 'user:kim', authority: 'kill-twin', mode: 'execute' }, 'user:kim');
    const sandbox = createSandboxConnector({ id: 'sandbox', operations: [{ action: 'crm.discount.update' }, { action: 'crm.note.create' }] }, { sql: db.sql });
    const connector: Connector = {
      ...sandbox,
      async executeManyWithin(tx, items, gate) {
        if (connectionLost && items.length > 1) throw new Error('Connection terminated unexpectedly');
        if (items.length > 1 && items.some((i) => poisoned.has(String(i.input.account)))) throw new Error('this batch breaks');
        return sandbox.executeManyWithin!(tx, items, gate);
      },
    };
    const store = createProposalStore(db.sql);
    const begin = store.transaction;
    store.transaction = (async (fn: Parameters<typeof begin>[0]) => {
      await hold;
      return begin(fn);
    }) as typeof begin;
    proposals = createProposalService({
      store,
      journal,
      policy,
      connectors: () => createRegistry([connector]),
      twins,
      log: silentLog,
      options: { pollIntervalMs: 60_000, sweepIntervalMs: 60_000, retryBaseMs: 10 },
    });
    // A fresh database: the first execution writes the demo data in its own transaction.
    expect(await readSandboxRecord(db.sql, { system: 'crm', kind: 'account', key: 'acme' })).toBeUndefined();
    const first = await proposals.create('wide-twin', discount('seed', 'acme', 5));
    expect(first.proposal.status).toBe('executed');
    expect((await readSandboxRecord(db.sql, { system: 'crm', kind: 'account', key: 'acme' }))!.data.discountPct).toBe(5);
  });
  afterAll(async () => {
    await proposals?.stop();
    policy?.stop();
    await journal?.stop();
    await db?.close();
  });

  async function journalVerifies(): Promise<boolean> {
    const out = path.join(tmpDir(), 'export');
    await exportJournal(journal, out, 'test');
    return (await verifyExport(out, { keyText: journal.vkeyText })).ok;
  }

  const until = async (what: () => boolean) => {
    for (let i = 0; i < 1000 && !what(); i++) await new Promise((r) => setTimeout(r, 2));
    expect(what()).toBe(true);
  };

  /**
   * Sends the requests `send` makes while a batch is held up before it begins, so that they all
   * wait and go together in the next one (as they would under load), then lets it run.
   */
  async function together<T>(n: number, send: () => Promise<T>[], meanwhile?: () => Promise<void>): Promise<T[]> {
    let release!: () => void;
    hold = new Promise((r) => (release = r));
    const started = proposals.inlineStats().batches;
    const blocker = proposals.create('wide-twin', discount(`blocker-${started}`, 'initech', 1));
    await until(() => proposals.inlineStats().batches > started);
    const sent = send();
    await until(() => proposals.inlineStats().waiting === n);
    await meanwhile?.();
    hold = undefined;
    release();
    expect((await blocker).proposal.status).toBe('executed');
    return Promise.all(sent);
  }

  const total = async (delegator: string) =>
    (await db.sql.query<{ t: string }>('SELECT COALESCE(sum(total_minor), 0)::text AS t FROM spend_totals WHERE delegator = $1', [delegator]))[0]!.t;

  async function settle(p: Proposal): Promise<Proposal> {
    for (let i = 0; i < 200 && !proposals.isTerminal(p); i++) {
      await proposals.executeDue();
      p = await proposals.get(p.id);
    }
    return p;
  }

  it('executes concurrent requests together, each seeing the records as the ones before it left them', async () => {
    const before = (await readSandboxRecord(db.sql, { system: 'crm', kind: 'account', key: 'globex' }))!;
    const stats = proposals.inlineStats();
    const results = await together(24, () => Array.from({ length: 24 }, (_, i) => proposals.create('wide-twin', discount(`same-${i}`, 'globex', i % 20))));
    const after = proposals.inlineStats();
    expect(after.requests - stats.requests).toBe(1 + 24);
    expect(after.batches - stats.batches).toBe(1 + 1); // the 24 went together
    expect(results.every((r) => r.created && r.proposal.status === 'executed')).toBe(true);
    const record = (await readSandboxRecord(db.sql, { system: 'crm', kind: 'account', key: 'globex' }))!;
    expect(record.version).toBe(before.version + 24);
    // Every request's change is in the history, in the order they were applied, and each
    // result names the version it wrote.
    const history = (record.data.discountHistory as { key: string }[]).slice(-24).map((h) => h.key);
    const byVersion = [...results].sort(
      (a, b) => (a.proposal.result!.changes as { version: number }[])[0]!.version - (b.proposal.result!.changes as { version: number }[])[0]!.version,
    );
    expect(history).toEqual(byVersion.map((r) => r.proposal.id));
    expect(byVersion.map((r) => (r.proposal.result!.changes as { version: number }[])[0]!.version)).toEqual(
      Array.from({ length: 24 }, (_, i) => before.version + 1 + i),
    );
    // What create answered is what is stored; every step is journaled; the journal verifies.
    for (const r of results.slice(0, 3)) {
      expect(JSON.parse(JSON.stringify(await proposals.get(r.proposal.id)))).toStrictEqual(JSON.parse(JSON.stringify(r.proposal)));
      const steps = (await journal.list({ subject: `proposal:${r.proposal.id}`, limit: 10 })).map((e) => e.kind);
      expect(steps).toEqual(['policy.decided', 'proposal.transitioned', 'proposal.transitioned', 'proposal.transitioned']);
    }
    expect(await journalVerifies()).toBe(true);
  });

  it('never lets a batch pass a running total: the requests beyond it wait for approval', async () => {
    const results = await together(30, () => Array.from({ length: 30 }, (_, i) => proposals.create('tight-twin', discount(`tight-${i}`, 'initech', 3))));
    const executed = results.filter((r) => r.proposal.status === 'executed');
    expect(executed).toHaveLength(10); // 10 × 10.00 EUR fill the 100 EUR month
    expect(results.filter((r) => r.proposal.status === 'pending_approval')).toHaveLength(20);
    expect(await total('user:tom')).toBe('10000');
    const ledger = await db.sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM spend_reservations WHERE delegator = 'user:tom' AND status = 'committed'`,
    );
    expect(ledger[0]!.n).toBe(10);
  });

  it('answers one request sent twice at once with one proposal and one effect', async () => {
    const before = (await readSandboxRecord(db.sql, { system: 'crm', kind: 'account', key: 'umbrella' }))!;
    const [a, b, c] = await together(3, () => [
      proposals.create('wide-twin', discount('twice', 'umbrella', 7)),
      proposals.create('wide-twin', discount('twice', 'umbrella', 7)),
      proposals.create('wide-twin', discount('other', 'umbrella', 8)),
    ]);
    expect(a!.proposal.id).toBe(b!.proposal.id);
    expect([a!.created, b!.created].sort()).toEqual([false, true]);
    expect(c!.proposal.status).toBe('executed');
    expect((await readSandboxRecord(db.sql, { system: 'crm', kind: 'account', key: 'umbrella' }))!.version).toBe(before.version + 2);
    expect(await db.sql.query('SELECT id FROM proposals WHERE idempotency_key = $1', ['twice'])).toHaveLength(1);
  });

  it('leaves a request the business system refuses to the ordinary path, and executes the rest', async () => {
    const results = await together(3, () => [
      proposals.create('wide-twin', discount('ok-1', 'acme', 4)),
      proposals.create('wide-twin', discount('refused', 'nobody-inc', 4)),
      proposals.create('wide-twin', discount('ok-2', 'acme', 6)),
    ]);
    expect(results.map((r) => r.proposal.status)).toEqual(['executed', 'approved', 'executed']);
    const refused = await settle(results[1]!.proposal);
    expect(refused.status).toBe('failed');
    expect(refused.error).toMatch(/nobody-inc/);
    const ledger = await db.sql.query<{ status: string }>('SELECT status FROM spend_reservations WHERE ref = $1', [`proposal:${refused.id}`]);
    expect(ledger).toEqual([{ status: 'released' }]);
  });

  it('tries the requests of a batch that fails as a whole one by one, so the others still execute', async () => {
    poisoned.add('poison-inc');
    try {
      const stats = proposals.inlineStats();
      const results = await together(4, () => [
        proposals.create('wide-twin', discount('p-1', 'acme', 2)),
        proposals.create('wide-twin', discount('p-2', 'acme', 3)),
        proposals.create('wide-twin', discount('p-poison', 'poison-inc', 3)),
        proposals.create('wide-twin', discount('p-3', 'globex', 3)),
      ]);
      expect(results.map((r) => r.proposal.status)).toEqual(['executed', 'executed', 'approved', 'executed']);
      expect(proposals.inlineStats().requests - stats.requests).toBe(1 + 4 + 4); // the four were tried again, one by one
      // Nothing of the failed batch stayed: one reservation per proposal, and the refused one
      // is booked once, on the ordinary path.
      for (const r of results) {
        const rows = await db.sql.query('SELECT 1 FROM spend_reservations WHERE ref = $1', [`proposal:${r.proposal.id}`]);
        expect(rows).toHaveLength(1);
      }
      expect(await journalVerifies()).toBe(true);
    } finally {
      poisoned.clear();
    }
  });

  it('does not try requests one by one when the database failed: the ordinary path answers each', async () => {
    connectionLost = true;
    try {
      const stats = proposals.inlineStats();
      const results = await together(6, () => Array.from({ length: 6 }, (_, i) => proposals.create('wide-twin', discount(`lost-${i}`, 'acme', 2))));
      expect(results.map((r) => r.proposal.status)).toEqual(Array(6).fill('approved'));
      expect(proposals.inlineStats().requests - stats.requests).toBe(1 + 6); // never tried again one by one
    } finally {
      connectionLost = false;
    }
    expect(perRequest(Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }))).toBe(false);
    expect(perRequest(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }))).toBe(false);
    expect(perRequest(new Error('connect ECONNREFUSED 127.0.0.1:5432'))).toBe(false);
    expect(perRequest(Object.assign(new Error('unsupported Unicode escape sequence'), { code: '22P05' }))).toBe(true);
    expect(perRequest(new Error('sandbox record crm/note/x was created by another writer during the batch'))).toBe(true);
  });

  it('reads the twin when the batch runs: a kill switch engaged while a request waits stops it executing with the decision', async () => {
    try {
      const [held] = await together(
        1,
        () => [proposals.create('kill-twin', discount('while-killed', 'acme', 3))],
        () => twins.setKillSwitch({ engaged: true, twin: 'kill-twin' }, 'user:kim').then(() => undefined),
      );
      expect(held!.proposal.status).toBe('approved'); // recorded for the outbox, which the switch holds back
      await proposals.executeDue();
      expect((await proposals.get(held!.proposal.id)).status).toBe('approved');
    } finally {
      await twins.setKillSwitch({ engaged: false, twin: 'kill-twin' }, 'user:kim');
    }
  });

  it('records what a write changed, not the whole record twice', () => {
    const history = Array.from({ length: 50 }, (_, i) => ({ n: i }));
    const change = describeChange(
      'crm/account/acme',
      7,
      { name: 'Acme', discountPct: 5, discountHistory: history },
      { name: 'Acme', discountPct: 10, discountHistory: [...history.slice(1), { n: 50 }] },
    );
    expect(change).toEqual({
      record: 'crm/account/acme',
      version: 7,
      before: { discountPct: 5 },
      after: { discountPct: 10 },
      appended: { discountHistory: [{ n: 50 }] },
    });
    // A list replaced (not appended to) is shown before and after; a new record whole.
    expect(describeChange('r', 2, { tags: ['a', 'b'] }, { tags: ['c'] })).toEqual({ record: 'r', version: 2, before: { tags: ['a', 'b'] }, after: { tags: ['c'] } });
    expect(describeChange('r', 1, null, { a: 1 })).toEqual({ record: 'r', version: 1, before: null, after: { a: 1 } });
    expect(describeChange('r', 2, { list: [] }, { list: [1] })).toEqual({ record: 'r', version: 2, before: {}, after: {}, appended: { list: [1] } });
  });
});
