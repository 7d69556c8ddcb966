import type { Express } from 'express';
import { call } from '../support/api';
import { createTestDatabase, type TestDatabase } from '../support/databases';
import { startRegentApi, vicAuthority, type RegentApi } from '../support/regent-api';

/**
 * Issue 7's malformed-input sweep: thousands of generated bodies, path parameters and query
 * strings against every route the server has, as every kind of caller. Never a 5xx, every error
 * a problem+json, and no state change without a journal entry.
 */

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function rng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STRINGS = ['', ' ', 'x', 'null', '0', '-1', '1e309', 'NaN', '../../etc/passwd', '%00', '\u0000', 'é☃𝄞', "' OR 1=1 --", '<script>', 'user:', 'twin:x', 'rgt_x_y', 'a'.repeat(5000)];
const KEYS = ['id', 'name', 'roles', 'mode', 'engaged', 'twin', 'owner', 'authority', 'action', 'args', 'rationale', 'idempotencyKey', 'decision', 'comment', 'verdict', 'text', 'playbook', 'params', 'constraints', 'type', 'source', 'payload', 'label', '__proto__', 'constructor', 'prototype'];

function value(r: () => number, depth: number): unknown {
  const k = Math.floor(r() * (depth > 3 ? 6 : 9));
  switch (k) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return [0, -1, 1.5, 1e308, -0, 2 ** 53 + 1, 42][Math.floor(r() * 7)];
    case 3:
    case 4:
    case 5:
      return STRINGS[Math.floor(r() * STRINGS.length)];
    case 6:
      return Array.from({ length: Math.floor(r() * 4) }, () => value(r, depth + 1));
    default:
      return object(r, depth + 1);
  }
}

function object(r: () => number, depth: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(r() * 5); i > 0; i--) Object.defineProperty(o, KEYS[Math.floor(r() * KEYS.length)]!, { value: value(r, depth), enumerable: true, configurable: true, writable: true });
  return o;
}

const RAW = ['{', '{"a":', 'nul', '[1,2', '"unterminated', '{"a":1}}', '\u0000\u0001', '{"__proto__":{"admin":true}}', 'true', '1', '"x"', '[]'];

/** Every route of the app: method and path pattern, from the router's own stack. */
function routesOf(app: Express): { method: string; path: string }[] {
  const out: { method: string; path: string }[] = [];
  const walk = (stack: any[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const m of Object.keys(layer.route.methods)) if (m !== '_all') out.push({ method: m.toUpperCase(), path: String(layer.route.path) });
      } else if (layer.handle?.stack) walk(layer.handle.stack);
    }
  };
  walk((app as any).router?.stack ?? (app as any)._router.stack);
  return out;
}

/** A request whose answer is kept as text (some routes answer HTML, CSV or Prometheus text). */
async function send(url: string, method: string, key: string | null, raw: string | undefined) {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (raw !== undefined) headers['content-type'] = 'application/json';
  try {
    const res = await fetch(url, { method, headers, body: raw });
    return { status: res.status, headers: res.headers, text: await res.text() };
  } catch (err) {
    return { status: 0, headers: new Headers(), text: String(err) };
  }
}

describe('a sweep of malformed input over every route', () => {
  let tdb: TestDatabase;
  let api: RegentApi;
  const keys: Record<string, string | null> = { none: null };
  let tables: string[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase('embedded');
    api = await startRegentApi(tdb, {
      extraPolicies: { 'authorities/vic-sweep.yaml': vicAuthority('vic-sweep') },
      env: { REGENT_RATE_LIMIT_PER_MINUTE: '0', REGENT_AUTH_FAILURES_PER_MINUTE: '1000000' },
    });
    keys.admin = api.adminKey;
    for (const [id, roles] of [
      ['vic', ['executive']],
      ['sara', ['approver', 'sales-director']],
      ['audrey', ['auditor']],
    ] as const) {
      keys[id] = (await call(`${api.url}/v1/users`, 'POST', api.adminKey, { id, name: id, roles })).body!.apiKey;
    }
    keys.twin = (await call(`${api.url}/v1/twins`, 'POST', keys.vic!, { id: 'vic-sweep', owner: 'user:vic', authority: 'vic-sweep', mode: 'approve' })).body!.apiKey;
    const rows = await api.regent.db.sql.query<{ t: string }>(
      `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
          AND table_name NOT LIKE 'journal_%' AND table_name <> '_prisma_migrations' ORDER BY 1`,
    );
    tables = rows.map((r) => r.t);
  }, 120_000);

  afterAll(async () => {
    await api?.close();
    await tdb?.drop();
  });

  async function snapshot(): Promise<{ journal: number; counts: string }> {
    const [row] = await api.regent.db.sql.query<Record<string, string>>(
      `SELECT (SELECT size FROM journal_head) AS journal, ${tables.map((t) => `(SELECT count(*) FROM "${t}") AS "${t}"`).join(', ')}`,
    );
    const { journal, ...counts } = row!;
    return { journal: Number(journal), counts: JSON.stringify(counts) };
  }

  it('never answers 5xx, always with problem+json for errors, and changes nothing unjournaled', async () => {
    // The express app is the server's request listener.
    const routes = routesOf(api.server.server.listeners('request')[0] as Express);
    expect(routes.length).toBeGreaterThan(20);
    const r = rng(20261122);
    const failures: string[] = [];
    let sent = 0;
    for (const route of routes) {
      for (const who of Object.keys(keys)) {
        for (let i = 0; i < 8; i++) {
          const path = route.path.replace(/:(\w+)/g, () => encodeURIComponent(String(value(r, 3) ?? 'x')).slice(0, 300) || 'x');
          const query = r() < 0.5 ? `?${encodeURIComponent(String(KEYS[Math.floor(r() * KEYS.length)]))}=${encodeURIComponent(String(value(r, 3)))}&limit=${encodeURIComponent(String(value(r, 3)))}` : '';
          const raw = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(route.method) ? (r() < 0.3 ? RAW[Math.floor(r() * RAW.length)]! : JSON.stringify(r() < 0.8 ? object(r, 0) : value(r, 0))) : undefined;
          const before = await snapshot();
          const res = await send(`${api.url}${path}${query}`, route.method, keys[who] ?? null, raw);
          sent++;
          const after = await snapshot();
          const what = `${route.method} ${path}${query} as ${who} with ${String(raw).slice(0, 120)} → ${res.status} ${res.text.slice(0, 200)}`;
          if (res.status === 0 || res.status >= 500) failures.push(what);
          else if (res.status >= 400 && !/problem\+json/.test(res.headers.get('content-type') ?? '')) failures.push(`not problem+json: ${what}`);
          if (after.counts !== before.counts && after.journal === before.journal) failures.push(`state changed without a journal entry: ${what}`);
        }
      }
    }
    expect(sent).toBeGreaterThan(1000);
    expect(failures).toEqual([]);
  }, 600_000);
});
