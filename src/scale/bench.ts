/**
 * `regent bench pipeline --postgres --processes N [--kill-one]`: governed actions over HTTP
 * against N real `regent serve` processes sharing one scratch PostgreSQL database, driven by
 * autocannon. With --kill-one, one process is SIGKILLed half way and started again, as in the
 * scale-out fault test. Counts acknowledged proposals (2xx) and checks afterwards that every one
 * of them executed and that the journal is contiguous.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import autocannon from 'autocannon';
import { openScratchDatabase } from '../db/scratch';
import { BENCH_AUTHORITY } from '../proposals/bench';
import { createProposalStore } from '../proposals/store';
import { generateSigningKey, signingKeyToString } from '../journal/note';
import { createJournalQuery } from '../journal/query';
import type { Logger } from '../log/logger';

export interface ScaleBenchResult {
  actions_per_s: number;
  p50_ms: number;
  p99_ms: number;
  database: 'postgres';
  processes: number;
  killed: boolean;
  duration_s: number;
  connections: number;
  acknowledged: number;
  executed: number;
  /** Requests that got no answer (connection refused or reset: the killed process). */
  errors: number;
  non_2xx: number;
  journal_contiguous: boolean;
}

const SANDBOX = `kind: Connector
id: sandbox
type: sandbox
operations:
  - action: crm.discount.update
`;

interface Server {
  child: ChildProcess;
  url: string;
  banner: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startServer(env: NodeJS.ProcessEnv): Promise<Server> {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'cli', 'main.js'), 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let banner = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`regent serve did not start within 60 s: ${banner}`)), 60_000);
    child.stdout!.on('data', (d) => {
      banner += d;
      const m = /listening on (http:\/\/[^\s]+)/.exec(banner);
      // The admin key, on first start, follows the URL line.
      if (m && /Policies:/.test(banner)) {
        clearTimeout(timer);
        setTimeout(() => resolve({ child, url: m[1]!, banner }), 100);
      }
    });
    child.stderr!.on('data', (d) => (banner += d));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`regent serve exited ${code}: ${banner.trim().split('\n').slice(-3).join(' ')}`));
    });
  });
}

async function stop(s: Server | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!s || s.child.exitCode !== null) return;
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.kill(signal);
  await exited;
}

async function post(url: string, key: string, body: unknown): Promise<Record<string, any>> {
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await res.json()) as Record<string, any>;
  if (!res.ok) throw new Error(`${url}: ${res.status} ${json.detail ?? ''}`);
  return json;
}

/** One autocannon run against one process: unique idempotency keys, four accounts in turn. */
function load(url: string, key: string, connections: number, seconds: number, prefix: string) {
  let n = 0;
  const accounts = ['acme', 'globex', 'initech', 'umbrella'];
  const instance = autocannon({
    url: `${url}/v1/proposals`,
    connections,
    duration: seconds,
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    requests: [
      {
        setupRequest: (req) => {
          const i = n++;
          req.body = JSON.stringify({
            action: 'crm.discount.update',
            args: { account: accounts[i % accounts.length], discountPct: i % 20, amount: `${(i % 900) + 1}.00`, currency: 'EUR' },
            rationale: 'bench',
            idempotencyKey: `${prefix}-${i}`,
          });
          return req;
        },
      },
    ],
  });
  return instance;
}

export async function benchScale(o: {
  postgresUrl: string;
  processes: number;
  killOne: boolean;
  seconds: number;
  connections: number;
  log: Logger;
}): Promise<ScaleBenchResult> {
  if (o.killOne && o.processes < 2) throw new Error('--kill-one needs at least 2 processes (one keeps serving)');
  const scratch = await openScratchDatabase({ postgresUrl: o.postgresUrl, poolMax: 4, command: 'regent bench pipeline' });
  const servers: (Server | undefined)[] = [];
  try {
    const policies = path.join(scratch.dir, 'policies');
    fs.mkdirSync(path.join(policies, 'authorities'), { recursive: true });
    fs.mkdirSync(path.join(policies, 'connectors'), { recursive: true });
    fs.writeFileSync(path.join(policies, 'authorities', 'bench.yaml'), BENCH_AUTHORITY);
    fs.writeFileSync(path.join(policies, 'connectors', 'sandbox.yaml'), SANDBOX);
    const signingKey = signingKeyToString(generateSigningKey('bench.regent.local/journal'));
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(REGENT_|DATABASE_|PORT$|HOST$|LOG_LEVEL$|OPENAI_)/.test(k)));
    const env = (i: number): NodeJS.ProcessEnv => {
      const dir = path.join(scratch.dir, `p${i}`);
      fs.mkdirSync(dir, { recursive: true });
      return {
        ...clean,
        DATABASE_URL: scratch.url!,
        DATABASE_POOL_MAX: '10',
        REGENT_DATA_DIR: dir,
        REGENT_SIGNING_KEY: signingKey,
        REGENT_POLICIES_DIR: policies,
        REGENT_EXECUTION_LEASE_MS: '2000',
        REGENT_RATE_LIMIT_PER_MINUTE: '0',
        LOG_LEVEL: 'error',
        PORT: '0',
        HOST: '127.0.0.1',
      };
    };
    servers[0] = await startServer(env(0));
    const admin = /API key (rgt_[A-Za-z0-9_-]+)/.exec(servers[0].banner)?.[1];
    if (!admin) throw new Error('the first server did not print an admin key');
    for (let i = 1; i < o.processes; i++) servers[i] = await startServer(env(i));
    const exec = await post(`${servers[0].url}/v1/users`, admin, { id: 'bench-exec', name: 'Bench Executive', roles: ['executive'] });
    const twin = await post(`${servers[0].url}/v1/twins`, exec.apiKey, { id: 'bench-twin', owner: 'user:bench-exec', authority: 'bench-twin', mode: 'execute' });
    const twinKey = twin.apiKey as string;
    // Warm-up: each process writes the sandbox's demo data on its first execution.
    for (const [i, s] of servers.entries()) {
      for (let k = 0; k < 5; k++) {
        await post(`${s!.url}/v1/proposals`, twinKey, {
          action: 'crm.discount.update',
          args: { account: 'acme', discountPct: 1, amount: '1.00', currency: 'EUR' },
          rationale: 'warm-up',
          idempotencyKey: `warm-${i}-${k}`,
        });
      }
    }
    await sleep(500);

    const per = Math.max(1, Math.round(o.connections / o.processes));
    const started = performance.now();
    const runs: Promise<autocannon.Result>[] = [];
    for (const [i, s] of servers.entries()) {
      if (o.killOne && i === 1) {
        // Half the time against the process, then SIGKILL, restart, and the other half.
        const half = Math.max(1, Math.floor(o.seconds / 2));
        const first = load(s!.url, twinKey, per, half, `p${i}a`);
        runs.push(
          (async () => {
            const a = await first;
            await stop(servers[1], 'SIGKILL');
            const down = performance.now();
            servers[1] = await startServer(env(1));
            const rest = Math.max(1, o.seconds - half - Math.round((performance.now() - down) / 1000));
            const b = await load(servers[1].url, twinKey, per, rest, `p${i}b`);
            return merge(a, b);
          })(),
        );
      } else runs.push(load(s!.url, twinKey, per, o.seconds, `p${i}`));
    }
    const results = await Promise.all(runs);
    const seconds = (performance.now() - started) / 1000;

    // Afterwards: every acknowledged proposal executed (none left approved or executing), and
    // the journal has one entry per seq up to its head.
    const proposals = createProposalStore(scratch.db.sql);
    let counts: Record<string, number> = {};
    for (let i = 0; i < 300; i++) {
      counts = await proposals.countByStatus(['approved', 'executing', 'executed'], { exceptKeyPrefix: 'warm-' });
      if (!counts.approved && !counts.executing) break;
      await sleep(100);
    }
    const contiguous = await createJournalQuery(scratch.db.sql).contiguous();
    const acknowledged = results.reduce((a, r) => a + r['2xx'], 0);
    const p50s = results.map((r) => r.latency.p50).sort((a, b) => a - b);
    return {
      actions_per_s: Math.round(acknowledged / seconds),
      p50_ms: p50s[Math.floor(p50s.length / 2)]!,
      p99_ms: Math.max(...results.map((r) => r.latency.p99)),
      database: 'postgres',
      processes: o.processes,
      killed: o.killOne,
      duration_s: Math.round(seconds * 10) / 10,
      connections: per * o.processes,
      acknowledged,
      executed: counts.executed ?? 0,
      errors: results.reduce((a, r) => a + r.errors, 0),
      non_2xx: results.reduce((a, r) => a + r.non2xx, 0),
      journal_contiguous: contiguous,
    };
  } finally {
    for (const s of servers) await stop(s, 'SIGTERM').catch(() => undefined);
    await scratch.dispose();
  }
}

function merge(a: autocannon.Result, b: autocannon.Result): autocannon.Result {
  return {
    ...b,
    '2xx': a['2xx'] + b['2xx'],
    non2xx: a.non2xx + b.non2xx,
    errors: a.errors + b.errors,
    latency: { ...b.latency, p50: (a.latency.p50 + b.latency.p50) / 2, p99: Math.max(a.latency.p99, b.latency.p99) },
  };
}
