import fs from 'node:fs';
import path from 'node:path';
import { openRegent, type Regent } from '../../src/app';
import { loadConfig } from '../../src/config/config';
import { startReceiver, type Receiver } from '../../src/connectors/testing/receiver';
import { startSmtpReceiver, type SmtpReceiver } from '../../src/connectors/testing/smtp';
import { createHttpApp } from '../../src/http/app';
import { listen, type RunningServer } from '../../src/http/server';
import { verifyExport } from '../../src/journal/verify';
import { exportJournal } from '../../src/journal/export';
import { call } from '../support/api';
import { describeEachDatabase, tmpDir } from '../support/databases';
import { silentLog } from '../support/journal';

const SECRET = 'crm-secret-3f9a1c77e2';

const AUTHORITY = (id: string) => `kind: Authority
id: ${id}
version: 1
delegator: user:vic
delegate: twin:${id}
parent: null
valid: { from: 2026-01-01T00:00:00Z, until: 2030-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: crm.discount.update
    outcome: execute
    when: { counterparty: { $in: [acme, globex] }, discountPct: { $lte: 15 } }
    limits: { perAction: "1000" }
    approval:
      tiers:
        - { above: "0", approvers: [role:sales-director], quorum: 1 }
      expiresAfter: PT1H
  - action: email.send
    outcome: execute
    when: { dataClass: { $in: [public, internal] } }
    approval:
      tiers:
        - { above: "0", approvers: [role:sales-director], quorum: 1 }
      expiresAfter: PT1H
  - action: crm.note.create
    outcome: approve
forbid:
  - action: email.send
    when: { dataClass: { $in: [confidential, restricted] } }
    reason: Confidential data never leaves by email
`;

const SMTP_PASS = 'smtp-pass-8d1e55c0b4';

const EMAIL = (port: number) => `kind: Connector
id: email
type: email
smtp: { host: 127.0.0.1, port: ${port}, secure: false, auth: { userEnv: REGENT_TEST_SMTP_USER, passEnv: REGENT_TEST_SMTP_PASS }, timeoutMs: 2000 }
from: "Vic's twin <vic-twin@regent.example>"
operations:
  - action: email.send
`;

const CONNECTOR = (url: string) => `kind: Connector
id: crm
type: rest
baseUrl: ${url}
auth: { header: Authorization, scheme: Bearer, secretEnv: REGENT_TEST_CRM_TOKEN }
operations:
  - action: crm.discount.update
    method: POST
    path: /accounts/{account}/discount
    input:
      type: object
      required: [account, discountPct, amount]
      properties: { account: { type: string }, discountPct: { type: number }, amount: { type: string }, currency: { type: string } }
    attributes: { counterparty: account, amount: amount, discountPct: discountPct, currency: currency }
    idempotent: true
`;

/**
 * The governed pipeline end to end over HTTP: a twin in each mode proposes, a second person approves, the
 * REST connector's receiver gets exactly one request with its credential, and the journal verifies.
 */
describeEachDatabase('the pipeline over HTTP', (getDb) => {
  let receiver: Receiver;
  let smtp: SmtpReceiver;
  let regent: Regent;
  let server: RunningServer;
  let admin: string;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    receiver = await startReceiver(() => ({ status: 200, body: { ok: true } }));
    smtp = await startSmtpReceiver({ auth: { user: 'twin-mailer', pass: SMTP_PASS } });
    const tdb = getDb();
    const policies = path.join(tmpDir(), 'policies');
    fs.mkdirSync(path.join(policies, 'authorities'), { recursive: true });
    fs.mkdirSync(path.join(policies, 'connectors'), { recursive: true });
    for (const id of ['vic-execute', 'vic-approve', 'vic-propose']) fs.writeFileSync(path.join(policies, 'authorities', `${id}.yaml`), AUTHORITY(id));
    fs.writeFileSync(path.join(policies, 'connectors', 'crm.yaml'), CONNECTOR(receiver.url));
    fs.writeFileSync(path.join(policies, 'connectors', 'email.yaml'), EMAIL(smtp.port));
    fs.writeFileSync(path.join(policies, 'connectors', 'sandbox.yaml'), 'kind: Connector\nid: sandbox\ntype: sandbox\noperations:\n  - action: crm.note.create\n');
    process.env.REGENT_TEST_CRM_TOKEN = SECRET;
    process.env.REGENT_TEST_SMTP_USER = 'twin-mailer';
    process.env.REGENT_TEST_SMTP_PASS = SMTP_PASS;
    const config = loadConfig({ ...tdb.env, REGENT_POLICIES_DIR: policies, REGENT_CHECKPOINT_INTERVAL_MS: '60000' });
    regent = await openRegent(config, silentLog, { command: 'jest', policies: 'load' });
    const first = await regent.people.ensureFirstAdmin();
    admin = first!.apiKey;
    server = await listen(
      createHttpApp({ db: regent.db, journal: regent.journal, policy: regent.policy, people: regent.people, twins: regent.twins, proposals: regent.proposals, log: silentLog }),
      '127.0.0.1',
      0,
      silentLog,
    );
    regent.proposals!.start();
  });
  afterAll(async () => {
    await server?.close(1000);
    await regent?.close();
    await receiver?.close();
    await smtp?.close();
    delete process.env.REGENT_TEST_CRM_TOKEN;
    delete process.env.REGENT_TEST_SMTP_USER;
    delete process.env.REGENT_TEST_SMTP_PASS;
  });

  const api = (method: string, p: string, key: string | null, body?: unknown) => call(`${server.url}${p}`, method, key, body);

  async function until(p: string, key: string, want: string[]): Promise<Record<string, any>> {
    for (let i = 0; i < 300; i++) {
      const r = await api('GET', p, key);
      if (want.includes(r.body!.status)) return r.body!;
      await new Promise((res) => setTimeout(res, 20));
    }
    throw new Error(`${p} never reached ${want.join('|')}`);
  }

  it('sets up people and a twin in each mode, each with its own key shown once', async () => {
    for (const [name, roles] of [
      ['vic', ['executive']],
      ['sara', ['approver', 'sales-director']],
      ['audrey', ['auditor']],
    ] as const) {
      const r = await api('POST', '/v1/users', admin, { id: name, name, roles });
      expect(r.status).toBe(201);
      keys[name] = r.body!.apiKey;
    }
    for (const mode of ['execute', 'approve', 'propose'] as const) {
      const r = await api('POST', '/v1/twins', keys.vic!, { id: `vic-${mode}`, owner: 'user:vic', authority: `vic-${mode}`, mode });
      expect(r.status).toBe(201);
      expect(r.body!.apiKey).toMatch(/^rgt_/);
      keys[mode] = r.body!.apiKey;
    }
  });

  it('executes in execute mode: the CRM receives exactly one request with the credential', async () => {
    const body = { action: 'crm.discount.update', args: { account: 'acme', discountPct: 10, amount: '800.00', currency: 'EUR' }, rationale: 'renewal', idempotencyKey: 'e-1' };
    const created = await api('POST', '/v1/proposals', keys.execute!, body);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: expect.any(String), status: 'approved', decision: { outcome: 'execute' } });
    // A retry with the same idempotency key returns the same proposal.
    const again = await api('POST', '/v1/proposals', keys.execute!, body);
    expect(again.status).toBe(200);
    expect(again.body!.id).toBe(created.body!.id);
    const done = await until(`/v1/proposals/${created.body!.id}`, keys.vic!, ['executed', 'failed']);
    expect(done.status).toBe('executed');
    const mine = receiver.requests.filter((r) => r.headers['idempotency-key'] === created.body!.id);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ method: 'POST', url: '/accounts/acme/discount' });
    expect(mine[0]!.headers.authorization).toBe(`Bearer ${SECRET}`);
  });

  it('waits in approve mode for a second person, then executes once', async () => {
    const created = await api('POST', '/v1/proposals', keys.approve!, { action: 'crm.discount.update', args: { account: 'globex', discountPct: 5, amount: '100.00' }, rationale: 'loyalty', idempotencyKey: 'a-1' });
    expect(created.body).toMatchObject({ status: 'pending_approval', decision: { outcome: 'approve', approval: { approvers: ['role:sales-director'], quorum: 1 } } });
    const id = created.body!.id as string;
    // The approver sees the connector's preview; the credential never appears in it.
    const detail = await api('GET', `/v1/proposals/${id}`, keys.sara!);
    expect(detail.body!.preview).toBeTruthy();
    expect(detail.body).toMatchObject({ owner: 'user:vic', context: null }); // the executive the approver decides for
    expect(detail.text).not.toContain(SECRET);
    // The twin cannot approve itself, nor can its owner, who is not named by the tier.
    expect((await api('POST', `/v1/proposals/${id}/decisions`, keys.approve!, { decision: 'approve' })).status).toBe(403);
    expect((await api('POST', `/v1/proposals/${id}/decisions`, keys.vic!, { decision: 'approve' })).status).toBe(403);
    const approved = await api('POST', `/v1/proposals/${id}/decisions`, keys.sara!, { decision: 'approve', comment: 'fine' });
    expect(approved.status).toBe(200);
    expect((await until(`/v1/proposals/${id}`, keys.sara!, ['executed', 'failed'])).status).toBe('executed');
    expect(receiver.requests.filter((r) => r.headers['idempotency-key'] === id)).toHaveLength(1);
    // Deciding again is an illegal transition.
    expect((await api('POST', `/v1/proposals/${id}/decisions`, keys.sara!, { decision: 'reject', comment: 'late' })).status).toBe(409);
  });

  it('sends an approved email once through SMTP with its own credential, and denies confidential mail', async () => {
    const mail = { to: ['buyer@acme.example'], subject: 'Your renewal', body: 'We can offer 5% on the renewal.', dataClass: 'internal' };
    const created = await api('POST', '/v1/proposals', keys.approve!, { action: 'email.send', args: mail, rationale: 'confirm the offer', idempotencyKey: 'm-1' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ status: 'pending_approval' });
    const id = created.body!.id as string;
    const detail = await api('GET', `/v1/proposals/${id}`, keys.sara!);
    expect(detail.body!.preview).toBeTruthy();
    expect(detail.text).not.toContain(SMTP_PASS);
    expect(smtp.messages).toHaveLength(0);
    expect((await api('POST', `/v1/proposals/${id}/decisions`, keys.sara!, { decision: 'approve' })).status).toBe(200);
    expect((await until(`/v1/proposals/${id}`, keys.sara!, ['executed', 'failed'])).status).toBe('executed');
    const sent = smtp.messages.filter((m) => m.headers['x-regent-idempotency-key'] === id);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ recipients: ['buyer@acme.example'], user: 'twin-mailer' });
    expect(sent[0]!.raw).toContain('We can offer 5% on the renewal.');
    const secret = await api('POST', '/v1/proposals', keys.approve!, { action: 'email.send', args: { ...mail, dataClass: 'confidential' }, rationale: 'send the numbers', idempotencyKey: 'm-2' });
    expect(secret.body).toMatchObject({ status: 'denied', decision: { outcome: 'deny' } });
    await new Promise((r) => setTimeout(r, 200));
    expect(smtp.messages).toHaveLength(1);
  });

  it('lets the executive decide their own twin’s request where the authority names them (the delegator by default)', async () => {
    const created = await api('POST', '/v1/proposals', keys.approve!, { action: 'crm.note.create', args: { account: 'acme', text: 'called back' }, rationale: 'log the call', idempotencyKey: 'n-1' });
    expect(created.body).toMatchObject({ status: 'pending_approval', decision: { approval: { approvers: ['user:vic'] } } });
    const id = created.body!.id as string;
    // Sara approves discounts, but this tier names only Vic.
    expect((await api('POST', `/v1/proposals/${id}/decisions`, keys.sara!, { decision: 'approve' })).status).toBe(403);
    expect((await api('POST', `/v1/proposals/${id}/decisions`, keys.vic!, { decision: 'approve', comment: 'yes, log it' })).status).toBe(200);
    expect((await until(`/v1/proposals/${id}`, keys.vic!, ['executed', 'failed'])).status).toBe('executed');
  });

  it('only records in propose mode', async () => {
    const before = receiver.requests.length;
    const created = await api('POST', '/v1/proposals', keys.propose!, { action: 'crm.discount.update', args: { account: 'acme', discountPct: 3, amount: '10.00' }, rationale: 'small', idempotencyKey: 'p-1' });
    expect(created.body!.status).toBe('proposed');
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.requests.length).toBe(before);
  });

  it('answers bad input with 400 problem+json, journals the refusal, and never executes', async () => {
    const before = receiver.requests.length;
    const malformed = await call(`${server.url}/v1/proposals`, 'POST', keys.execute!, undefined, '{"action": ');
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get('content-type')).toMatch(/problem\+json/);
    const bad = await api('POST', '/v1/proposals', keys.execute!, { action: 'crm.discount.update', args: { account: 'acme', discountPct: 'ten', amount: '1.00' }, rationale: 'x', idempotencyKey: 'bad-1' });
    expect(bad.status).toBe(400);
    expect(bad.body!.detail).toMatch(/discountPct/);
    const extra = await api('POST', '/v1/proposals', keys.execute!, { action: 'crm.discount.update', args: {}, rationale: 'x', idempotencyKey: 'bad-2', sneaky: true });
    expect(extra.status).toBe(400);
    const unknown = await api('POST', '/v1/proposals', keys.execute!, { action: 'payments.transfer.create', args: { amount: '1.00' }, rationale: 'x', idempotencyKey: 'bad-3' });
    expect(unknown.status).toBe(201);
    expect(unknown.body!.status).toBe('denied');
    const refused = await api('GET', '/v1/journal?kind=proposal.refused', keys.audrey!);
    expect(refused.body!.entries.length).toBeGreaterThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 200));
    expect(receiver.requests.length).toBe(before);
  });

  it('stops execution at once with the kill switch, for approved work too', async () => {
    expect((await api('POST', '/v1/kill-switch', admin, { engaged: true })).status).toBe(200);
    const created = await api('POST', '/v1/proposals', keys.execute!, { action: 'crm.discount.update', args: { account: 'acme', discountPct: 1, amount: '5.00' }, rationale: 'x', idempotencyKey: 'k-1' });
    expect(created.body!.status).toBe('approved');
    await new Promise((r) => setTimeout(r, 400));
    expect(receiver.requests.filter((r) => r.headers['idempotency-key'] === created.body!.id)).toHaveLength(0);
    expect((await api('POST', '/v1/kill-switch', admin, { engaged: false })).status).toBe(200);
    expect((await until(`/v1/proposals/${created.body!.id}`, keys.vic!, ['executed'])).status).toBe('executed');
  });

  it('finds every step in a journal that verifies, and never the credential', async () => {
    const out = path.join(tmpDir(), 'export');
    await exportJournal(regent.journal, out, 'jest');
    expect(await verifyExport(out, { keyText: regent.journal.vkey })).toMatchObject({ ok: true });
    const text = fs.readFileSync(path.join(out, 'entries.jsonl'), 'utf8');
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(SMTP_PASS);
    for (const kind of ['policy.decided', 'proposal.transitioned', 'proposal.reviewed', 'kill_switch.changed', 'twin.created', 'user.created']) expect(text).toContain(`"kind":"${kind}"`);
    const verified = await api('GET', '/v1/journal/verify', keys.audrey!);
    expect(verified.status).toBe(200);
    expect(verified.body!.ok).toBe(true);
  });
});
