import { randomUUID } from 'node:crypto';
import express, { type Express, type Router } from 'express';
import type { Database } from '../db/database';
import type { JournalService } from '../journal/service';
import type { PeopleService } from '../people/service';
import { createPolicyHistory, type PolicyHistory } from '../policy/history';
import type { PolicyService } from '../policy/service';
import type { TwinService } from '../twins/service';
import type { ProposalService } from '../proposals/service';
import type { ObjectiveService } from '../objectives/service';
import type { SignalService } from '../signals/service';
import type { SignalSources } from '../signals/sources/runner';
import { objectiveApi } from './routes/objectives';
import { signalApi } from './routes/signals';
import { knowledgeApi } from './routes/knowledge';
import type { KnowledgeService } from '../knowledge/service';
import type { ConnectorRegistry } from '../connectors/types';
import { DEFAULT_HTTP_CONFIG, type HttpConfig, type McpSettings, type OidcConfig } from '../config/config';
import { createJournalQuery, type JournalQueryService } from '../journal/query';
import { createProposalStore } from '../proposals/store';
import type { Regent } from '../app';
import { createMetrics, metricsEndpoint, metricsRoute } from './metrics';
import { assertUnique, docsRoutes, SYSTEM_ENDPOINTS } from './openapi';
import { createOidcVerifier } from './oidc';
import { bindModule, mountEndpoints, type ApiModule, type Endpoint } from './registry';
import { cors, createFailureLimiter, noStore, perKeyRateLimit, securityHeaders } from './security';
import { adminApi } from './routes/admin';
import { proposalApi } from './routes/proposals';
import { withRequestContext, type Logger } from '../log/logger';
import { VERSION } from '../version';
import { authenticate, journalForbidden, journalRefusal } from './auth';
import { errorHandler, notFoundHandler } from './problem';
import { journalApi } from './routes/journal';
import { twinApi } from './routes/twins';
import { userApi } from './routes/users';
import { meRoutes } from './routes/me';
import { consoleRouter } from '../console';
import { createMcpGateway } from '../mcp/gateway';
import { DERIVED_KEY_PREFIX } from '../mcp/calls';
import { createOrigins } from '../mcp/origins';
import type { ServerEventBus } from '@modelcontextprotocol/server';

declare module 'express-serve-static-core' {
  interface Request {
    requestId: string;
  }
}

export interface HttpDeps {
  /** With `sql` (and `prisma`, for the management listings), the /v1 API and the database-backed metrics are served. */
  db: Pick<Database, 'ready' | 'kind'> & Partial<Pick<Database, 'sql' | 'prisma'>>;
  journal: Pick<JournalService, 'head'>;
  /** When given, readiness also requires a valid policy bundle in force (fail closed otherwise). */
  policy?: Pick<PolicyService, 'version'>;
  log: Logger;
  /** With people and twins, the /v1 API is served, behind bearer authentication. */
  people?: PeopleService;
  twins?: TwinService;
  /** With proposals, the pipeline routes (/v1/proposals…) are served too. */
  proposals?: ProposalService;
  /** With objectives, /v1/twins/:id/objectives, /v1/objectives… and /v1/playbooks are served. */
  objectives?: ObjectiveService;
  /** With signals, /v1/signals is served. */
  signals?: SignalService;
  /** With knowledge, /v1/knowledge/… is served; documents up to maxDocumentBytes (base64 in the JSON body). */
  knowledge?: KnowledgeService;
  maxDocumentBytes?: number;
  /** Broker subscriptions feeding signals: /readyz reports each (and "degraded" naming one that is not connected). */
  signalSources?: Pick<SignalSources, 'status'>;
  /** The /v1 route groups; default API_ROUTES. */
  routes?: readonly (RouteGroup | ApiModule)[];
  /** The connectors in force (GET /v1/connectors). */
  connectors?: ConnectorRegistry;
  /** Where policy files are read from (GET /v1/policies). */
  policiesDir?: string;
  /** The HTTP guards (CORS, rate limits, body size, metrics token); defaults when left out. */
  http?: Partial<HttpConfig>;
  /** OIDC/JWT bearer tokens, when configured. */
  oidc?: OidcConfig;
  /** With these (and proposals, connectors), Regent's MCP server is served at /mcp. */
  mcp?: McpHttpOptions;
}

export interface McpHttpOptions {
  /** Signs the session ids handed to 2025-era MCP clients (all processes derive the same one). */
  sessionSecret: Buffer;
  settings: McpSettings;
  /** The address the server is bound to: loopback names are always accepted as Host. */
  bindHost: string;
  policy: Pick<PolicyService, 'bundle'>;
  bus?: ServerEventBus;
  /** How often a held call looks at its proposal; default 250 ms. */
  pollMs?: number;
}

/** What a /v1 route group is given: every service the server was started with. */
export type ApiDeps = Omit<HttpDeps, 'journal' | 'people' | 'twins' | 'db'> & {
  db: Pick<Database, 'ready' | 'kind' | 'sql' | 'prisma'>;
  journal: JournalService;
  people: PeopleService;
  twins: TwinService;
  /** Read-side journal queries and proofs (cached subtree hashes live here, one per app). */
  journalQuery: JournalQueryService;
  /** The policy versions recorded (the admin views), whether or not this server loads policies. */
  policyHistory: PolicyHistory;
};

/**
 * A group of /v1 routes (full paths, e.g. `/v1/twins`). Every request reaching it is
 * authenticated (`req.principal`); each route authorizes itself (see ./auth).
 */
export type RouteGroup = (deps: ApiDeps) => Router;

/**
 * The /v1 route groups. ApiModules are declared in the route registry (./registry.ts), which
 * mounts, validates and authorizes them and generates /openapi.json from them; plain RouteGroups
 * are declared in the registry by hand (see SYSTEM_ENDPOINTS in ./openapi.ts).
 */
export const API_ROUTES: readonly (RouteGroup | ApiModule)[] = [
  meRoutes,
  userApi,
  twinApi,
  journalApi,
  proposalApi,
  adminApi,
  objectiveApi,
  signalApi,
  knowledgeApi,
];

/** Every route the server can serve, as declared: what /openapi.json documents. */
export function apiCatalog(routes: readonly (RouteGroup | ApiModule)[] = API_ROUTES): Endpoint[] {
  const all: Endpoint[] = [...Object.values(SYSTEM_ENDPOINTS), metricsEndpoint];
  for (const g of routes) if (typeof g !== 'function') all.push(...g.endpoints);
  assertUnique(all);
  return all;
}

function hasApi(deps: HttpDeps): deps is HttpDeps & Omit<ApiDeps, 'journalQuery' | 'policyHistory'> {
  return deps.people !== undefined && deps.twins !== undefined && deps.db.sql !== undefined && deps.db.prisma !== undefined && 'append' in deps.journal;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Everything an opened Regent serves, wired as `regent serve` wires it (tests and tools start
 * the same server); `over` replaces parts of it, e.g. `{ http: { rateLimitPerMinute: 0 } }`.
 */
export function httpDepsOf(regent: Regent, over: Omit<Partial<HttpDeps>, 'http'> & { http?: Partial<HttpConfig> } = {}): HttpDeps {
  const { config } = regent;
  return {
    db: regent.db,
    journal: regent.journal,
    policy: regent.policy,
    people: regent.people,
    twins: regent.twins,
    proposals: regent.proposals,
    objectives: regent.objectives,
    signals: regent.signals,
    knowledge: regent.knowledge,
    maxDocumentBytes: config.knowledge.maxDocumentBytes,
    ...(regent.signalSources ? { signalSources: regent.signalSources } : {}),
    connectors: regent.connectors,
    policiesDir: config.policiesDir,
    oidc: config.oidc,
    log: regent.log,
    ...(regent.policy
      ? {
          mcp: {
            sessionSecret: regent.signer.deriveSecret('mcp-session'),
            settings: config.mcp,
            bindHost: config.host,
            policy: regent.policy,
            ...(regent.mcpBus ? { bus: regent.mcpBus } : {}),
          },
        }
      : {}),
    ...over,
    http: { ...config.http, ...over.http },
  };
}

export function createHttpApp(deps: HttpDeps): Express {
  const { log } = deps;
  const app = express();
  app.disable('x-powered-by');
  const http: HttpConfig = { ...DEFAULT_HTTP_CONFIG, ...deps.http };
  // Only the proxies named in REGENT_TRUST_PROXY may say who the client is (X-Forwarded-For):
  // anyone else could claim any address and escape the per-address limit on refused sign-ins.
  app.set('trust proxy', http.trustProxy.length > 0 ? http.trustProxy : false);
  const journalQuery = deps.db.sql && createJournalQuery(deps.db.sql);
  const metrics = createMetrics({
    ...(deps.db.sql && journalQuery ? { storage: { journal: journalQuery, proposals: createProposalStore(deps.db.sql) } } : {}),
    journal: deps.journal,
    executedWithDecision: deps.proposals?.inlineStats,
    log,
  });
  app.locals.metrics = metrics;
  app.use(securityHeaders());
  app.use(metrics.middleware);

  // A request id on every request: taken from the caller when sane, echoed back, in every log line.
  app.use((req, res, next) => {
    const given = req.get('x-request-id');
    req.requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
    res.setHeader('x-request-id', req.requestId);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      log.http('request', {
        requestId: req.requestId,
        method: req.method,
        path: req.path,
        status: res.statusCode,
        ms: Number(process.hrtime.bigint() - started) / 1e6,
      });
    });
    withRequestContext(req.requestId, next);
  });
  app.use(cors(http.corsOrigins));
  // A document comes base64-encoded in its JSON body: that route takes what the largest needs,
  // and reads it only once the caller is authenticated and within its rate limit (below), never
  // for anyone who can reach the port.
  const documentBody =
    deps.knowledge && deps.maxDocumentBytes
      ? express.json({ limit: Math.max(http.maxBodyBytes, Math.ceil((deps.maxDocumentBytes * 4) / 3) + 64 * 1024), strict: true })
      : undefined;
  const isDocumentUpload = (req: express.Request) => documentBody !== undefined && req.method === 'POST' && req.path === '/v1/knowledge/documents';
  // application/cloudevents+json: a structured CloudEvent (POST /v1/signals).
  const body = express.json({ limit: http.maxBodyBytes, strict: true, type: ['application/json', 'application/cloudevents+json'] });
  app.use((req, res, next) => (isDocumentUpload(req) ? next() : body(req, res, next)));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', version: VERSION });
  });

  app.get('/readyz', async (_req, res) => {
    const ready = await deps.db.ready();
    if (!ready.ok) {
      res.status(503).json({ status: 'unavailable', database: deps.db.kind, reason: ready.reason });
      return;
    }
    const head = await deps.journal.head().catch(() => undefined);
    if (!head) {
      res.status(503).json({ status: 'unavailable', database: deps.db.kind, reason: 'journal head unreadable' });
      return;
    }
    const policyVersion = deps.policy ? deps.policy.version() : undefined;
    if (deps.policy && !policyVersion) {
      res
        .status(503)
        .json({ status: 'unavailable', database: deps.db.kind, reason: 'no valid policy bundle is in force (see regent policy check)' });
      return;
    }
    // Servers behind MCP connectors: their state only (the reasons are in the log and, for admins,
    // in GET /v1/connectors). One that is down leaves its operations unavailable, not Regent.
    const servers = [...(deps.connectors?.connectors.values() ?? [])].flatMap((c) => {
      const h = c.health?.();
      return h ? [[c.id, { state: h.state, unavailableOperations: h.operations.length }] as const] : [];
    });
    // A broker that is down does not stop the API (approvals, the console) from serving: still
    // 200, but "degraded", naming the source, so a monitor sees that signals are not arriving.
    const sources = deps.signalSources?.status();
    const down = (sources ?? []).filter((s) => !s.connected);
    res.json({
      status: down.length ? 'degraded' : 'ok',
      database: deps.db.kind,
      migrations: 'applied',
      journal: { size: head.size },
      policyVersion,
      ...(servers.length ? { connectors: Object.fromEntries(servers) } : {}),
      ...(down.length ? { reason: down.map((s) => `signal source ${s.id} (${s.type}) is not connected: ${s.error ?? 'unknown'}`).join('; ') } : {}),
      ...(sources ? { signalSources: sources.map((s) => ({ id: s.id, type: s.type, connected: s.connected, since: s.since, error: s.error, received: s.received, repeats: s.repeats, refused: s.refused })) } : {}),
    });
  });

  // /openapi.json, /docs and /metrics, from the route registry.
  const routes = deps.routes ?? API_ROUTES;
  const catalog = apiCatalog(routes);
  const system = express.Router();
  mountEndpoints(system, [...docsRoutes(() => catalog), metricsRoute(metrics, http.metricsToken)]);
  app.use(system);

  if (hasApi(deps)) {
    const api: ApiDeps = {
      ...deps,
      journalQuery: journalQuery ?? createJournalQuery(deps.db.sql),
      policyHistory: createPolicyHistory(deps.db),
    };
    const oidc = deps.oidc && createOidcVerifier(deps.oidc, deps.people, log, deps.twins);
    const failures = createFailureLimiter(http.authFailuresPerMinute);
    const limit = perKeyRateLimit(http.rateLimitPerMinute, (req) =>
      journalRefusal(
        { journal: api.journal, log },
        req,
        req.principal.ref,
        { status: 429, reason: 'rate_limited', limitPerMinute: http.rateLimitPerMinute },
        req.principal.keyId === 'oidc' ? null : `key:${req.principal.keyId}`,
      ),
    );
    // Regent's MCP server: a twin's key, every call a governed action request (src/mcp).
    if (deps.mcp && deps.proposals && deps.connectors) {
      const registry = deps.connectors;
      const gateway = createMcpGateway({
        log,
        journal: api.journal,
        people: deps.people,
        twins: deps.twins,
        proposals: deps.proposals,
        policy: deps.mcp.policy,
        connectors: () => registry,
        sessionSecret: deps.mcp.sessionSecret,
        config: {
          holdMs: deps.mcp.settings.holdMs,
          pollMs: deps.mcp.pollMs ?? 250,
          retryWindowMs: deps.mcp.settings.retryWindowMs,
          origins: createOrigins({ publicUrl: deps.mcp.settings.publicUrl, bindHost: deps.mcp.bindHost, oidcIssuer: deps.oidc?.issuer }),
        },
        ...(deps.mcp.bus ? { bus: deps.mcp.bus } : {}),
        // One process makes every proposal on the embedded database: it keeps the keys it derived.
        ...(deps.db.kind === 'embedded' && deps.db.sql
          ? { derivedKeysSince: ((store) => (since: Date) => store.keysSince(DERIVED_KEY_PREFIX, since))(createProposalStore(deps.db.sql)) }
          : {}),
        auth: { ...(oidc ? { oidc } : {}), failures },
        ...(limit ? { rateLimit: limit } : {}),
      });
      app.locals.mcp = gateway;
      app.use(['/mcp', '/.well-known/oauth-protected-resource'], noStore);
      app.use(gateway.router());
    }
    app.use('/v1', noStore, authenticate({ ...api, oidc, failures }));
    if (limit) app.use('/v1', limit);
    if (documentBody) app.use((req, res, next) => (isDocumentUpload(req) ? documentBody(req, res, next) : next()));
    for (const group of routes) {
      if (typeof group === 'function') app.use(group(api));
      else if (group.available?.(api) ?? true) {
        const r = express.Router();
        mountEndpoints(r, bindModule(group, api));
        app.use(r);
      }
    }
    app.use('/v1', journalForbidden(deps));
  }

  // The web console at / (static files; it calls the API above with the key people sign in with).
  app.use(consoleRouter());

  app.use(notFoundHandler);
  app.use(errorHandler(log));
  return app;
}
