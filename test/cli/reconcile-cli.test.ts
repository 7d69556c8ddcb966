/**
 * `regent proposals reconcile` on an embedded data directory: two actions are put in doubt by an
 * in-process Regent (a business system that does not answer a non-idempotent POST in time), which
 * is then closed; the built CLI settles them, checking the outcome, the evidence and who asks.
 * The CLI runs without the connector's secret: settling calls no system.
 */
import fs from 'node:fs';
import path from 'node:path';
import { openRegent, type Regent } from '../../src/app';
import { loadConfig } from '../../src/config/config';
import { startReceiver, type Receiver } from '../../src/connectors/testing/receiver';
import { exportJournal } from '../../src/journal/export';
import { verifyExport } from '../../src/journal/verify';
import { regent as cli, regentInProcess } from '../support/cli';
import { dataDir as newDataDir, tmpDir } from '../support/databases';
import { silentLog } from '../support/journal';

const AUTHORITY = `kind: Authority
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

const CONNECTOR = (url: string) => `kind: Connector
id: crm
type: rest
baseUrl: ${url}
auth: { header: Authorization, scheme: Bearer, secretEnv: REGENT_TEST_RECONCILE_CRM_TOKEN }
operations:
  - action: crm.discount.request
    method: POST
    path: /accounts/{account}/discount-requests
    input:
      type: object
      required: [account, amount, currency]
      properties: { account: { type: string }, amount: { type: string }, currency: { type: string } }
    attributes: { counterparty: account, amount: amount, currency: currency }
    timeoutMs: 300
`;

describe('regent proposals reconcile', () => {
  let receiver: Receiver;
  let env: Record<string, string>;
  /** In doubt: one to settle as executed, one as not executed. */
  let took: string;
  let didNot: string;

  const open = () =>
    openRegent(loadConfig({ ...env, REGENT_CHECKPOINT_INTERVAL_MS: '60000' }), silentLog, { command: 'jest', policies: 'load' });
  const reconcile = (id: string, ...args: string[]) => cli(['proposals', 'reconcile', id, ...args], env);
  /** The same command run in this process (test/support/cli.ts); the binary keeps --help and the owner's settlement. */
  const reconcileInProcess = (id: string, ...args: string[]) => regentInProcess(['proposals', 'reconcile', id, ...args], env);

  beforeAll(async () => {
    // The business system never answers in time.
    receiver = await startReceiver(() => ({ status: 201, delayMs: 5_000 }));
    const dataDir = newDataDir('regent-reconcile-cli-');
    const policies = path.join(dataDir, 'policies');
    fs.mkdirSync(path.join(policies, 'authorities'), { recursive: true });
    fs.mkdirSync(path.join(policies, 'connectors'), { recursive: true });
    fs.writeFileSync(path.join(policies, 'authorities', 'olga-twin.yaml'), AUTHORITY);
    fs.writeFileSync(path.join(policies, 'connectors', 'crm.yaml'), CONNECTOR(receiver.url));
    env = { REGENT_DATA_DIR: dataDir, REGENT_POLICIES_DIR: policies };

    // The connector's secret is the in-process server's; the CLI (whose environment drops
    // REGENT_* variables not passed to it) runs without it.
    process.env.REGENT_TEST_RECONCILE_CRM_TOKEN = 'crm-token-for-the-server-only';
    const r = await open();
    try {
      await r.people.ensureFirstAdmin();
      await r.people.addUser({ id: 'olga', name: 'Olga', roles: ['executive'] }, 'system');
      await r.people.addUser({ id: 'ivan', name: 'Ivan', roles: ['executive'] }, 'system');
      await r.people.addUser({ id: 'sara', name: 'Sara', roles: ['approver'] }, 'system');
      await r.twins.create({ id: 'olga-twin', owner: 'user:olga', authority: 'olga-twin', mode: 'execute' }, 'user:olga');
      const inDoubt = async (account: string, amount: string) => {
        const { proposal } = await r.proposals!.create('olga-twin', {
          action: 'crm.discount.request',
          args: { account, amount, currency: 'EUR' },
          rationale: 'renewal',
          idempotencyKey: `cli-${account}`,
        });
        let p = proposal;
        for (let i = 0; i < 300 && ['approved', 'executing'].includes(p.status); i++) {
          await new Promise((res) => setTimeout(res, 20));
          p = await r.proposals!.get(p.id);
        }
        expect(p.status).toBe('in_doubt');
        return p.id;
      };
      took = await inDoubt('acme', '60.00');
      didNot = await inDoubt('globex', '30.00');
      await r.proposals!.idle();
    } finally {
      await r.close();
    }
    expect(receiver.requests).toHaveLength(2);
  }, 60_000);

  afterAll(async () => {
    delete process.env.REGENT_TEST_RECONCILE_CRM_TOKEN;
    await receiver?.close();
  });

  it('documents itself under --help', () => {
    const help = cli(['proposals', 'reconcile', '--help']);
    expect(help.code).toBe(0);
    for (const opt of ['--outcome', '--evidence', '--actor', '--json']) expect(help.stdout).toContain(opt);
    expect(help.stdout).toMatch(/executed \| not_executed/);
    const group = cli(['proposals', '--help']);
    expect(group.code).toBe(0);
    expect(group.stdout).toMatch(/reconcile/);
  });

  it('refuses a wrong --outcome, a blank --evidence or an --actor that is not a person with exit 2 and one line', async () => {
    for (const [args, reason] of [
      [['--outcome', 'maybe', '--evidence', 'x', '--actor', 'user:olga'], /--outcome must be executed or not_executed, not "maybe"/],
      [['--outcome', 'executed', '--evidence', '   ', '--actor', 'user:olga'], /--evidence is required/],
      [['--outcome', 'executed', '--evidence', 'x', '--actor', 'twin:olga-twin'], /--actor must be user:<id>/],
    ] as const) {
      const r = await reconcileInProcess(took, ...args);
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(reason)]);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stdout).toBe('');
    }
    // A missing required option is commander's usage error.
    const missing = await reconcileInProcess(took, '--outcome', 'executed', '--actor', 'user:olga');
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/--evidence/);
  });

  it('refuses anyone but the twin’s owner or an admin with exit 1, and leaves the proposal in doubt', async () => {
    for (const [actor, reason] of [
      ['user:ivan', /user:ivan may not reconcile .*: only the owner of olga-twin \(user:olga\) or an admin/],
      ['user:sara', /user:sara may not reconcile/],
      ['user:nobody', /user:nobody is not an active user/],
    ] as const) {
      const r = await reconcileInProcess(took, '--outcome', 'executed', '--evidence', 'CRM shows it', '--actor', actor);
      expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(reason)]);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    const unknown = await reconcileInProcess('00000000-0000-4000-8000-000000000000', '--outcome', 'executed', '--evidence', 'x', '--actor', 'user:olga');
    expect([unknown.code, unknown.stderr]).toEqual([
      1,
      expect.stringMatching(/proposal 00000000-0000-4000-8000-000000000000 does not exist/),
    ]);
    const r = await open();
    try {
      expect(await r.proposals!.get(took)).toMatchObject({ status: 'in_doubt', reconciliation: null });
      expect(await r.journal.list({ kind: 'proposal.reconciled', limit: 10 })).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it('settles it for the owner with exit 0 and prints the settled proposal with --json; a second time is refused', async () => {
    const evidence = 'CRM shows discount request applied at 10:02';
    const r = reconcile(took, '--outcome', 'executed', '--evidence', evidence, '--actor', 'user:olga', '--json');
    expect(r.code).toBe(0);
    const settled = JSON.parse(r.stdout);
    expect(settled).toMatchObject({
      id: took,
      twin: 'olga-twin',
      status: 'executed',
      reconciliation: { outcome: 'executed', evidence, by: 'user:olga', at: expect.any(String) },
      inDoubt: { connector: 'crm', checkIn: `crm for idempotency key ${took}` },
    });
    const again = await reconcileInProcess(took, '--outcome', 'not_executed', '--evidence', 'second thoughts', '--actor', 'user:olga');
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already reconciled by user:olga/);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('settles one as not executed for an admin, saying so in a sentence', async () => {
    const r = await reconcileInProcess(didNot, '--outcome', 'not_executed', '--evidence', 'no such request in the CRM', '--actor', 'user:admin');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`proposal ${didNot} reconciled by user:admin: it did not take effect (status failed; the amount is released)\n`);
  });

  it('leaves what the CLI did in the database and the journal: committed, released, journaled, verifiable', async () => {
    const r: Regent = await open();
    try {
      const a = await r.proposals!.get(took);
      const b = await r.proposals!.get(didNot);
      expect(a).toMatchObject({ status: 'executed', reconciliation: { by: 'user:olga', outcome: 'executed' } });
      expect(b).toMatchObject({ status: 'failed', reconciliation: { by: 'user:admin', outcome: 'not_executed' } });
      const res = await r.db.sql.query<{ ref: string; status: string }>(
        `SELECT ref, status FROM spend_reservations WHERE ref IN ($1, $2) ORDER BY amount_minor DESC`,
        [`proposal:${took}`, `proposal:${didNot}`],
      );
      expect(res).toEqual([
        { ref: `proposal:${took}`, status: 'committed' },
        { ref: `proposal:${didNot}`, status: 'released' },
      ]);
      const reconciled = await r.journal.list({ kind: 'proposal.reconciled', limit: 10 });
      expect(reconciled.map((e) => [e.subject, e.actor, (e.data as { outcome: string }).outcome])).toEqual([
        [`proposal:${took}`, 'user:olga', 'executed'],
        [`proposal:${didNot}`, 'user:admin', 'not_executed'],
      ]);
      const out = path.join(tmpDir(), 'export');
      await exportJournal(r.journal, out, 'jest');
      expect(await verifyExport(out, { keyText: r.journal.vkey })).toMatchObject({ ok: true });
    } finally {
      await r.close();
    }
    // The CLI never called the business system.
    expect(receiver.requests).toHaveLength(2);
  });
});
