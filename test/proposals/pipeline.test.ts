import fs from 'node:fs';
import path from 'node:path';
import { createSandboxConnector, readSandboxRecord, seedSandbox } from '../../src/connectors/sandbox';
import { createRegistry } from '../../src/connectors/registry';
import type { Connector } from '../../src/connectors/types';
import type { Database } from '../../src/db/database';
import type { JournalService } from '../../src/journal/service';
import { createPeopleService, type PeopleService } from '../../src/people/service';
import { createPolicyService, type PolicyService } from '../../src/policy/service';
import { createPolicyStore } from '../../src/policy/store';
import { createProposalService, type ProposalService } from '../../src/proposals/service';
import { createProposalStore } from '../../src/proposals/store';
import type { Proposal } from '../../src/proposals/types';
import { createTwinService, type TwinService } from '../../src/twins/service';
import { describeEachDatabase, tmpDir } from '../support/databases';
import { silentLog, startJournal } from '../support/journal';

/** Rita's sales twin: small discounts execute, larger ones need the sales director, big ones two CFOs. */
const AUTHORITY = `kind: Authority
id: rep-twin
version: 1
delegator: user:rita
delegate: twin:rep-twin
parent: null
valid: { from: 2026-01-01T00:00:00Z, until: 2030-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: crm.discount.update
    outcome: execute
    when: { discountPct: { $lte: 20 } }
    limits: { perAction: "1000", perPeriod: { amount: "100000", period: month } }
    approval:
      tiers:
        - { above: "0", approvers: [role:sales-director], quorum: 1 }
        - { above: "5000", approvers: [role:cfo], quorum: 2 }
      expiresAfter: PT1H
      escalateTo: user:rita
  - action: crm.note.create
    outcome: execute
  - action: crm.refund.issue
    outcome: execute
    limits: { perPeriod: { amount: "100000", period: month } }
`;

const discount = (amount: string, key: string, extra: Record<string, unknown> = {}) => ({
  action: 'crm.discount.update',
  args: { account: 'acme', discountPct: 10, amount, currency: 'EUR', ...extra },
  rationale: 'renewal at risk',
  idempotencyKey: key,
});

describeEachDatabase('the governed action pipeline', (getDb) => {
  let db: Database;
  let journal: JournalService;
  let policy: PolicyService;
  let people: PeopleService;
  let twins: TwinService;
  let proposals: ProposalService;
  let connector: Connector;
  let executions = 0;

  const reviewer = (id: string, roles: string[]) => ({ id, roles });
  const sam = reviewer('sam', ['approver', 'sales-director']);
  const carl = reviewer('carl', ['approver', 'cfo']);
  const cleo = reviewer('cleo', ['approver', 'cfo']);
  const rita = reviewer('rita', ['executive', 'sales-director']);

  /** Runs whatever earlier tests left approved, then says how many calls reached the connector. */
  async function drained(): Promise<number> {
    await proposals.idle();
    while ((await proposals.executeDue()) > 0);
    return executions;
  }

  async function settle(id: string): Promise<Proposal> {
    for (let i = 0; i < 200; i++) {
      await proposals.executeDue();
      const p = await proposals.get(id);
      if (!['approved', 'executing'].includes(p.status)) return p;
      await new Promise((r) => setTimeout(r, 20));
    }
    return proposals.get(id);
  }

  beforeAll(async () => {
    db = await getDb().open();
    journal = await startJournal(db);
    const dir = path.join(tmpDir(), 'policies');
    fs.mkdirSync(path.join(dir, 'authorities'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'authorities', 'rep.yaml'), AUTHORITY);
    policy = createPolicyService({ dir, store: createPolicyStore(db.sql, db.prisma), journal, log: silentLog });
    expect((await policy.start()).ok).toBe(true);
    people = createPeopleService({ sql: db.sql, prisma: db.prisma, journal, log: silentLog });
    for (const [id, roles] of [
      ['rita', ['executive', 'sales-director']],
      ['sam', ['approver', 'sales-director']],
      ['carl', ['approver', 'cfo']],
      ['cleo', ['approver', 'cfo']],
      ['audrey', ['auditor']],
    ] as const) {
      await people.addUser({ id, name: id, roles: [...roles] }, 'system');
    }
    twins = createTwinService({ sql: db.sql, prisma: db.prisma, journal, people, policy, log: silentLog });
    await twins.create({ id: 'rep-twin', owner: 'user:rita', authority: 'rep-twin', mode: 'execute' }, 'user:rita');
    await seedSandbox(db.sql);
    const real = createSandboxConnector(
      { id: 'sandbox', operations: [{ action: 'crm.discount.update' }, { action: 'crm.note.create' }] },
      { sql: db.sql },
    );
    // Counts calls that reach the connector, to assert what must never happen. It does not act
    // inside a proposal's transaction (no executeManyWithin), so every execution here goes
    // through the outbox; the connector that does is tried below.
    connector = { id: real.id, type: real.type, operations: real.operations, simulate: real.simulate.bind(real), execute: (a, i, k) => (executions++, real.execute(a, i, k)) };
    proposals = createProposalService({
      store: createProposalStore(db.sql),
      journal,
      policy,
      connectors: () => createRegistry([connector]),
      twins,
      log: silentLog,
      options: { pollIntervalMs: 60_000, sweepIntervalMs: 60_000, retryBaseMs: 10 },
    });
  });
  afterAll(async () => {
    await proposals?.stop();
    policy?.stop();
    await journal?.stop();
    await db?.close();
  });

  it('executes a request within authority at once, exactly once, and queues it for post-hoc audit', async () => {
    const before = await drained();
    const { proposal, created } = await proposals.create('rep-twin', discount('500.00', 'k-exec'));
    expect(created).toBe(true);
    expect(proposal.status).toBe('approved');
    expect(proposal.decision.outcome).toBe('execute');
    const done = await settle(proposal.id);
    expect(done.status).toBe('executed');
    expect(done.audit).toBe('pending');
    expect(executions - before).toBe(1);
    const acme = await readSandboxRecord(db.sql, { system: 'crm', kind: 'account', key: 'acme' });
    expect(acme?.data).toMatchObject({ discountPct: 10 });
    const kinds = (await journal.list({ subject: `proposal:${proposal.id}`, limit: 20 })).map((e) => `${e.kind}:${(e.data as { to?: string }).to ?? ''}`);
    expect(kinds).toEqual(['policy.decided:', 'proposal.transitioned:approved', 'proposal.transitioned:executing', 'proposal.transitioned:executed']);
  });

  it('returns the same proposal for the same idempotency key, and refuses the key for other args', async () => {
    const first = await proposals.create('rep-twin', discount('10.00', 'k-idem'));
    const again = await proposals.create('rep-twin', discount('10.00', 'k-idem'));
    expect(again).toEqual({ proposal: expect.objectContaining({ id: first.proposal.id }), created: false });
    await expect(proposals.create('rep-twin', discount('11.00', 'k-idem'))).rejects.toThrow(/already used for a different request/);
  });

  it('refuses schema-violating args with a specific message, journals the refusal, and never executes', async () => {
    const before = await drained();
    await expect(proposals.create('rep-twin', discount('12,00', 'k-bad'))).rejects.toThrow(/amount/);
    await expect(proposals.create('rep-twin', { ...discount('1.00', 'k-bad2'), args: { account: 'acme' } })).rejects.toThrow(/args of crm\.discount\.update/);
    const refused = await journal.list({ kind: 'proposal.refused', limit: 10 });
    expect(refused.length).toBeGreaterThanOrEqual(2);
    await proposals.executeDue();
    expect(executions).toBe(before);
  });

  it('denies an action no connector offers', async () => {
    const { proposal } = await proposals.create('rep-twin', { action: 'payments.transfer.create', args: { amount: '1.00' }, rationale: 'x', idempotencyKey: 'k-unknown' });
    expect(proposal.status).toBe('denied');
    expect(proposal.decision.outcome).toBe('deny');
  });

  it('denies an action its authority grants but no connector offers, and reserves nothing for it', async () => {
    const { proposal } = await proposals.create('rep-twin', { action: 'crm.refund.issue', args: { amount: '10.00', currency: 'EUR' }, rationale: 'x', idempotencyKey: 'k-noconnector' });
    expect(proposal.status).toBe('denied');
    expect(proposal.decision.reasons[0]).toMatchObject({ code: 'no_grant', message: 'no connector offers crm.refund.issue' });
    expect(await db.sql.query('SELECT id FROM spend_reservations WHERE ref = $1', [`proposal:${proposal.id}`])).toEqual([]);
  });

  it('waits for the named approver, counts only the tier’s people, and executes after approval', async () => {
    const before = await drained();
    const { proposal } = await proposals.create('rep-twin', discount('2000.00', 'k-approve'));
    expect(proposal.status).toBe('pending_approval');
    expect(proposal.approval).toMatchObject({ approvers: ['role:sales-director'], quorum: 1 });
    await proposals.executeDue();
    expect(executions).toBe(before); // nothing runs before approval
    // The CFO tier is not this one; the twin's owner holds the role but is not named by the tier.
    await expect(proposals.review(proposal.id, carl, { decision: 'approve' })).rejects.toThrow(/approval needs one of role:sales-director/);
    await expect(proposals.review(proposal.id, rita, { decision: 'approve' })).rejects.toThrow(/owns this twin/);
    const approved = await proposals.review(proposal.id, sam, { decision: 'approve', comment: 'ok' });
    expect(approved.status).toBe('approved');
    expect((await settle(proposal.id)).status).toBe('executed');
    expect(executions - before).toBe(1);
  });

  it('needs two distinct people for a quorum of two', async () => {
    const { proposal } = await proposals.create('rep-twin', discount('6000.00', 'k-quorum'));
    expect(proposal.approval).toMatchObject({ approvers: ['role:cfo'], quorum: 2 });
    expect((await proposals.review(proposal.id, carl, { decision: 'approve' })).status).toBe('pending_approval');
    await expect(proposals.review(proposal.id, carl, { decision: 'approve' })).rejects.toThrow(/already approved/);
    expect((await proposals.review(proposal.id, cleo, { decision: 'approve' })).status).toBe('approved');
  });

  it('lets exactly one of two simultaneous approvals move a quorum-1 proposal', async () => {
    const { proposal } = await proposals.create('rep-twin', discount('1500.00', 'k-race'));
    const sally = reviewer('sam', ['approver', 'sales-director']);
    const results = await Promise.allSettled([proposals.review(proposal.id, sam, { decision: 'approve' }), proposals.review(proposal.id, sally, { decision: 'approve' })]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
  });

  it('never executes after a rejection, and keeps the reason for the twin', async () => {
    const before = await drained();
    const { proposal } = await proposals.create('rep-twin', discount('3000.00', 'k-reject'));
    await expect(proposals.review(proposal.id, sam, { decision: 'reject' })).rejects.toThrow(/needs a reason/);
    const rejected = await proposals.review(proposal.id, sam, { decision: 'reject', comment: 'too generous for acme' });
    expect(rejected.status).toBe('rejected');
    expect(rejected.error).toMatch(/too generous for acme/);
    await proposals.executeDue();
    expect(executions).toBe(before);
    await expect(proposals.review(proposal.id, sam, { decision: 'approve' })).rejects.toThrow(/is rejected/);
  });

  it('re-decides an edit by policy, and an edit past the authority can never execute', async () => {
    const before = await drained();
    const { proposal } = await proposals.create('rep-twin', discount('2500.00', 'k-edit'));
    // Within the grant: the edit is decided again and now executes at once.
    const smaller = await proposals.review(proposal.id, sam, { decision: 'edit', args: { account: 'acme', discountPct: 10, amount: '900.00', currency: 'EUR' } });
    expect(smaller.status).toBe('approved');
    expect(smaller.argsHash).not.toBe(proposal.argsHash);
    expect((await settle(proposal.id)).status).toBe('executed');
    // Past the grant (discount above 20%): denied, never executed.
    const second = (await proposals.create('rep-twin', discount('2500.00', 'k-edit2'))).proposal;
    const past = await proposals.review(second.id, sam, { decision: 'edit', args: { account: 'acme', discountPct: 40, amount: '2500.00', currency: 'EUR' } });
    expect(past.status).toBe('denied');
    await proposals.executeDue();
    expect(executions - before).toBe(1);
  });

  it('records only, in propose mode', async () => {
    await twins.setMode('rep-twin', 'propose', 'user:rita');
    try {
      const before = await drained();
      const { proposal } = await proposals.create('rep-twin', discount('100.00', 'k-propose'));
      expect(proposal.status).toBe('proposed');
      await proposals.executeDue();
      expect(executions).toBe(before);
    } finally {
      await twins.setMode('rep-twin', 'execute', 'user:rita');
    }
  });

  it('holds approved work while the kill switch is engaged and runs it once lifted', async () => {
    const before = await drained();
    await twins.setKillSwitch({ engaged: true }, 'user:rita');
    const { proposal } = await proposals.create('rep-twin', discount('50.00', 'k-kill'));
    expect(proposal.status).toBe('approved');
    await proposals.executeDue();
    expect(executions).toBe(before);
    expect((await proposals.get(proposal.id)).status).toBe('approved');
    await twins.setKillSwitch({ engaged: false }, 'user:rita');
    expect((await settle(proposal.id)).status).toBe('executed');
    expect(executions - before).toBe(1);
  });

  it('holds approved work while the global switch has no row, as the twins read it (fail closed)', async () => {
    const before = await drained();
    const [row] = await db.sql.query<{ engaged: boolean; updated_by: string }>(`DELETE FROM switches WHERE name = 'kill' RETURNING engaged, updated_by`);
    let id = '';
    try {
      expect(await twins.isHalted('rep-twin')).toBe(true);
      const { proposal } = await proposals.create('rep-twin', discount('55.00', 'k-kill-no-row'));
      id = proposal.id;
      expect(proposal.status).toBe('approved');
      await proposals.idle();
      await proposals.executeDue();
      expect(executions).toBe(before);
      expect((await proposals.get(proposal.id)).status).toBe('approved');
    } finally {
      await db.sql.query(`INSERT INTO switches (name, engaged, updated_by) VALUES ('kill', $1, $2)`, [row!.engaged, row!.updated_by]);
    }
    expect((await settle(id)).status).toBe('executed');
    expect(executions - before).toBe(1);
  });

  it('does not execute, after the kill switch is lifted, work that expired meanwhile', async () => {
    const before = await drained();
    await twins.setKillSwitch({ engaged: true, twin: 'rep-twin' }, 'user:rita');
    const { proposal } = await proposals.create('rep-twin', discount('60.00', 'k-kill-expire'));
    await db.sql.query(`UPDATE proposals SET expires_at = now() - interval '1 second' WHERE id = $1`, [proposal.id]);
    await proposals.sweep();
    await twins.setKillSwitch({ engaged: false, twin: 'rep-twin' }, 'user:rita');
    await proposals.executeDue();
    expect((await proposals.get(proposal.id)).status).toBe('expired');
    expect(executions).toBe(before);
  });

  it('escalates an unanswered approval once, then expires it', async () => {
    const { proposal } = await proposals.create('rep-twin', discount('4000.00', 'k-expire'));
    await db.sql.query(`UPDATE proposals SET expires_at = now() - interval '1 second' WHERE id = $1`, [proposal.id]);
    await proposals.sweep();
    const escalated = await proposals.get(proposal.id);
    expect(escalated.status).toBe('pending_approval');
    expect(escalated.approval).toMatchObject({ escalated: true, escalateTo: ['user:rita'] });
    await db.sql.query(`UPDATE proposals SET expires_at = now() - interval '1 second' WHERE id = $1`, [proposal.id]);
    await proposals.sweep();
    expect((await proposals.get(proposal.id)).status).toBe('expired');
    await expect(proposals.review(proposal.id, sam, { decision: 'approve' })).rejects.toThrow(/is expired/);
  });

  it('takes over work whose executor died mid-execution without a second business effect', async () => {
    const before = await drained();
    await twins.setKillSwitch({ engaged: true }, 'user:rita');
    const { proposal } = await proposals.create('rep-twin', { action: 'crm.note.create', args: { account: 'acme', text: 'called back' }, rationale: 'log the call', idempotencyKey: 'k-crash' });
    await twins.setKillSwitch({ engaged: false }, 'user:rita');
    // Another executor claims it, makes the business call, and dies before recording the result.
    const dead = createProposalService({ store: createProposalStore(db.sql), journal, policy, connectors: () => createRegistry([connector]), twins, log: silentLog, executorId: 'dead', options: { leaseMs: 1 } });
    await db.sql.transaction((tx) => createProposalStore(db.sql).claim(tx, 'dead', 1, 10));
    await connector.execute(proposal.action, proposal.args, proposal.id);
    await new Promise((r) => setTimeout(r, 20));
    expect((await settle(proposal.id)).status).toBe('executed');
    expect(executions - before).toBe(2); // the dead executor's call and the takeover's replay...
    const notes = await db.sql.query<{ n: string }>(`SELECT count(*) AS n FROM connector_calls WHERE idempotency_key = $1`, [proposal.id]);
    expect(Number(notes[0]!.n)).toBe(1); // ...but one business effect
    await dead.stop();
  });

  it('keeps auditors’ post-hoc verdicts, once', async () => {
    const { proposal } = await proposals.create('rep-twin', discount('20.00', 'k-audit'));
    await settle(proposal.id);
    expect((await proposals.audit(proposal.id, 'user:audrey', 'flagged', 'check with rita')).audit).toBe('flagged');
    await expect(proposals.audit(proposal.id, 'user:audrey', 'passed')).rejects.toThrow(/already audited/);
  });

  describe('with a connector that lives in the database', () => {
    let inline: ProposalService;
    let settledByHook: string[];

    beforeAll(async () => {
      await drained();
      settledByHook = [];
      const sandbox = createSandboxConnector({ id: 'sandbox', operations: [{ action: 'crm.discount.update' }, { action: 'crm.note.create' }] }, { sql: db.sql });
      inline = createProposalService({
        store: createProposalStore(db.sql),
        journal,
        policy,
        connectors: () => createRegistry([sandbox]),
        twins,
        log: silentLog,
        options: { pollIntervalMs: 60_000, sweepIntervalMs: 60_000, retryBaseMs: 10 },
        onSettled: (p) => settledByHook.push(p.id),
      });
      // The demo data is there already (written by earlier executions): a new connector acts
      // inside a proposal's own transaction from its first request.
      const first = await inline.create('rep-twin', discount('1.00', 'k-inline-seed'));
      expect(first.proposal.status).toBe('executed');
    });
    afterAll(async () => {
      await inline?.stop();
    });

    const ledger = async (ref: string) =>
      db.sql.query<{ status: string; amount_minor: string }>('SELECT status, amount_minor::text FROM spend_reservations WHERE ref = $1', [ref]);

    it('decides, books, acts and records in one transaction, with every step journaled', async () => {
      const before = (await readSandboxRecord(db.sql, { system: 'crm', kind: 'account', key: 'globex' }))!;
      const { proposal, created } = await inline.create('rep-twin', discount('40.00', 'k-inline', { account: 'globex', discountPct: 12 }));
      expect(created).toBe(true);
      expect(proposal).toMatchObject({ status: 'executed', attempts: 1, audit: 'pending', error: null });
      expect(proposal.result).toMatchObject({ changes: [expect.objectContaining({ record: 'crm/account/globex', version: before.version + 1 })] });
      expect(settledByHook).toContain(proposal.id);
      const after = (await readSandboxRecord(db.sql, { system: 'crm', kind: 'account', key: 'globex' }))!;
      expect(after.data).toMatchObject({ discountPct: 12 });
      expect(await ledger(`proposal:${proposal.id}`)).toEqual([{ status: 'committed', amount_minor: '4000' }]);
      const steps = (await journal.list({ subject: `proposal:${proposal.id}`, limit: 20 })).map((e) => `${e.kind}:${(e.data as { to?: string }).to ?? ''}`);
      expect(steps).toEqual(['policy.decided:', 'proposal.transitioned:approved', 'proposal.transitioned:executing', 'proposal.transitioned:executed']);
      // The same request again is the same proposal, and nothing happens twice.
      const again = await inline.create('rep-twin', discount('40.00', 'k-inline', { account: 'globex', discountPct: 12 }));
      expect(again).toEqual({ proposal: expect.objectContaining({ id: proposal.id, status: 'executed' }), created: false });
      expect((await readSandboxRecord(db.sql, { system: 'crm', kind: 'account', key: 'globex' }))!.version).toBe(after.version);
      await expect(inline.create('rep-twin', discount('41.00', 'k-inline', { account: 'globex' }))).rejects.toThrow(/already used for a different request/);
      expect(await db.sql.query('SELECT id FROM proposals WHERE idempotency_key = $1', ['k-inline'])).toHaveLength(1);
    });

    it('leaves nothing behind when the business system refuses, and fails it on the ordinary path', async () => {
      const { proposal } = await inline.create('rep-twin', discount('30.00', 'k-inline-refused', { account: 'nobody-inc' }));
      expect(proposal.status).toBe('approved'); // recorded, not executed with the decision
      let p = proposal;
      for (let i = 0; i < 100 && !inline.isTerminal(p); i++) {
        await inline.executeDue();
        p = await inline.get(proposal.id);
      }
      expect(p.status).toBe('failed');
      expect(p.error).toMatch(/nobody-inc/);
      expect(await ledger(`proposal:${proposal.id}`)).toEqual([{ status: 'released', amount_minor: '3000' }]);
      expect(await readSandboxRecord(db.sql, { system: 'crm', kind: 'account', key: 'nobody-inc' })).toBeUndefined();
    });

    it('does not act with the decision while a kill switch is engaged', async () => {
      await twins.setKillSwitch({ engaged: true, twin: 'rep-twin' }, 'user:rita');
      try {
        const { proposal } = await inline.create('rep-twin', discount('20.00', 'k-inline-killed'));
        expect(proposal.status).toBe('approved');
        await inline.executeDue();
        expect((await inline.get(proposal.id)).status).toBe('approved');
      } finally {
        await twins.setKillSwitch({ engaged: false, twin: 'rep-twin' }, 'user:rita');
      }
    });
  });
});
