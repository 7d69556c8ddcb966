import { randomUUID } from 'node:crypto';
import express, { type Express, type Router } from 'express';
import type { Database } from '../db/database';
import type { JournalService } from '../journal/service';
import type { PeopleService } from '../people/service';
import type { PolicyService } from '../policy/service';
import type { TwinService } from '../twins/service';
import type { ProposalService } from '../proposals/service';
import { createProposalRouter } from './routes/proposals';
import { withRequestContext, type Logger } from '../log/logger';
import { VERSION } from '../version';
import { authenticate, journalForbidden } from './auth';
import { errorHandler, notFoundHandler } from './problem';
import { journalRoutes } from './routes/journal';
import { twinRoutes } from './routes/twins';
import { userRoutes } from './routes/users';

declare module 'express-serve-static-core' {
  interface Request {
    requestId: string;
  }
}

export interface HttpDeps {
  db: Pick<Database, 'ready' | 'kind'>;
  journal: Pick<JournalService, 'head'>;
  /** When given, readiness also requires a valid policy bundle in force (fail closed otherwise). */
  policy?: Pick<PolicyService, 'version'>;
  log: Logger;
  /** With people and twins, the /v1 API is served, behind bearer authentication. */
  people?: PeopleService;
  twins?: TwinService;
  /** With proposals, the pipeline routes (/v1/proposals…) are served too. */
  proposals?: ProposalService;
  /** The /v1 route groups; default API_ROUTES. */
  routes?: readonly RouteGroup[];
}

/** What a /v1 route group is given: every service the server was started with. */
export type ApiDeps = Omit<HttpDeps, 'journal' | 'people' | 'twins'> & {
  journal: JournalService;
  people: PeopleService;
  twins: TwinService;
};

/**
 * A group of /v1 routes (full paths, e.g. `/v1/twins`). Every request reaching it is
 * authenticated (`req.principal`); each route authorizes itself (see ./auth).
 */
export type RouteGroup = (deps: ApiDeps) => Router;

/** /v1/proposals…, where the server runs the pipeline (absent without policies). */
const proposalRoutes: RouteGroup = (deps) => {
  if (!deps.proposals) return express.Router();
  const twins = deps.twins;
  return createProposalRouter({
    proposals: deps.proposals,
    twinsOwnedBy: async (owner) => (await twins.ownedBy(owner)).map((t) => t.id),
    twinOwner: async (id) => (await twins.get(id).catch(() => undefined))?.owner,
  });
};

export const API_ROUTES: readonly RouteGroup[] = [userRoutes, twinRoutes, journalRoutes, proposalRoutes];

function hasApi(deps: HttpDeps): deps is HttpDeps & ApiDeps {
  return deps.people !== undefined && deps.twins !== undefined && 'append' in deps.journal;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

export function createHttpApp(deps: HttpDeps): Express {
  const { log } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);

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
  app.use(express.json({ limit: '256kb', strict: true }));

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
    res.json({ status: 'ok', database: deps.db.kind, migrations: 'applied', journal: { size: head.size }, policyVersion });
  });

  if (hasApi(deps)) {
    app.use('/v1', authenticate(deps));
    for (const group of deps.routes ?? API_ROUTES) app.use(group(deps));
    app.use('/v1', journalForbidden(deps));
  }

  app.use(notFoundHandler);
  app.use(errorHandler(log));
  return app;
}
