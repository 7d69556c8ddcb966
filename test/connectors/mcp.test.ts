/**
 * The `mcp` connector against real servers: the reference `server-memory` over stdio, and a
 * small fixture server (test/fixtures/mcp/fault-server.js) for the faults: env isolation, crash
 * at start, hang, garbage, stderr flood, death mid-call, upstream schema change.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { Database } from '../../src/db/database';
import { callStatus } from '../../src/connectors/calls';
import { checkConnectorSources, formatConnectorErrors, loadConnectorsFromSources } from '../../src/connectors/load';
import { acceptChanges, readPins } from '../../src/connectors/pins';
import type { ConnectorRegistry } from '../../src/connectors/types';
import type { AppendInput } from '../../src/journal/types';
import { describeEachDatabase, tmpDir } from '../support/databases';

const ROOT = path.join(__dirname, '..', '..');
const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'mcp', 'fault-server.js');
const EVERYTHING = path.join(ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const MEMORY = path.join(ROOT, 'node_modules', '@modelcontextprotocol', 'server-memory', 'dist', 'index.js');

/** A logger that keeps what it was told. */
function captureLog() {
  const lines: { level: string; message: string; meta: Record<string, unknown> }[] = [];
  const at = (level: string) => (message: string, meta: Record<string, unknown> = {}) => void lines.push({ level, message, meta });
  return { lines, log: { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') } as never };
}

function captureJournal() {
  const entries: AppendInput[] = [];
  return { entries, journal: { appendWithin: async (_tx: unknown, inputs: readonly AppendInput[]) => void entries.push(...inputs) } };
}

let n = 0;
const key = () => `mcp-test-${process.pid}-${Date.now()}-${++n}`;

function load(db: Database, yaml: string, env: Record<string, string> = {}, extra: { log?: never; journal?: ReturnType<typeof captureJournal>['journal'] } = {}) {
  const r = loadConnectorsFromSources([{ file: 'policies/connectors/x.yaml', text: yaml }], env, {
    sql: db.sql,
    ...extra,
    mcp: { backoffMs: 50, maxBackoffMs: 200, recheckMs: 100 },
  });
  if (!r.ok) throw new Error(formatConnectorErrors(r.errors));
  return r.registry;
}

const fixtureYaml = (id: string, env: Record<string, string>, ops: string, extra = '') => `kind: Connector
id: ${id}
type: mcp
timeoutMs: 1500
${extra}server:
  command: ${process.execPath}
  args: [${FIXTURE}]
  env:
${Object.entries(env)
  .map(([k, v]) => `    ${k}: ${v}`)
  .join('\n')}
operations:
${ops}`;

describe('mcp connector documents', () => {
  const check = (text: string, env: Record<string, string> = {}) => checkConnectorSources([{ file: 'policies/connectors/m.yaml', text }], env);
  it('accepts the DESIGN.md shapes (stdio with a secret env, Streamable HTTP with auth)', () => {
    expect(
      check(
        `kind: Connector\nid: memory\ntype: mcp\nserver: { command: node, args: [./servers/memory.js], env: { MEMORY_FILE_PATH: /var/lib/m.jsonl, TOKEN: { secretEnv: MEM_TOKEN } } }\noperations:\n  - action: memory.entities.create\n    tool: create_entities\n    attributes: { }\n`,
        { MEM_TOKEN: 't' },
      ).ok,
    ).toBe(true);
    expect(
      check(
        `kind: Connector\nid: erp\ntype: mcp\nserver: { url: https://erp.example/mcp, auth: { header: Authorization, scheme: Bearer, secretEnv: ERP_TOKEN } }\noperations:\n  - action: erp.po.create\n    tool: create_po\n`,
        { ERP_TOKEN: 't' },
      ).ok,
    ).toBe(true);
  });
  it('accepts the shipped policies/connectors/memory.yaml.example', () => {
    const file = path.join(ROOT, 'policies', 'connectors', 'memory.yaml.example');
    const r = checkConnectorSources([{ file, text: fs.readFileSync(file, 'utf8') }], {});
    expect(r.ok ? [] : formatConnectorErrors(r.errors)).toEqual([]);
  });
  it.each([
    ['both command and url', `server: { command: node, url: http://x }`, /^policies\/connectors\/m.yaml:4: .*either command .* or url/],
    ['neither', `server: { args: [x] }`, /:4: .*either command/],
    ['auth on stdio', `server: { command: node, auth: { header: X, secretEnv: A } }`, /:4: .*auth applies to a Streamable HTTP server/],
    ['env on http', `server: { url: http://x/mcp, env: { A: b } }`, /:4: .*env applies to a stdio server/],
    ['credentials in the url', `server: { url: "http://u:p@x/mcp" }`, /url must not contain credentials/],
    ['a bad env value', `server: { command: node, env: { A: { secret: B } } }`, /:4: .*string or \{ secretEnv: NAME \}/],
  ])('refuses %s with file:line', (_what, server, why) => {
    const r = check(`kind: Connector\nid: m\ntype: mcp\n${server}\noperations:\n  - action: m.x\n    tool: x\n`, { A: 'a' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(formatConnectorErrors(r.errors)).toMatch(why);
  });
  it('refuses an unset secret, an unknown field, a bad tool name, an attribute of no declared field', () => {
    const r = check(
      `kind: Connector\nid: m\ntype: mcp\nserver: { command: node, env: { T: { secretEnv: NOPE_TOKEN } } }\noperations:\n  - action: m.x\n    tool: "bad tool"\n    retries: 2\n  - action: m.y\n    tool: y\n    input: { type: object, properties: { a: { type: string } } }\n    attributes: { counterparty: b }\n`,
    );
    expect(r.ok).toBe(false);
    const text = r.ok ? '' : formatConnectorErrors(r.errors);
    expect(text).toMatch(/m.yaml:7: .*MCP tool name/);
    expect(text).toMatch(/m.yaml:8: .*retries/);
    expect(text).toMatch(/m.yaml:12: .*attribute counterparty names "b"/);
    const unset = check(`kind: Connector\nid: m\ntype: mcp\nserver: { command: node, env: { T: { secretEnv: NOPE_TOKEN } } }\noperations:\n  - action: m.x\n    tool: x\n`);
    expect(unset.ok ? '' : formatConnectorErrors(unset.errors)).toMatch(/m.yaml:4: environment variable NOPE_TOKEN \(server.env.T.secretEnv\) is not set/);
  });
});

describeEachDatabase('mcp connector over stdio', (getDb) => {
  let db: Database;
  const registries: ConnectorRegistry[] = [];
  beforeAll(async () => {
    db = await getDb().open();
  });
  afterAll(async () => {
    await Promise.all(registries.map((r) => r.close()));
    await db?.close();
  });
  const track = (r: ConnectorRegistry) => (registries.push(r), r);

  test('server-memory: upstream schema pinned and journaled, only declared tools, execute through the outbox, preview', async () => {
    const dir = tmpDir('regent-mcp-memory-');
    const { journal, entries } = captureJournal();
    const { log, lines } = captureLog();
    const reg = track(
      load(
        db,
        `kind: Connector
id: memory
type: mcp
server:
  command: ${process.execPath}
  args: [${MEMORY}]
  env: { MEMORY_FILE_PATH: ${path.join(dir, 'memory.jsonl')} }
operations:
  - action: memory.entities.create
    tool: create_entities
    attributes: { }
  - action: memory.entities.delete
    tool: delete_entities
    idempotent: true
    preview: read_graph
  - action: memory.entities.open
    tool: open_nodes
    preview: create_entities
`,
        {},
        { journal, log },
      ),
    );
    await reg.start();
    const r = reg.resolve('memory.entities.create')!;
    expect(r.connector.type).toBe('mcp');
    expect(r.operation.unavailable?.()).toBeUndefined();
    // The upstream schema (annotations and descriptions stripped), strict like Regent's own.
    expect(r.operation.inputJsonSchema).toMatchObject({ type: 'object', required: ['entities'], additionalProperties: false });
    expect(JSON.stringify(r.operation.inputJsonSchema)).not.toMatch(/description|\$schema/);
    expect(r.operation.description).toMatch(/create_entities/);
    expect(r.operation.input.safeParse({ entities: [{ name: 'a', entityType: 'c', observations: [] }], extra: 1 }).success).toBe(false);
    // Only declared operations: an upstream tool nobody declared is no action.
    expect(reg.resolve('memory.read_graph')).toBeUndefined();
    expect([...r.connector.operations.keys()].sort()).toEqual(['memory.entities.create', 'memory.entities.delete', 'memory.entities.open']);

    const pinned = entries.filter((e) => e.kind === 'connector.pinned');
    expect(pinned.map((e) => (e.data as { action: string }).action).sort()).toEqual(['memory.entities.create', 'memory.entities.delete', 'memory.entities.open']);
    expect(pinned[0]).toMatchObject({ actor: 'system', subject: 'connector:memory', data: { schemaSha256: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    const pins = await readPins(db.sql, 'memory');
    expect(pins.get('memory.entities.create')).toMatchObject({ tool: 'create_entities', pinnedBy: 'system', changed: null, description: 'Create multiple new entities in the knowledge graph' });

    const args = { entities: [{ name: 'acme', entityType: 'company', observations: ['renewal due'] }] };
    const sim = await r.connector.simulate('memory.entities.create', args);
    expect(sim.details).toMatchObject({ call: { method: 'tools/call', params: { name: 'create_entities', arguments: args } }, server: { transport: 'stdio' } });

    const k = key();
    const done = await r.connector.execute('memory.entities.create', args, k);
    expect(done).toMatchObject({ ok: true, result: { tool: 'create_entities', structuredContent: { entities: [{ name: 'acme' }] } } });
    expect(await callStatus(db.sql, k)).toEqual({ status: 'succeeded', error: null });
    // Same key: answered from the outbox, not sent again (a second create would say "already exists" or add twice).
    expect(await r.connector.execute('memory.entities.create', args, k)).toEqual(done);
    expect(fs.readFileSync(path.join(dir, 'memory.jsonl'), 'utf8').match(/"acme"/g)).toHaveLength(1);

    // A preview by a read-only upstream tool, shown to approvers; a tool not marked read-only is not called.
    const del = await r.connector.simulate('memory.entities.delete', { entityNames: ['acme'] });
    expect(del.details.preview).toMatchObject({ tool: 'read_graph', untrusted: true, result: { structuredContent: { entities: [{ name: 'acme' }] } } });
    const open = await r.connector.simulate('memory.entities.open', { names: ['acme'] });
    expect(open.details.preview).toMatchObject({ tool: 'create_entities', error: expect.stringMatching(/not marked read-only/) });
    expect(fs.readFileSync(path.join(dir, 'memory.jsonl'), 'utf8').match(/"acme"/g)).toHaveLength(1);

    // Bad input never reaches the server.
    expect(await r.connector.execute('memory.entities.create', { entities: 'x' }, key())).toMatchObject({ ok: false, retryable: false, error: expect.stringMatching(/^invalid input for memory.entities.create: entities/) });
    // Its stderr went to the log.
    expect(lines.some((l) => l.message === 'mcp server stderr' && /Knowledge Graph/.test(String(l.meta.line)))).toBe(true);
    await reg.close();
  });

  test('the server sees only its own environment (literals, resolved secrets) and a minimal PATH; secrets redacted from results and stderr', async () => {
    process.env.REGENT_MCP_TEST_LEAK = 'leaked';
    const { log, lines } = captureLog();
    const reg = track(
      load(
        db,
        fixtureYaml('fx-env', { GREETING: 'hello', TOKEN: '{ secretEnv: FX_TOKEN }' }, `  - action: fx.env\n    tool: env\n  - action: fx.secret\n    tool: secret\n  - action: fx.flood\n    tool: flood\n`),
        { FX_TOKEN: 's3cr3t-value', ...process.env } as Record<string, string>,
        { log },
      ),
    );
    await reg.start();
    const c = reg.resolve('fx.env')!.connector;
    const r = await c.execute('fx.env', {}, key());
    expect(r.ok).toBe(true);
    const seen = (r as unknown as { result: { structuredContent: { env: Record<string, string> } } }).result.structuredContent.env;
    expect(Object.keys(seen).sort()).toEqual(['GREETING', 'PATH', 'TOKEN']);
    expect(seen.GREETING).toBe('hello');
    expect(seen.TOKEN).toBe('***'); // the value reached the server, and is redacted on the way back
    const s = await c.execute('fx.secret', {}, key());
    expect(JSON.stringify(s)).not.toMatch(/s3cr3t-value/);
    expect(JSON.stringify(s)).toMatch(/my token is \*\*\*/);
    // The simulation shows the call, never the secret.
    expect(JSON.stringify(await c.simulate('fx.env', {}))).not.toMatch(/s3cr3t-value/);
    // A flood of stderr: rate-limited, each line cut, the secret redacted; the server answers.
    const f = await c.execute('fx.flood', { lines: 5000 }, key());
    expect(f).toMatchObject({ ok: true });
    const logged = lines.filter((l) => l.message === 'mcp server stderr');
    expect(logged.length).toBeLessThan(200);
    expect(JSON.stringify(lines)).not.toMatch(/s3cr3t-value/);
    expect(logged.every((l) => String(l.meta.line).length <= 600)).toBe(true);
    // The next call still works.
    expect(await c.execute('fx.env', {}, key())).toMatchObject({ ok: true });
    delete process.env.REGENT_MCP_TEST_LEAK;
    await reg.close();
  });

  test('faults: isError → failed with the message; hang → in doubt (not idempotent) and the next call works; garbage → in doubt (it may have acted); death mid-call → in doubt, restarted', async () => {
    const dir = tmpDir('regent-mcp-faults-');
    const calls = path.join(dir, 'calls.jsonl');
    const reg = track(
      load(
        db,
        fixtureYaml(
          'fx-faults',
          { FIXTURE_LOG: calls },
          `  - action: fx.echo
    tool: echo
  - action: fx.fail
    tool: fail
  - action: fx.hang
    tool: hang
  - action: fx.hang.safe
    tool: hang
    idempotent: true
  - action: fx.garbage
    tool: garbage
  - action: fx.die
    tool: die
`,
        ),
      ),
    );
    await reg.start();
    const c = reg.resolve('fx.echo')!.connector;
    expect(await c.execute('fx.echo', { text: 'hi' }, key())).toMatchObject({ ok: true, result: { structuredContent: { echoed: 'hi' } } });

    const fk = key();
    expect(await c.execute('fx.fail', { text: 'x' }, fk)).toEqual({ ok: false, retryable: false, error: 'fail on MCP server fx-faults failed: upstream says no: x' });
    expect(await callStatus(db.sql, fk)).toMatchObject({ status: 'failed' });

    const hk = key();
    const hung = await c.execute('fx.hang', { text: 'x' }, hk);
    expect(hung).toMatchObject({ ok: false, retryable: false, inDoubt: { checkIn: expect.stringMatching(/MCP server fx-faults/) }, error: expect.stringMatching(/did not answer hang within 1500 ms.*not idempotent/) });
    expect(await callStatus(db.sql, hk)).toMatchObject({ status: 'unknown' });
    // The same key again: still in doubt, never sent a second time.
    expect(await c.execute('fx.hang', { text: 'x' }, hk)).toMatchObject({ inDoubt: expect.anything() });
    expect(await c.execute('fx.echo', { text: 'after hang' }, key())).toMatchObject({ ok: true });

    // An idempotent op that hangs: tried twice, then "maybe sent" (retryable), never in doubt.
    const safe = await c.execute('fx.hang.safe', { text: 'y' }, key());
    expect(safe).toMatchObject({ ok: false, retryable: true, maybeSent: true, error: expect.stringMatching(/after 2 attempts/) });

    const g = await c.execute('fx.garbage', { text: 'x' }, key());
    // The server read the request and answered garbage: it may have acted, so the outcome is unknown.
    expect(g).toMatchObject({ ok: false, retryable: false, inDoubt: expect.anything(), error: expect.stringMatching(/protocol error from MCP server fx-faults: the server wrote something that is not JSON-RPC/) });
    expect(await c.execute('fx.echo', { text: 'after garbage' }, key())).toMatchObject({ ok: true });

    const d = await c.execute('fx.die', { text: 'x' }, key());
    expect(d).toMatchObject({ ok: false, inDoubt: expect.anything(), error: expect.stringMatching(/went away during die/) });
    expect(await c.execute('fx.echo', { text: 'after death' }, key())).toMatchObject({ ok: true });
    const logged = fs.readFileSync(calls, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { name: string; pid: number });
    expect(logged.filter((l) => l.name === 'hang')).toHaveLength(3); // once (not idempotent) + twice (idempotent)
    expect(new Set(logged.map((l) => l.pid)).size).toBeGreaterThan(1); // restarted
    await reg.close();
    // Stopped at shutdown: no server process of this connector is left.
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect([...new Set(logged.map((l) => l.pid))].filter(alive)).toEqual([]);
  });

  test('a server that crashes at start: a clear reason at first use and in health, retried with backoff; Regent stays up', async () => {
    const { log, lines } = captureLog();
    const reg = track(load(db, fixtureYaml('fx-crash', { FIXTURE_MODE: 'crash-at-start' }, `  - action: fx.crash.echo\n    tool: echo\n`), {}, { log }));
    await reg.start();
    const r = reg.resolve('fx.crash.echo')!;
    const health = r.connector.health!();
    expect(health.state).toBe('down');
    expect(health.reason).toMatch(/closed|exited|Connection/i);
    expect(r.operation.unavailable?.()).toMatch(/fx.crash.echo is not available: MCP server fx-crash cannot be started or reached/);
    const parsed = r.operation.input.safeParse({ text: 'x' });
    expect(parsed.success).toBe(false);
    expect(await r.connector.execute('fx.crash.echo', { text: 'x' }, key())).toMatchObject({ ok: false, error: expect.stringMatching(/fx-crash/) });
    expect(lines.some((l) => l.message === 'mcp server stderr' && /crashing at start/.test(String(l.meta.line)))).toBe(true);
    await new Promise((res) => setTimeout(res, 600));
    expect(lines.filter((l) => l.message === 'mcp server unavailable').length).toBeGreaterThan(1); // retried
    await reg.close();
  });

  test('a server that never answers at start: start() returns after timeoutMs, the operation unavailable with the reason', async () => {
    const reg = track(load(db, fixtureYaml('fx-hang', { FIXTURE_MODE: 'hang-at-start' }, `  - action: fx.h.echo\n    tool: echo\n`)));
    const t0 = Date.now();
    await reg.start();
    expect(Date.now() - t0).toBeLessThan(5000);
    const r = reg.resolve('fx.h.echo')!;
    for (let i = 0; i < 50 && r.connector.health!().state !== 'down'; i++) await new Promise((res) => setTimeout(res, 50));
    expect(r.connector.health!()).toMatchObject({ state: 'down', reason: expect.stringMatching(/time/i) });
    expect(r.operation.unavailable?.()).toMatch(/cannot be started or reached/);
    await reg.close();
  });

  test('garbage at start is a clear error', async () => {
    const reg = track(load(db, fixtureYaml('fx-garbage', { FIXTURE_MODE: 'garbage-at-start' }, `  - action: fx.g.echo\n    tool: echo\n`)));
    await reg.start();
    expect(reg.resolve('fx.g.echo')!.connector.health!().reason).toMatch(/not JSON-RPC/);
    await reg.close();
  });

  test('an upstream tool that changes suspends its operation until an admin accepts; an undeclared tool is never listed', async () => {
    const dir = tmpDir('regent-mcp-change-');
    const state = path.join(dir, 'state');
    fs.writeFileSync(state, 'a');
    const yaml = fixtureYaml('fx-change', { FIXTURE_STATE: state }, `  - action: fx.change.echo\n    tool: echo\n  - action: fx.change.peek\n    tool: peek\n`);
    const first = captureJournal();
    const a = track(load(db, yaml, {}, { journal: first.journal }));
    await a.start();
    expect(a.resolve('fx.change.echo')!.operation.unavailable?.()).toBeUndefined();
    expect(first.entries.map((e) => e.kind)).toEqual(['connector.pinned', 'connector.pinned']);
    await a.close();

    // Later the server offers another schema and description for echo.
    fs.writeFileSync(state, 'b');
    const second = captureJournal();
    const b = track(load(db, yaml, {}, { journal: second.journal }));
    await b.start();
    const echo = b.resolve('fx.change.echo')!;
    expect(echo.operation.unavailable?.()).toMatch(/fx.change.echo is suspended: the upstream tool echo changed since it was pinned \(input schema sha256 .* description sha256 .*\); an admin .* regent connectors accept fx-change/);
    expect(b.resolve('fx.change.peek')!.operation.unavailable?.()).toBeUndefined();
    expect(await echo.connector.execute('fx.change.echo', { text: 'x', note: 'n' }, key())).toMatchObject({ ok: false, error: expect.stringMatching(/suspended/) });
    expect(second.entries).toEqual([
      expect.objectContaining({ kind: 'connector.changed', subject: 'connector:fx-change', data: expect.objectContaining({ action: 'fx.change.echo', tool: 'echo', new: expect.objectContaining({ schemaSha256: expect.any(String) }) }) }),
    ]);
    expect(echo.connector.health!().operations).toEqual([expect.objectContaining({ action: 'fx.change.echo', suspended: true })]);

    // Accepted (as the API and CLI do): the new schema is pinned and the operation runs again.
    const accepted = captureJournal();
    const res = await acceptChanges(db.sql, accepted.journal, 'fx-change', 'user:admin');
    expect(res.accepted.map((x) => x.action)).toEqual(['fx.change.echo']);
    expect(accepted.entries).toEqual([expect.objectContaining({ kind: 'connector.accepted', actor: 'user:admin', subject: 'connector:fx-change' })]);
    await echo.connector.refresh!();
    expect(echo.operation.unavailable?.()).toBeUndefined();
    expect(echo.operation.input.safeParse({ text: 'x' }).success).toBe(false); // the new schema needs note
    expect(await echo.connector.execute('fx.change.echo', { text: 'x', note: 'n' }, key())).toMatchObject({ ok: true, result: { structuredContent: { note: 'n' } } });
    expect((await acceptChanges(db.sql, accepted.journal, 'fx-change', 'user:admin')).accepted).toEqual([]);
    await b.close();

    // The connector file points the operation at another tool: suspended too, until accepted.
    const c = track(load(db, yaml.replace('tool: peek\n', 'tool: peek_writes\n'), {}, { journal: second.journal }));
    await c.start();
    expect(c.resolve('fx.change.peek')!.operation.unavailable?.()).toMatch(/the connector file now names tool peek_writes instead of peek/);
    expect((await acceptChanges(db.sql, accepted.journal, 'fx-change', 'user:admin')).accepted).toEqual([expect.objectContaining({ action: 'fx.change.peek', tool: 'peek_writes' })]);
    await c.connectors.get('fx-change')!.refresh!();
    expect(c.resolve('fx.change.peek')!.operation.unavailable?.()).toBeUndefined();
    expect((await readPins(db.sql, 'fx-change')).get('fx.change.peek')).toMatchObject({ tool: 'peek_writes', pinnedBy: 'user:admin', changed: null });
    await c.close();

    // The tool vanishes: suspended, journaled with new: null, and nothing to accept.
    fs.writeFileSync(state, 'gone');
    const third = captureJournal();
    const d = track(load(db, yaml, {}, { journal: third.journal }));
    await d.start();
    expect(d.resolve('fx.change.echo')!.operation.unavailable?.()).toMatch(/fx.change.echo is suspended: MCP server fx-change no longer offers the tool echo/);
    // (peek changed too: the file names peek again, after peek_writes was accepted.)
    expect(third.entries.filter((e) => e.kind === 'connector.changed' && (e.data as { action: string }).action === 'fx.change.echo')).toEqual([
      expect.objectContaining({ data: expect.objectContaining({ action: 'fx.change.echo', new: null }) }),
    ]);
    expect(await acceptChanges(db.sql, accepted.journal, 'fx-change', 'user:admin')).toMatchObject({ accepted: [expect.objectContaining({ action: 'fx.change.peek' })], missing: ['fx.change.echo'] });
    await d.close();
  });
});

describeEachDatabase('mcp connector over Streamable HTTP (server-everything)', (getDb) => {
  let db: Database;
  let child: ChildProcess | undefined;
  let port = 0;
  beforeAll(async () => {
    db = await getDb().open();
    port = await freePort();
    child = spawn(process.execPath, [EVERYTHING, 'streamableHttp'], { env: { PATH: process.env.PATH ?? '', PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('server-everything did not start')), 20_000);
      const onData = (b: Buffer) => {
        if (/listening on port/i.test(b.toString())) {
          clearTimeout(timer);
          resolve();
        }
      };
      child!.stderr!.on('data', onData);
      child!.stdout!.on('data', onData);
      child!.once('exit', (code) => reject(new Error(`server-everything exited with ${code}`)));
    });
  });
  afterAll(async () => {
    child?.kill('SIGTERM');
    await db?.close();
  });

  test('declared tools over Streamable HTTP with a credential; others invisible; simulate shows no credential', async () => {
    const reg = load(
      db,
      `kind: Connector
id: everything
type: mcp
timeoutMs: 10000
server: { url: "http://127.0.0.1:${port}/mcp", auth: { header: Authorization, scheme: Bearer, secretEnv: EVERYTHING_TOKEN } }
operations:
  - action: everything.echo
    tool: echo
    idempotent: true
  - action: everything.sum
    tool: get-sum
    attributes: { amount: a }
`,
      { EVERYTHING_TOKEN: 'http-secret-token' },
    );
    try {
      await reg.start();
      const echo = reg.resolve('everything.echo')!;
      expect(echo.connector.health!()).toMatchObject({ state: 'up', operations: [] });
      expect(echo.operation.unavailable?.()).toBeUndefined();
      const r = await echo.connector.execute('everything.echo', { message: 'hello' }, key());
      expect(r).toMatchObject({ ok: true, result: { tool: 'echo', content: [{ type: 'text', text: expect.stringMatching(/hello/) }] } });
      const sum = reg.resolve('everything.sum')!;
      expect(sum.operation.attributes({ a: 2, b: 3 })).toEqual({ amount: 2 });
      expect(await sum.connector.execute('everything.sum', { a: 2, b: 3 }, key())).toMatchObject({ ok: true, result: { content: [{ text: expect.stringMatching(/5/) }] } });
      const sim = await echo.connector.simulate('everything.echo', { message: 'hi' });
      expect(sim.details.server).toEqual({ transport: 'streamable-http', url: `http://127.0.0.1:${port}/mcp`, headers: { Authorization: 'Bearer ***' } });
      expect(JSON.stringify(sim)).not.toMatch(/http-secret-token/);
      expect(reg.resolve('everything.get-env')).toBeUndefined();
    } finally {
      await reg.close();
    }
  });
});

describeEachDatabase('mcp connector over Streamable HTTP: the credential stays with its origin', (getDb) => {
  let db: Database;
  beforeAll(async () => {
    db = await getDb().open();
  });
  afterAll(async () => {
    await db?.close();
  });

  test('sent to the declared origin only; a redirect elsewhere is not followed; a server that is not MCP is a clear error', async () => {
    const seen: { port: number; auth: string | undefined }[] = [];
    const other = http.createServer((req, res) => {
      seen.push({ port: (other.address() as net.AddressInfo).port, auth: req.headers.authorization });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const otherPort = (other.address() as net.AddressInfo).port;
    const origin = http.createServer((req, res) => {
      seen.push({ port: (origin.address() as net.AddressInfo).port, auth: req.headers.authorization });
      res.writeHead(307, { location: `http://127.0.0.1:${otherPort}/mcp` }).end();
    });
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    const port = (origin.address() as net.AddressInfo).port;
    const reg = load(
      db,
      `kind: Connector\nid: redirector\ntype: mcp\ntimeoutMs: 3000\nserver: { url: "http://127.0.0.1:${port}/mcp", auth: { header: Authorization, scheme: Bearer, secretEnv: R_TOKEN } }\noperations:\n  - action: redirector.x\n    tool: x\n`,
      { R_TOKEN: 'origin-only-token' },
    );
    try {
      await reg.start();
      const r = reg.resolve('redirector.x')!;
      expect(r.connector.health!()).toMatchObject({ state: 'down', reason: expect.any(String) });
      expect(r.connector.health!().reason).not.toMatch(/origin-only-token/);
      expect(r.operation.unavailable?.()).toMatch(/cannot be started or reached/);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((s) => s.port === port)).toBe(true);
      expect(seen[0]!.auth).toBe('Bearer origin-only-token');
    } finally {
      await reg.close();
      origin.close();
      other.close();
    }
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
}
