/**
 * The HTTP guards: security headers (helmet, with a CSP for a same-origin console), CORS (off
 * unless origins are listed), per-key rate limits, a limit on refused sign-ins per address,
 * and no caching of API answers. Body size limits are express.json's (413 via problem.ts).
 *
 * Rate limits are counted in each process's memory: the counter costs nothing on the request
 * path, where keeping it in the database would add a write to every request. With N processes
 * behind a balancer a key gets up to N times the limit; the limit is a guard against runaway
 * clients, not a quota.
 */
import { randomUUID } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import helmet from 'helmet';
import { ipKeyGenerator, MemoryStore, rateLimit, type Options } from 'express-rate-limit';
import { sendProblem } from './problem';
import { RateLimitedError } from '../errors/errors';

/** Same origin only, no inline script or style, no eval: what the built-in console needs and no more. */
export const CSP_DIRECTIVES = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  fontSrc: ["'self'"],
  connectSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
};

export function securityHeaders(): RequestHandler {
  return helmet({
    contentSecurityPolicy: { useDefaults: false, directives: CSP_DIRECTIVES },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    crossOriginOpenerPolicy: { policy: 'same-origin' },
  });
}

/** API answers hold business data and are per caller: never stored by browsers or proxies. */
export const noStore: RequestHandler = (_req, res, next) => {
  res.setHeader('Cache-Control', 'no-store');
  next();
};

const EXPOSED = [
  'x-request-id',
  'Content-Disposition',
  'Idempotent-Replayed',
  'Regent-Journal-Size',
  'Regent-Journal-Root',
  'RateLimit',
  'RateLimit-Policy',
  'Retry-After',
].join(', ');

/**
 * CORS for the listed origins only. With none listed (the default) no CORS header is ever sent,
 * so browsers keep other sites from reading the API; the built-in console is same-origin.
 * Credentials are bearer tokens, never cookies, so Allow-Credentials is never sent either.
 */
export function cors(origins: readonly string[]): RequestHandler {
  const allowed = new Set(origins);
  return (req, res, next) => {
    const origin = req.get('origin');
    if (!origin || allowed.size === 0) return next();
    res.vary('Origin');
    const preflight = req.method === 'OPTIONS' && req.get('access-control-request-method') !== undefined;
    if (!allowed.has(origin)) {
      if (preflight) {
        sendProblem(res, 'forbidden', `origin ${origin} may not call this API from a browser (it is not in REGENT_CORS_ORIGINS)`, randomUUID());
        return;
      }
      return next();
    }
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Access-Control-Expose-Headers', EXPOSED);
    if (preflight) {
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST, PUT, PATCH, DELETE');
      res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type, X-Request-Id');
      res.setHeader('Access-Control-Max-Age', '600');
      res.status(204).end();
      return;
    }
    next();
  };
}

/** What the per-key limit counts by: the API key's id, or the OIDC user. */
export function rateKeyOf(req: Request): string {
  const p = req.principal;
  if (!p) return `anonymous`;
  return p.keyId === 'oidc' ? `oidc:${p.ref}` : `key:${p.keyId}`;
}

/**
 * Requests per minute per API key (after authentication), answered with 429 problem+json and
 * Retry-After past the limit. `onFirstRefusal` is told of the first refused request of each key
 * and window (to journal it once, not a flood of them). Undefined when the limit is 0 (off).
 */
export function perKeyRateLimit(perMinute: number, onFirstRefusal?: (req: Request) => Promise<void>): RequestHandler | undefined {
  if (perMinute <= 0) return undefined;
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    keyGenerator: rateKeyOf,
    handler: async (req, res, next, options: Options) => {
      const info = (req as Request & { rateLimit?: { resetTime?: Date; used?: number } }).rateLimit;
      const reset = info?.resetTime;
      if (onFirstRefusal && info?.used === perMinute + 1) await onFirstRefusal(req);
      const retryAfterS = reset ? Math.max(1, Math.ceil((reset.getTime() - Date.now()) / 1000)) : Math.ceil(options.windowMs / 1000);
      res.setHeader('Retry-After', String(retryAfterS));
      const who = req.principal.keyId === 'oidc' ? req.principal.ref : `API key ${req.principal.keyId}`;
      next(new RateLimitedError(`${who} made more than ${perMinute} requests in a minute; try again in ${retryAfterS} s`));
    },
  });
}

/** Counts refused sign-ins per client address (IPv6 by /56 network) in fixed one-minute windows. */
export function createFailureLimiter(perMinute: number) {
  const store = new MemoryStore();
  store.init({ windowMs: 60_000 } as Options);
  return {
    async hit(req: Request) {
      const address = req.ip ?? req.socket.remoteAddress ?? 'unknown';
      const { totalHits, resetTime } = await store.increment(ipKeyGenerator(address));
      const retryAfterS = resetTime ? Math.max(1, Math.ceil((resetTime.getTime() - Date.now()) / 1000)) : 60;
      return { over: totalHits > perMinute, first: totalHits === perMinute + 1, retryAfterS, limit: perMinute };
    },
    /** Stops the store's cleanup timer (tests). */
    shutdown: () => store.shutdown(),
  };
}

