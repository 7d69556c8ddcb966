import fs from 'node:fs';
import path from 'node:path';
import type { Database } from '../../src/db/database';
import type { JournalService } from '../../src/journal/service';
import { createPolicyService, type PolicyService } from '../../src/policy/service';
import { createPolicyStore } from '../../src/policy/store';
import { createTestDatabase, describeEachDatabase, tmpDir } from '../support/databases';
import { silentLog, startJournal } from '../support/journal';

const AUTHORITY = (perPeriod: string) => `kind: Authority
id: rep-twin
version: 1
delegator: user:rita
delegate: twin:rep-twin
parent: null
valid: { from: 2026-01-01T00:00:00Z, until: 2027-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: crm.discount.update
    outcome: execute
    limits: { perAction: "5000", perPeriod: { amount: "${perPeriod}", period: month } }
`;

function policiesDir(text: string): string {
  const dir = path.join(tmpDir(), 'policies');
  fs.mkdirSync(path.join(dir, 'authorities'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'authorities', 'rep.yaml'), text);
  return dir;
}

const request = (amount: string, at = '2026-11-10T10:00:00Z') => ({
  principal: 'twin:rep-twin',
  action: 'crm.discount.update',
  resource: { amount, currency: 'EUR', counterparty: 'acme' },
  at,
});

const NOVEMBER = { delegator: 'user:rita', periodKey: 'month:2026-11@UTC', currency: 'EUR' };

describeEachDatabase('the policy service', (getDb) => {
  let db: Database;
  let journal: JournalService;
  let dir: string;
  let policy: PolicyService;

  beforeAll(async () => {
    db = await getDb().open();
    journal = await startJournal(db);
    dir = policiesDir(AUTHORITY('50000'));
    policy = createPolicyService({ dir, store: createPolicyStore(db.sql, db.prisma), journal, log: silentLog, debounceMs: 50 });
    expect(await policy.start()).toMatchObject({ ok: true, changed: true });
  });
  afterAll(async () => {
    policy?.stop();
    await journal?.stop();
    await db?.close();
  });

  it('journals the version it loads, with its hash and a diff summary', async () => {
    const [entry] = await journal.list({ kind: 'policy.loaded', limit: 10 });
    expect(entry).toMatchObject({ kind: 'policy.loaded', actor: 'system', policyVersion: policy.version() });
    expect(entry!.data).toMatchObject({ version: policy.version(), authorities: ['rep-twin'], added: ['policies/authorities/rep.yaml'], previous: null });
  });

  it('does not journal the same version again when it starts over unchanged files', async () => {
    const again = createPolicyService({ dir, store: createPolicyStore(db.sql, db.prisma), journal, log: silentLog });
    expect(await again.start()).toMatchObject({ ok: true, changed: false });
    expect(await journal.list({ kind: 'policy.loaded', limit: 10 })).toHaveLength(1);
  });

  it('never lets 100 concurrent requests together pass a running total', async () => {
    // 100 requests of 1,000.00 EUR against 50,000.00 EUR a month: 50 execute, the rest need approval.
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => policy.decideAndReserve(request('1000.00'), `proposal:c${i}`)));
    const executed = results.filter((r) => r.decision.outcome === 'execute');
    expect(executed).toHaveLength(50);
    for (const r of results.filter((x) => x.decision.outcome !== 'execute')) {
      expect(r.decision.outcome).toBe('approve');
      expect(r.decision.reasons.map((x) => x.code)).toContain('over_period');
      expect(r.reservationIds).toEqual([]);
    }
    expect(await createPolicyStore(db.sql, db.prisma).total(NOVEMBER)).toBe(5_000_000n);
  });

  it('gives a released reservation back to the running total, once', async () => {
    const store = createPolicyStore(db.sql, db.prisma);
    const before = await store.total(NOVEMBER);
    expect(await policy.release('proposal:c0')).toBe(1);
    expect(await policy.release('proposal:c0')).toBe(0);
    expect(await store.total(NOVEMBER)).toBe(before - 100_000n);
    // Now exactly one more 1,000.00 fits, and not one cent after it.
    expect((await policy.decideAndReserve(request('1000.00'), 'proposal:d1')).decision.outcome).toBe('execute');
    expect((await policy.decideAndReserve(request('0.01'), 'proposal:d2')).decision.outcome).toBe('approve');
    expect(await policy.commit('proposal:d1')).toBe(1);
    expect(await store.total(NOVEMBER)).toBe(before);
    expect((await store.reservations('proposal:d1'))[0]).toMatchObject({ status: 'committed', amountMinor: 100_000n });
  });

  it('counts each calendar month separately', async () => {
    const r = await policy.decideAndReserve(request('1000.00', '2026-12-01T00:00:00Z'), 'proposal:dec');
    expect(r.decision.outcome).toBe('execute');
  });

  it('refuses an invalid edit, journals the refusal, and keeps the last good bundle in force', async () => {
    const good = policy.version();
    fs.writeFileSync(path.join(dir, 'authorities', 'rep.yaml'), AUTHORITY('50000').replace('mode: execute', 'mode: sometimes'));
    const r = await policy.reload('user:ann');
    expect(r).toMatchObject({ ok: false, inForce: good });
    expect(policy.version()).toBe(good);
    const [refusal] = await journal.list({ kind: 'policy.refused', limit: 10 });
    expect(refusal).toMatchObject({ actor: 'user:ann', policyVersion: good });
    expect((refusal!.data as { errors: unknown[] }).errors[0]).toMatchObject({ file: 'policies/authorities/rep.yaml', line: 8, message: expect.stringMatching(/unknown mode "sometimes"/) });
  });

  it('reloads by itself when a file changes, and journals the new version', async () => {
    const before = policy.version();
    policy.watch();
    fs.writeFileSync(path.join(dir, 'authorities', 'rep.yaml'), AUTHORITY('60000'));
    const until = Date.now() + 10_000;
    while (policy.version() === before && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(policy.version()).not.toBe(before);
    const loaded = await journal.list({ kind: 'policy.loaded', limit: 10 });
    expect(loaded.at(-1)!.data).toMatchObject({ previous: before, changed: ['policies/authorities/rep.yaml'] });
  });

  it('rolls back to a recorded version, rewriting the files and journaling it', async () => {
    const versions = await policy.versions();
    const first = versions.at(-1)!.version;
    const r = await policy.rollback(first, 'user:dana');
    expect(r).toMatchObject({ ok: true, version: first, changed: true });
    expect(policy.version()).toBe(first);
    expect(fs.readFileSync(path.join(dir, 'authorities', 'rep.yaml'), 'utf8')).toBe(AUTHORITY('50000'));
    const [rb] = await journal.list({ kind: 'policy.rolled_back', limit: 10 });
    expect(rb).toMatchObject({ actor: 'user:dana', policyVersion: first });
    await expect(policy.rollback(`sha256:${'0'.repeat(64)}`, 'user:dana')).rejects.toThrow(/no recorded policy version/);
  });

  it('after a restart with broken files, keeps the last recorded good version in force', async () => {
    policy.stop();
    const good = policy.version();
    fs.writeFileSync(path.join(dir, 'authorities', 'rep.yaml'), 'kind: Authority\nid: [oops\n');
    const again = createPolicyService({ dir, store: createPolicyStore(db.sql, db.prisma), journal, log: silentLog });
    const r = await again.start();
    expect(r.ok).toBe(false);
    expect(again.version()).toBe(good);
    expect(again.decide(request('10.00')).outcome).toBe('execute');
  });

  it('follows a version loaded by another process on the same database, from the stored sources', async () => {
    // Two processes: each has its own copy of the policy files.
    const dirA = policiesDir(AUTHORITY('50000'));
    const dirB = policiesDir(AUTHORITY('50000'));
    const a = createPolicyService({ dir: dirA, store: createPolicyStore(db.sql, db.prisma), journal, log: silentLog });
    const b = createPolicyService({ dir: dirB, store: createPolicyStore(db.sql, db.prisma), journal, log: silentLog });
    try {
      await a.start();
      await b.start({ syncMs: 50 });
      expect(b.version()).toBe(a.version());
      // An edit reaches process A only; B follows the version in force, not its own stale files.
      fs.writeFileSync(path.join(dirA, 'authorities', 'rep.yaml'), AUTHORITY('70'));
      const r = await a.reload('user:admin');
      expect(r).toMatchObject({ ok: true, changed: true });
      for (let i = 0; i < 100 && b.version() !== a.version(); i++) await new Promise((res) => setTimeout(res, 20));
      expect(b.version()).toBe(a.version());
      // B decides by the new limit (70 a month), with the version it used on the decision.
      const d = b.decide({ ...request('80.00'), spent: { month: { amount: '0.00', currency: 'EUR' } } } as never);
      expect(d.policyVersion).toBe(a.version());
      expect(d.outcome).not.toBe('execute');
      expect(await b.sync()).toBe(false); // nothing new
    } finally {
      a.stop();
      b.stop();
    }
  });
});

describe('a policy service with no valid bundle ever', () => {
  it('refuses every decision (fail closed)', async () => {
    const tdb = await createTestDatabase('embedded');
    const db = await tdb.open();
    const journal = await startJournal(db);
    const policy = createPolicyService({ dir: policiesDir('not: [valid'), store: createPolicyStore(db.sql, db.prisma), journal, log: silentLog });
    expect((await policy.start()).ok).toBe(false);
    expect(() => policy.decide(request('1.00'))).toThrow(/no valid policy bundle is in force/);
    await expect(policy.decideAndReserve(request('1.00'), 'proposal:x')).rejects.toThrow(/no valid policy bundle/);
    await journal.stop();
    await db.close();
    await tdb.drop();
  });
});
