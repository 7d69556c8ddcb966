import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { startReceiver, type Receiver } from '../../src/connectors/testing/receiver';
import { call } from '../support/api';
import { regent, startServe } from '../support/cli';
import { tmpDir } from '../support/databases';

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
  - action: crm.note.create
    outcome: execute
`;

const CONNECTOR = (url: string) => `kind: Connector
id: crm
type: rest
baseUrl: ${url}
auth: { header: Authorization, scheme: Bearer, secretEnv: CRASH_TEST_CRM_TOKEN }
operations:
  - action: crm.note.create
    method: POST
    path: /accounts/{account}/notes
    input:
      type: object
      required: [account, text]
      properties: { account: { type: string }, text: { type: string } }
    attributes: { counterparty: account }
    idempotent: true
`;

/**
 * A server killed with SIGKILL while its connector call is in flight: after a restart the work is
 * taken over with the same idempotency key, ends executed, and the journal verifies.
 */
describe('a server killed in the middle of an execution', () => {
  let receiver: Receiver;
  let child: ChildProcess | undefined;
  afterAll(async () => {
    child?.kill('SIGKILL');
    await receiver?.close();
  });

  it('resumes the action after a restart under the same idempotency key, and executes it once', async () => {
    // The first call hangs long enough for the kill; later ones answer at once.
    receiver = await startReceiver((_req, n) => (n === 1 ? { status: 200, delayMs: 20_000 } : { status: 201, body: { id: 'note-1' } }));
    const dataDir = tmpDir();
    const policies = path.join(dataDir, 'policies');
    fs.mkdirSync(path.join(policies, 'authorities'), { recursive: true });
    fs.mkdirSync(path.join(policies, 'connectors'), { recursive: true });
    fs.writeFileSync(path.join(policies, 'authorities', 'ops.yaml'), AUTHORITY);
    fs.writeFileSync(path.join(policies, 'connectors', 'crm.yaml'), CONNECTOR(receiver.url));
    const env = {
      REGENT_DATA_DIR: dataDir,
      REGENT_POLICIES_DIR: policies,
      PORT: '0',
      CRASH_TEST_CRM_TOKEN: 'tok-123456',
      REGENT_EXECUTION_LEASE_MS: '1000',
    };

    const first = await startServe(env);
    child = first.child;
    const admin = /API key (rgt_[A-Za-z0-9_-]+)/.exec(first.out())![1]!;
    const olga = (await call(`${first.url}/v1/users`, 'POST', admin, { id: 'olga', name: 'Olga', roles: ['executive'] })).body!.apiKey;
    const twinKey = (
      await call(`${first.url}/v1/twins`, 'POST', olga, { id: 'ops-twin', owner: 'user:olga', authority: 'ops-twin', mode: 'execute' })
    ).body!.apiKey;
    const created = await call(`${first.url}/v1/proposals`, 'POST', twinKey, {
      action: 'crm.note.create',
      args: { account: 'acme', text: 'called back' },
      rationale: 'log the call',
      idempotencyKey: 'n-1',
    });
    expect(created.body!.status).toBe('approved');
    const id = created.body!.id as string;

    for (let i = 0; i < 200 && receiver.requests.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(receiver.requests).toHaveLength(1);
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGKILL');
    await exited;

    const second = await startServe(env);
    child = second.child;
    let status = '';
    for (let i = 0; i < 400 && status !== 'executed'; i++) {
      status = (await call(`${second.url}/v1/proposals/${id}`, 'GET', olga)).body!.status;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(status).toBe('executed');
    // Every request for this proposal carried the one idempotency key; the CRM honours it, so
    // the replay after the crash is the same business request, not a second one.
    expect(receiver.requests.length).toBeGreaterThanOrEqual(2);
    expect(new Set(receiver.requests.map((r) => r.headers['idempotency-key']))).toEqual(new Set([id]));

    const stopped = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await stopped;
    child = undefined;
    const out = path.join(dataDir, 'export');
    expect(regent(['journal', 'export', '--out', out], { REGENT_DATA_DIR: dataDir }).code).toBe(0);
    const verified = regent(['journal', 'verify', out, '--key', path.join(dataDir, 'keys', 'journal.vkey')]);
    expect(verified.code).toBe(0);
    const kinds = fs
      .readFileSync(path.join(out, 'entries.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => e.subject === `proposal:${id}`)
      .map((e) => e.data.to ?? e.kind);
    expect(kinds).toEqual(['policy.decided', 'approved', 'executing', 'executing', 'executed']);
  });
});
