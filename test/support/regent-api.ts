import fs from 'node:fs';
import path from 'node:path';
import { openRegent, type Regent } from '../../src/app';
import { loadConfig } from '../../src/config/config';
import { createHttpApp, httpDepsOf, type HttpDeps } from '../../src/http/app';
import { listen, type RunningServer } from '../../src/http/server';
import type { Logger } from '../../src/log/logger';
import { tmpDir, type TestDatabase } from './databases';
import { silentLog } from './journal';

/** The shipped policies directory, copied so tests can add files without touching the repo. */
export function copyPolicies(extra: Record<string, string> = {}): string {
  const dir = path.join(tmpDir('regent-policies-'), 'policies');
  fs.cpSync(path.resolve(__dirname, '../../policies'), dir, { recursive: true });
  for (const [rel, text] of Object.entries(extra)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  return dir;
}

/** An authority of Vic's without business hours: execute mode for notes, approve for discounts. */
export const vicAuthority = (id: string) => `kind: Authority
id: ${id}
version: 1
delegator: user:vic
delegate: twin:${id}
parent: null
valid: { from: 2026-01-01T00:00:00Z, until: 2036-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: crm.note.create
    outcome: execute
  - action: crm.discount.update
    outcome: approve
    when: { discountPct: { $lte: 30 } }
    approval:
      tiers:
        - { above: "0", approvers: [role:sales-director], quorum: 1 }
      expiresAfter: PT48H
`;

export interface RegentApi {
  regent: Regent;
  server: RunningServer;
  url: string;
  adminKey: string;
  policiesDir: string;
  close(): Promise<void>;
}

/**
 * The whole server as `regent serve` builds it (pipeline, objectives, signals, connectors), on
 * a test database, with the shipped policies plus `extraPolicies`.
 */
export async function startRegentApi(
  tdb: TestDatabase,
  opts: {
    extraPolicies?: Record<string, string>;
    env?: Record<string, string>;
    http?: HttpDeps['http'];
    log?: Logger;
    start?: boolean;
  } = {},
): Promise<RegentApi> {
  const policiesDir = copyPolicies(opts.extraPolicies);
  const config = loadConfig({ ...tdb.env, REGENT_POLICIES_DIR: policiesDir, REGENT_CHECKPOINT_INTERVAL_MS: '60000', ...opts.env });
  const log = opts.log ?? silentLog;
  const regent = await openRegent(config, log, { command: 'jest', policies: 'load' });
  const first = await regent.people.ensureFirstAdmin();
  const app = createHttpApp(httpDepsOf(regent, { http: opts.http }));
  const server = await listen(app, '127.0.0.1', 0, log);
  if (opts.start) regent.proposals?.start();
  return {
    regent,
    server,
    url: server.url,
    // A restart on the same database made no new admin: the first start's key still works.
    adminKey: first?.apiKey ?? '',
    policiesDir,
    async close() {
      await regent.close({ server, graceMs: 1000 });
    },
  };
}
