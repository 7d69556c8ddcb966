/**
 * End to end: a `type: mcp` connector in a policies directory, a twin whose authority grants its
 * action, a proposal executed through the reference server-memory (stdio), and a journal that
 * verifies. Then the upstream changes a tool's schema: the operation is suspended, refused with
 * the reason, shown in GET /v1/connectors, and accepted via the API, and (after another change)
 * via the CLI.
 */
import fs from 'node:fs';
import path from 'node:path';
import { exportJournal } from '../../src/journal/export';
import { verifyExport } from '../../src/journal/verify';
import { toolsFor } from '../../src/objectives/tools';
import { call } from '../support/api';
import { regentInProcess } from '../support/cli';
import { describeEachDatabase, tmpDir, type TestDatabase } from '../support/databases';
import { startRegentApi, type RegentApi } from '../support/regent-api';

const ROOT = path.join(__dirname, '..', '..');
const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'mcp', 'fault-server.js');
const MEMORY = path.join(ROOT, 'node_modules', '@modelcontextprotocol', 'server-memory', 'dist', 'index.js');

const authority = `kind: Authority
id: mem-twin
version: 1
delegator: user:vic
delegate: twin:mem-twin
parent: null
valid: { from: 2026-01-01T00:00:00Z, until: 2036-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: memory.entities.create
    outcome: execute
  - action: fx.echo
    outcome: execute
`;

describeEachDatabase('an MCP server behind a connector, end to end', (getDb) => {
  let tdb: TestDatabase;
  let dir: string;
  let state: string;
  let policies: Record<string, string>;
  let twinKey = '';
  let api: RegentApi | undefined;
  let n = 0;

  beforeAll(() => {
    tdb = getDb();
    dir = tmpDir('regent-mcp-e2e-');
    state = path.join(dir, 'state');
    fs.writeFileSync(state, 'a');
    policies = {
      'authorities/mem-twin.yaml': authority,
      'connectors/memory.yaml': `kind: Connector
id: memory
type: mcp
server:
  command: ${process.execPath}
  args: [${MEMORY}]
  env: { MEMORY_FILE_PATH: ${path.join(dir, 'memory.jsonl')} }
operations:
  - action: memory.entities.create
    tool: create_entities
    description: Records companies and people in the shared knowledge graph
`,
      'connectors/fx.yaml': `kind: Connector
id: fx
type: mcp
timeoutMs: 5000
server:
  command: ${process.execPath}
  args: [${FIXTURE}]
  env: { FIXTURE_STATE: ${state} }
operations:
  - action: fx.echo
    tool: echo
`,
    };
  });
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });

  let adminKey = '';
  /** Regent on the suite's database; the first start made the admin, whose key later starts reuse. */
  async function start() {
    api = await startRegentApi(tdb, { extraPolicies: policies, start: true, http: { rateLimitPerMinute: 0 } });
    adminKey ||= api.adminKey;
    return api;
  }
  const http = (method: string, p: string, key: string | null, body?: unknown) => call(`${api!.url}${p}`, method, key, body);
  async function propose(action: string, args: Record<string, unknown>) {
    return http('POST', '/v1/proposals', twinKey, { action, args, rationale: 'e2e', idempotencyKey: `e2e-${++n}` });
  }
  async function until(id: string, want: string[]) {
    for (let i = 0; i < 500; i++) {
      const r = await http('GET', `/v1/proposals/${id}`, adminKey);
      if (want.includes(r.body!.status)) return r.body!;
      await new Promise((res) => setTimeout(res, 20));
    }
    throw new Error(`proposal ${id} never reached ${want.join('|')}`);
  }

  test('a proposal executes through server-memory; GET /v1/connectors and /readyz show the servers; the journal verifies', async () => {
    await start();
    const { people, twins } = api!.regent;
    await people.addUser({ id: 'vic', name: 'Vic', roles: ['executive'] }, 'system');
    twinKey = (await twins.create({ id: 'mem-twin', owner: 'user:vic', authority: 'mem-twin', mode: 'execute' }, 'system')).apiKey;

    // The twin is offered both operations, with Regent's descriptions.
    const offered = toolsFor(api!.regent.policy!.bundle(), api!.regent.connectors!, 'mem-twin').tools.map((t) => t.action);
    expect(offered).toEqual(['fx.echo', 'memory.entities.create']);

    const created = await propose('memory.entities.create', { entities: [{ name: 'acme', entityType: 'company', observations: ['renewal in May'] }] });
    expect(created.status).toBe(201);
    const done = await until(created.body!.id, ['executed', 'failed', 'in_doubt']);
    expect(done).toMatchObject({ status: 'executed', result: { tool: 'create_entities', structuredContent: { entities: [{ name: 'acme' }] } } });
    expect(fs.readFileSync(path.join(dir, 'memory.jsonl'), 'utf8')).toMatch(/"acme"/);

    // Bad args refused by the upstream's pinned schema, before anything is sent.
    const bad = await propose('memory.entities.create', { entities: [{ name: 'x' }] });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/entities/);

    const listed = await http('GET', '/v1/connectors', adminKey);
    const memory = (listed.body!.connectors as { id: string }[]).find((c) => c.id === 'memory');
    expect(memory).toMatchObject({
      type: 'mcp',
      health: { state: 'up', reason: null },
      operations: [{ action: 'memory.entities.create', unavailable: null, suspended: false }],
      pins: [{ action: 'memory.entities.create', tool: 'create_entities', pinned: { by: 'system', description: 'Create multiple new entities in the knowledge graph' }, changed: null }],
    });
    const ready = await http('GET', '/readyz', null);
    expect(ready.body).toMatchObject({ status: 'ok', connectors: { memory: { state: 'up', unavailableOperations: 0 }, fx: { state: 'up' } } });

    const echoed = await propose('fx.echo', { text: 'hi' });
    expect(await until(echoed.body!.id, ['executed', 'failed', 'in_doubt'])).toMatchObject({ status: 'executed' });
  });

  test('the upstream changes a tool: suspended (refused, not offered, shown), accepted by an admin via the API, then via the CLI', async () => {
    fs.writeFileSync(state, 'b');
    await start();
    const offered = () => toolsFor(api!.regent.policy!.bundle(), api!.regent.connectors!, 'mem-twin').tools.map((t) => t.action);
    expect(offered()).toEqual(['memory.entities.create']);
    const refused = await propose('fx.echo', { text: 'hi', note: 'n' });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toMatch(/fx.echo is suspended: the upstream tool echo changed since it was pinned/);
    const listed = await http('GET', '/v1/connectors', adminKey);
    const fx = (listed.body!.connectors as { id: string }[]).find((c) => c.id === 'fx');
    expect(fx).toMatchObject({
      operations: [{ action: 'fx.echo', suspended: true, unavailable: expect.stringMatching(/suspended/) }],
      pins: [{ action: 'fx.echo', changed: { missing: false, description: 'Echoes text, now with a note' } }],
    });
    expect((await http('GET', '/readyz', null)).body).toMatchObject({ connectors: { fx: { state: 'up', unavailableOperations: 1 } } });
    // Not an admin: refused.
    expect((await http('POST', '/v1/connectors/fx/accept', twinKey)).status).toBe(403);
    expect((await http('POST', '/v1/connectors/nope/accept', adminKey)).status).toBe(404);
    const accepted = await http('POST', '/v1/connectors/fx/accept', adminKey);
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ connector: 'fx', accepted: [{ action: 'fx.echo', tool: 'echo' }], missing: [] });
    expect(offered()).toEqual(['fx.echo', 'memory.entities.create']);
    const ok = await propose('fx.echo', { text: 'hi', note: 'n' });
    expect(ok.status).toBe(201);
    expect(await until(ok.body!.id, ['executed', 'failed', 'in_doubt'])).toMatchObject({ status: 'executed', result: { structuredContent: { note: 'n' } } });
    await api!.close();
    api = undefined;

    // Changed back: suspended again at the next start; an admin accepts with the CLI (the server stopped).
    fs.writeFileSync(state, 'a');
    await start();
    expect(offered()).toEqual(['memory.entities.create']);
    await api!.close();
    api = undefined;
    const env = { ...tdb.env };
    const notAdmin = await regentInProcess(['connectors', 'accept', 'fx', '--actor', 'user:vic'], env);
    expect(notAdmin.code).not.toBe(0);
    expect(notAdmin.stderr).toMatch(/only an admin/);
    const unknown = await regentInProcess(['connectors', 'accept', 'nope', '--actor', 'user:admin'], env);
    expect(unknown.code).not.toBe(0);
    const pins = await regentInProcess(['connectors', 'pins', 'fx'], env);
    expect(pins.stdout).toMatch(/fx.echo +tool echo .*SUSPENDED: changed/);
    const cli = await regentInProcess(['connectors', 'accept', 'fx', '--actor', 'user:admin', '--json'], env);
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ connector: 'fx', accepted: [{ action: 'fx.echo' }] });
    await start();
    expect(offered()).toEqual(['fx.echo', 'memory.entities.create']);

    // Everything is in a journal that verifies.
    const out = path.join(tmpDir(), 'export');
    await exportJournal(api!.regent.journal, out, 'jest');
    expect(await verifyExport(out, { keyText: api!.regent.journal.vkey })).toMatchObject({ ok: true });
    const kinds = fs
      .readFileSync(path.join(out, 'entries.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; actor: string; subject: string | null });
    const of = (k: string) => kinds.filter((e) => e.kind === k);
    expect(of('connector.pinned').map((e) => e.subject).sort()).toEqual(['connector:fx', 'connector:memory']);
    expect(of('connector.changed')).toHaveLength(2);
    expect(of('connector.accepted').map((e) => e.actor)).toEqual(['user:admin', 'user:admin']);
    expect(of('proposal.transitioned').length).toBeGreaterThan(0);
  });
});
