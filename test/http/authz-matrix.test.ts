/**
 * Every route × every caller (executive, approver, auditor, admin, twin, anonymous).
 *
 * The expected answer comes from the route registry (callersOf: the same CASL rules the access
 * gate enforces): a caller the registry admits gets the route's success status, and its response
 * must parse with the response schema the route declares (no undocumented field); anyone else
 * gets 403 (401 without credentials) as problem+json. The express app must serve no route the
 * registry does not declare, and every declared route must be served.
 */
import type { Express } from 'express';
import { z } from 'zod';
import { apiCatalog } from '../../src/http/app';
import { CALLERS, callersOf, routeKey, type Caller, type Endpoint } from '../../src/http/registry';
import { describeEachDatabase } from '../support/databases';
import { startRegentApi, vicAuthority, type RegentApi } from '../support/regent-api';

interface Ctx {
  api: RegentApi;
  /** Resources made in beforeAll. */
  ids: Record<string, string>;
  twinKey: string;
}

interface Fixture {
  /** The path with its parameters filled in (for the caller, after prepare). */
  path: (v: Record<string, string>) => string;
  body?: (caller: Caller, v: Record<string, string>) => unknown;
  /** Makes what an admitted caller acts on (a fresh proposal to cancel, a key to revoke). */
  prepare?: (caller: Caller, ctx: Ctx) => Promise<Record<string, string>>;
}

let seq = 0;
const unique = (p: string) => `${p}-${Date.now().toString(36)}-${++seq}`;

async function pendingProposal(ctx: Ctx): Promise<string> {
  const { proposal } = await ctx.api.regent.proposals!.create('matrix-twin', {
    action: 'crm.discount.update',
    args: { account: 'acme', discountPct: 20, amount: '100.00', currency: 'EUR' },
    rationale: 'matrix',
    idempotencyKey: unique('p'),
  });
  expect(proposal.status).toBe('pending_approval');
  return proposal.id;
}

/**
 * A proposal in doubt, for the authorization check of reconcile: how a call gets there is tested
 * end to end elsewhere (test/proposals/in-doubt.test.ts); here only who may settle it matters.
 */
async function inDoubtProposal(ctx: Ctx): Promise<string> {
  const id = await pendingProposal(ctx);
  const inDoubt = { since: new Date().toISOString(), sentAt: null, executor: 'executor-x', connector: 'crm', checkIn: `crm for idempotency key ${id}`, lastHeard: null, error: 'cut off' };
  await ctx.api.regent.db.sql.query(`UPDATE proposals SET status = 'in_doubt', in_doubt = $2::jsonb WHERE id = $1`, [id, JSON.stringify(inDoubt)]);
  return id;
}

async function objective(ctx: Ctx): Promise<string> {
  const o = await ctx.api.regent.objectives!.create(
    'matrix-twin',
    { text: 'keep acme', playbook: 'renewal-discount', params: { account: 'acme', discountPct: 20, amount: '100.00' } },
    'user:vic',
  );
  return o.id;
}

const FIXTURES: Record<string, Fixture> = {
  healthz: { path: () => '/healthz' },
  readyz: { path: () => '/readyz' },
  mcpResourceMetadata: { path: () => '/.well-known/oauth-protected-resource' },
  mcpResourceMetadataForPath: { path: () => '/.well-known/oauth-protected-resource/mcp' },
  openapi: { path: () => '/openapi.json' },
  docs: { path: () => '/docs' },
  docsStylesheet: { path: () => '/docs/docs.css' },
  console: { path: () => '/' },
  consoleIndex: { path: () => '/index.html' },
  metrics: { path: () => '/metrics' },
  getMe: { path: () => '/v1/me' },

  createUser: { path: () => '/v1/users', body: (c) => ({ name: unique(`user ${c}`), roles: ['auditor'] }) },
  listUsers: { path: () => '/v1/users' },
  createUserKey: { path: () => '/v1/users/audrey/keys', body: () => ({ label: 'spare' }) },
  revokeKey: {
    path: (v) => `/v1/keys/${v.key ?? '000000000000'}`,
    prepare: async (_c, ctx) => ({ key: (await ctx.api.regent.people.createKey('user:audrey', 'to revoke', 'system')).keyId }),
  },

  createTwin: {
    path: () => '/v1/twins',
    body: (c) => ({ id: c === 'admin' ? 'vic-b' : 'vic-a', owner: 'user:vic', authority: c === 'admin' ? 'vic-b' : 'vic-a', mode: 'propose' }),
  },
  listTwins: { path: () => '/v1/twins' },
  getTwin: { path: () => '/v1/twins/matrix-twin' },
  setTwinMode: { path: () => '/v1/twins/matrix-twin/mode', body: () => ({ mode: 'execute' }) },
  setKillSwitch: { path: () => '/v1/kill-switch', body: () => ({ engaged: false, twin: 'matrix-twin' }) },
  getKillSwitch: { path: () => '/v1/kill-switch' },

  listJournal: { path: () => '/v1/journal?limit=5&order=desc' },
  listJournalKinds: { path: () => '/v1/journal/kinds' },
  getJournalEntry: { path: () => '/v1/journal/entries/2' },
  getJournalProof: { path: () => '/v1/journal/proof/2' },
  getJournalConsistency: { path: () => '/v1/journal/consistency?from=1' },
  getJournalCheckpoint: { path: () => '/v1/journal/checkpoint' },
  verifyJournal: { path: () => '/v1/journal/verify' },
  exportJournal: { path: () => '/v1/journal/export?format=jsonl&kind=user.created' },

  createProposal: {
    path: () => '/v1/proposals',
    body: () => ({
      action: 'crm.discount.update',
      args: { account: 'globex', discountPct: 20, amount: '50.00', currency: 'EUR' },
      rationale: 'matrix',
      idempotencyKey: unique('create'),
    }),
  },
  listProposals: { path: () => '/v1/proposals?status=pending_approval&limit=5' },
  getProposal: { path: (v) => `/v1/proposals/${v.proposal}` },
  decideProposal: {
    path: (v) => `/v1/proposals/${v.fresh ?? v.proposal}/decisions`,
    body: () => ({ decision: 'approve', comment: 'fine' }),
    prepare: async (_c, ctx) => ({ fresh: await pendingProposal(ctx) }),
  },
  cancelProposal: {
    path: (v) => `/v1/proposals/${v.fresh ?? v.proposal}/cancel`,
    body: () => ({ reason: 'not needed' }),
    prepare: async (_c, ctx) => ({ fresh: await pendingProposal(ctx) }),
  },
  reconcileProposal: {
    path: (v) => `/v1/proposals/${v.fresh ?? v.proposal}/reconcile`,
    body: () => ({ outcome: 'not_executed', evidence: 'crm shows no such request' }),
    prepare: async (_c, ctx) => ({ fresh: await inDoubtProposal(ctx) }),
  },
  auditProposal: {
    path: (v) => `/v1/proposals/${v.executed}/audit`,
    body: () => ({ verdict: 'passed' }),
  },

  assignObjective: {
    path: () => '/v1/twins/matrix-twin/objectives',
    body: () => ({ text: 'keep acme happy', playbook: 'renewal-discount', params: { account: 'acme', discountPct: 20, amount: '100.00' } }),
  },
  listObjectives: { path: () => '/v1/twins/matrix-twin/objectives' },
  getObjective: { path: (v) => `/v1/objectives/${v.objective}` },
  cancelObjective: {
    path: (v) => `/v1/objectives/${v.freshObjective ?? v.objective}/cancel`,
    body: () => ({ reason: 'changed plans' }),
    prepare: async (_c, ctx) => ({ freshObjective: await objective(ctx) }),
  },
  listPlaybooks: { path: () => '/v1/playbooks' },

  receiveSignal: {
    path: () => '/v1/signals',
    body: () => ({ id: unique('sig'), type: 'crm.churn_risk', source: 'matrix', payload: { account: 'acme', riskScore: 0.2, suggestedDiscountPct: 5, discountValue: '10.00' } }),
  },
  getSignal: { path: (v) => `/v1/signals/${v.signal}` },

  addKnowledgeDocument: {
    path: () => '/v1/knowledge/documents',
    body: (c) => ({ collection: `matrix-${c}`, title: unique('doc'), class: 'internal', source: 'matrix', owner: 'user:vic', text: 'hello matrix' }),
  },
  searchKnowledge: { path: () => '/v1/knowledge/search?q=hello' },
  deleteKnowledgeDocument: {
    path: (v) => `/v1/knowledge/documents/${v.doc ?? 'doc-000000000000'}`,
    prepare: async (_c, ctx) => ({
      doc: (
        await ctx.api.regent.knowledge.ingest(
          { collection: 'matrix', title: unique('to delete'), class: 'internal', source: 'matrix', owner: 'user:vic', text: 'delete me' },
          { ref: 'user:admin', roles: ['admin'] },
        )
      ).id,
    }),
  },

  listConnectors: { path: () => '/v1/connectors' },
  // The sandbox is no MCP connector: nothing to accept, an empty list (accepting MCP changes: test/connectors/mcp-e2e.test.ts).
  acceptConnectorChanges: { path: () => '/v1/connectors/sandbox/accept', body: () => ({}) },
  listPolicyFiles: { path: () => '/v1/policies' },
  listPolicyVersions: { path: () => '/v1/policies/versions' },
  getPolicyVersion: { path: (v) => `/v1/policies/versions/${v.version}` },
};

/** Parses a response body with a declared schema and insists nothing was left out of it. */
function conforms(schema: z.ZodType, body: unknown): void {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new Error(`response does not match its declared schema: ${z.prettifyError(parsed.error)}\n${JSON.stringify(body).slice(0, 500)}`);
  // Parsing strips what the schema does not declare: equality means every field is documented.
  expect(JSON.parse(JSON.stringify(parsed.data))).toEqual(body);
}

/** Every METHOD path the express app routes, through nested routers. */
function servedRoutes(app: Express): string[] {
  const out: string[] = [];
  const walk = (stack: { route?: { path: string | string[]; methods: Record<string, boolean> }; handle?: { stack?: unknown[] } }[]) => {
    for (const layer of stack) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const m of Object.keys(layer.route.methods)) for (const p of paths) if (m !== '_all') out.push(`${m.toUpperCase()} ${p}`);
      } else if (layer.handle?.stack) walk(layer.handle.stack as never);
    }
  };
  walk((app as unknown as { router: { stack: never[] } }).router.stack);
  return out;
}

describeEachDatabase('authorization: every route × every caller', (getDb) => {
  let ctx: Ctx;
  const keys = {} as Record<Caller, string | null>;
  const catalog = apiCatalog();

  beforeAll(async () => {
    const api = await startRegentApi(getDb(), {
      extraPolicies: {
        'authorities/matrix-twin.yaml': vicAuthority('matrix-twin') + 'knowledge: { collections: [matrix], classes: [internal] }\n',
        'authorities/vic-a.yaml': vicAuthority('vic-a'),
        'authorities/vic-b.yaml': vicAuthority('vic-b'),
      },
      http: { rateLimitPerMinute: 0, authFailuresPerMinute: 100_000 },
      start: true,
    });
    const { people, twins, proposals, signals } = api.regent;
    const add = async (id: string, roles: string[]) => (await people.addUser({ id, name: id, roles }, 'system')).apiKey;
    keys.admin = api.adminKey;
    keys.executive = await add('vic', ['executive']);
    keys.approver = await add('sara', ['approver', 'sales-director']);
    keys.auditor = await add('audrey', ['auditor']);
    keys.anonymous = null;
    const twin = await twins.create({ id: 'matrix-twin', owner: 'user:vic', authority: 'matrix-twin', mode: 'execute' }, 'system');
    keys.twin = twin.apiKey;
    ctx = { api, ids: {}, twinKey: twin.apiKey };
    ctx.ids.proposal = await pendingProposal(ctx);
    // An execute-mode action, run by the executor, awaits post-hoc audit.
    const { proposal: note } = await proposals!.create('matrix-twin', {
      action: 'crm.note.create',
      args: { account: 'acme', text: 'matrix' },
      rationale: 'audit me',
      idempotencyKey: 'audit-1',
    });
    for (let i = 0; i < 200 && (await proposals!.get(note.id)).status !== 'executed'; i++) await new Promise((r) => setTimeout(r, 25));
    expect(await proposals!.get(note.id)).toMatchObject({ status: 'executed', audit: 'pending' });
    ctx.ids.executed = note.id;
    ctx.ids.objective = await objective(ctx);
    ctx.ids.signal = 'sig-fixed';
    await signals!.receive({ id: 'sig-fixed', type: 'crm.churn_risk', source: 'matrix', payload: { account: 'acme', riskScore: 0.1, suggestedDiscountPct: 1, discountValue: '1.00' } }, 'user:admin');
    ctx.ids.version = api.regent.policy!.version()!;
  });
  afterAll(async () => {
    await ctx?.api.close();
  });

  it('has a fixture for every route the registry declares', () => {
    expect(catalog.map((e) => e.id).filter((id) => !FIXTURES[id])).toEqual([]);
    expect(Object.keys(FIXTURES).filter((id) => !catalog.some((e) => e.id === id))).toEqual([]);
  });

  it('serves every declared route and no route the registry does not declare', () => {
    const app = ctx.api.server.server.listeners('request')[0] as unknown as Express;
    const served = new Set(servedRoutes(app));
    const declared = new Set(catalog.map(routeKey));
    expect([...served].filter((k) => !declared.has(k))).toEqual([]);
    expect([...declared].filter((k) => !served.has(k))).toEqual([]);
  });

  it('admits through the gate exactly the callers CASL grants (checked for the roles themselves)', () => {
    const byId = Object.fromEntries(catalog.map((e) => [e.id, callersOf(e)]));
    // Spot checks that tie the derived table to the roles' intent.
    expect(byId.createUser).toEqual(['admin']);
    // An executive passes the gate for their own twins' proposals; policy then decides (below).
    expect(byId.decideProposal).toEqual(['executive', 'approver']);
    expect(byId.auditProposal).toEqual(['auditor']);
    expect(byId.reconcileProposal).toEqual(['executive', 'admin']);
    expect(byId.exportJournal).toEqual(['auditor']);
    expect(byId.verifyJournal).toEqual(['auditor', 'admin']);
    expect(byId.listJournalKinds).toEqual(byId.listJournal);
    expect(byId.createProposal).toEqual(['twin']);
    expect(byId.listProposals).toEqual(['executive', 'approver', 'auditor', 'admin', 'twin']);
    expect(byId.listConnectors).toEqual(['admin']);
    expect(byId.healthz).toEqual([...CALLERS]);
  });

  const table = catalog.flatMap((e) => CALLERS.map((c) => [`${e.method} ${e.path}`, c, e] as [string, Caller, Endpoint]));

  it.each(table)('%s as %s', async (_label, caller, e) => {
    const fixture = FIXTURES[e.id]!;
    const admitted = callersOf(e).includes(caller);
    const values = { ...ctx.ids, ...(admitted && fixture.prepare ? await fixture.prepare(caller, ctx) : {}) };
    const headers: Record<string, string> = {};
    if (keys[caller]) headers.authorization = `Bearer ${keys[caller]}`;
    const body = fixture.body?.(caller, values);
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(ctx.api.url + fixture.path(values), {
      method: e.method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    if (!admitted) {
      const status = caller === 'anonymous' ? 401 : 403;
      expect({ status: res.status, text }).toMatchObject({ status });
      expect(type).toMatch(/^application\/problem\+json/);
      const problem = JSON.parse(text);
      expect(problem).toMatchObject({ status, errorId: expect.any(String), detail: expect.any(String) });
      if (status === 403) expect(problem.capability).toEqual(expect.any(String));
      return;
    }
    if (e.id === 'decideProposal' && caller === 'executive') {
      // The owner of the twin is let through to the decision, where the tier must name them: this
      // one names role:sales-director, so policy refuses the owner (separation of duties).
      expect({ status: res.status, detail: JSON.parse(text).detail }).toEqual({ status: 403, detail: expect.stringMatching(/approval needs one of role:sales-director/) });
      return;
    }
    const ok = Object.keys(e.responses).map(Number);
    if (!ok.includes(res.status)) throw new Error(`${caller}: ${e.method} ${e.path} answered ${res.status}, expected ${ok.join(' or ')}: ${text.slice(0, 400)}`);
    const declared = e.responses[res.status]!;
    if (declared.schema) {
      expect(type).toMatch(/^application\/json/);
      conforms(declared.schema, JSON.parse(text));
    } else {
      const media = Object.keys(declared.media ?? {});
      expect(media.some((m) => type.startsWith(m))).toBe(true);
    }
  });
});
