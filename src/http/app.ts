import { randomUUID } from 'node:crypto';
import express, { type Express } from 'express';
import type { Database } from '../db/database';
import type { JournalService } from '../journal/service';
import type { PolicyService } from '../policy/service';
import { withRequestContext, type Logger } from '../log/logger';
import { VERSION } from '../version';
import { errorHandler, notFoundHandler } from './problem';

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
      res.status(503).json({ status: 'unavailable', database: deps.db.kind, reason: 'no valid policy bundle is in force (see regent policy check)' });
      return;
    }
    res.json({ status: 'ok', database: deps.db.kind, migrations: 'applied', journal: { size: head.size }, policyVersion });
  });

  app.use(notFoundHandler);
  app.use(errorHandler(log));
  return app;
}
