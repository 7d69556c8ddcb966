import fs from 'node:fs';
import path from 'node:path';
import type { Planner } from '../../src/agent/types';
import { openRegent, type Regent } from '../../src/app';
import { loadConfig } from '../../src/config/config';
import { createHttpApp, httpDepsOf } from '../../src/http/app';
import { listen, type RunningServer } from '../../src/http/server';
import { exportJournal } from '../../src/journal/export';
import { verifyExport } from '../../src/journal/verify';
import { call } from '../support/api';
import { tmpDir, type TestDatabase } from '../support/databases';
import { silentLog } from '../support/journal';

const SHIPPED = path.resolve(__dirname, '../../policies');

/** Vic's test authorities: discounts (execute up to 1,000 EUR, sales director above) and notes; no office hours. */
export const VIC_AUTHORITY = (id: string, grants = 'both') => `kind: Authority
id: ${id}
version: 1
delegator: user:vic
delegate: twin:${id}
parent: null
valid: { from: 2026-01-01T00:00:00Z, until: 2030-01-01T00:00:00Z }
mode: execute
currency: EUR
tz: Europe/Berlin
grants:
${
  grants === 'notes'
    ? ''
    : `  - action: crm.discount.update
    outcome: execute
    when: { counterparty: { $in: [acme, globex, initech] }, discountPct: { $lte: 20 } }
    limits: { perAction: "1000" }
    approval:
      tiers:
        - { above: "0", approvers: [role:sales-director], quorum: 1 }
      expiresAfter: PT1H
`
}  - action: crm.note.create
    outcome: execute
`;

/**
 * A policies directory for objective tests: Vic's twins (one per mode, and one that may only write
 * notes), the shipped ops-twin (valid longer), the shipped sandbox connector, playbooks and signal rules.
 */
export function makePolicies(): string {
  const dir = path.join(tmpDir('regent-objectives-'), 'policies');
  for (const sub of ['authorities', 'connectors', 'playbooks', 'signals']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  for (const id of ['vic-execute', 'vic-approve', 'vic-propose', 'vic-limits'])
    fs.writeFileSync(path.join(dir, 'authorities', `${id}.yaml`), VIC_AUTHORITY(id));
  fs.writeFileSync(path.join(dir, 'authorities', 'vic-notes.yaml'), VIC_AUTHORITY('vic-notes', 'notes'));
  const ops = fs
    .readFileSync(path.join(SHIPPED, 'authorities', 'ops-twin.yaml'), 'utf8')
    .replace('until: 2028-01-01T00:00:00Z', 'until: 2036-01-01T00:00:00Z');
  fs.writeFileSync(path.join(dir, 'authorities', 'ops-twin.yaml'), ops);
  fs.copyFileSync(path.join(SHIPPED, 'connectors', 'sandbox.yaml'), path.join(dir, 'connectors', 'sandbox.yaml'));
  for (const sub of ['playbooks', 'signals'])
    for (const f of fs.readdirSync(path.join(SHIPPED, sub)).filter((n) => /\.ya?ml$/.test(n))) fs.copyFileSync(path.join(SHIPPED, sub, f), path.join(dir, sub, f));
  return dir;
}

export interface Harness {
  regent: Regent;
  server: RunningServer;
  api(method: string, p: string, key: string | null, body?: unknown): ReturnType<typeof call>;
  close(): Promise<void>;
}

/** Opens a Regent on `db` with `policies`, serves its API, and starts the executor and the objective runner. */
export async function startRegent(
  db: TestDatabase,
  policies: string,
  opts: { env?: Record<string, string>; llmPlanner?: Planner; runner?: boolean; runnerId?: string; signalSources?: boolean } = {},
): Promise<Harness> {
  const config = loadConfig({
    ...db.env,
    REGENT_POLICIES_DIR: policies,
    REGENT_CHECKPOINT_INTERVAL_MS: '60000',
    REGENT_EXECUTION_LEASE_MS: '2000',
    ...opts.env,
  });
  const regent = await openRegent(config, silentLog, {
    command: 'jest',
    policies: 'load',
    ...(opts.llmPlanner ? { llmPlanner: opts.llmPlanner } : {}),
    ...(opts.runnerId ? { runnerId: opts.runnerId } : {}),
    ...(opts.signalSources ? { signalSources: true } : {}),
  });
  const server = await listen(createHttpApp(httpDepsOf(regent, { http: { rateLimitPerMinute: 0 } })), '127.0.0.1', 0, silentLog);
  regent.proposals!.start();
  if (opts.runner !== false) regent.objectives!.start();
  regent.signalSources?.start();
  return {
    regent,
    server,
    api: (method, p, key, body) => call(`${server.url}${p}`, method, key, body),
    async close() {
      await regent.close({ server, graceMs: 1000 });
    },
  };
}

/** Polls GET `p` until its body satisfies `ok`. */
export async function untilMatch(
  h: Pick<Harness, 'api'>,
  p: string,
  key: string,
  ok: (body: Record<string, any>) => boolean,
  ms = 15_000,
): Promise<Record<string, any>> {
  const end = Date.now() + ms;
  let last: Record<string, any> | undefined;
  while (Date.now() < end) {
    const r = await h.api('GET', p, key);
    last = r.body;
    if (r.status === 200 && ok(r.body!)) return r.body!;
    await new Promise((res) => setTimeout(res, 30));
  }
  throw new Error(`${p} never got there; last: ${JSON.stringify(last)}`);
}

/** Polls GET `p` until its status is one of `want`. */
export const until = (h: Pick<Harness, 'api'>, p: string, key: string, want: string[], ms = 15_000) =>
  untilMatch(h, p, key, (b) => want.includes(b.status), ms);

/** Exports the journal and verifies it with the journal's own key; returns the entries. */
export async function verifiedJournal(
  regent: Regent,
): Promise<Array<{ seq: number; kind: string; actor: string; subject: string | null; data: Record<string, any> }>> {
  const out = path.join(tmpDir(), 'export');
  await exportJournal(regent.journal, out, 'jest');
  const verified = await verifyExport(out, { keyText: regent.journal.vkey });
  expect(verified).toMatchObject({ ok: true });
  return fs
    .readFileSync(path.join(out, 'entries.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

/** People with keys: an admin (first start), executives, approvers and an auditor. */
export async function addPeople(h: Harness): Promise<Record<string, string>> {
  const first = await h.regent.people.ensureFirstAdmin();
  const keys: Record<string, string> = { admin: first!.apiKey };
  for (const [id, roles] of [
    ['vic', ['executive', 'approver']],
    ['olga', ['executive']],
    ['ivan', ['executive']],
    ['sara', ['approver', 'sales-director']],
    ['paul', ['approver', 'plant-manager', 'procurement-lead']],
    ['audrey', ['auditor']],
  ] as const) {
    const r = await h.api('POST', '/v1/users', keys.admin!, { id, name: id, roles });
    if (r.status !== 201) throw new Error(`could not add ${id}: ${r.text}`);
    keys[id] = r.body!.apiKey;
  }
  return keys;
}

export async function addTwin(
  h: Harness,
  ownerKey: string,
  owner: string,
  id: string,
  mode: 'propose' | 'approve' | 'execute',
  authority = id,
): Promise<string> {
  const r = await h.api('POST', '/v1/twins', ownerKey, { id, owner: `user:${owner}`, authority, mode });
  if (r.status !== 201) throw new Error(`could not add twin ${id}: ${r.text}`);
  return r.body!.apiKey;
}
