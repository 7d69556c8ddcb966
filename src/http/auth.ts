import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import { ForbiddenError, RateLimitedError, RegentError, UnauthenticatedError, UnavailableError } from '../errors/errors';
import type { EntryData } from '../journal/contract';
import type { JournalService } from '../journal/service';
import type { Logger } from '../log/logger';
import type { PeopleService } from '../people/service';
import type { Principal } from '../people/types';
import { can, canSome, type Actor, type Capability } from '../policy/roles';
import { looksLikeJwt, type OidcVerifier } from './oidc';

declare module 'express-serve-static-core' {
  interface Request {
    /** Who is calling; set by `authenticate` on every /v1 route (absent on /healthz and the like). */
    principal: Principal;
  }
}

export interface AuthDeps {
  people: Pick<PeopleService, 'identify'>;
  journal: Pick<JournalService, 'append'>;
  log: Logger;
  /** OIDC/JWT bearer tokens, when configured. */
  oidc?: OidcVerifier;
  /**
   * Counts refused sign-ins per client address; past the limit they get 429 and only the first
   * one over it is journaled (a flood of bad keys must not flood the journal).
   */
  failures?: { hit(req: Request): Promise<{ over: boolean; first: boolean; retryAfterS: number; limit: number }> };
  /** More parameters of the 401 challenge, e.g. RFC 9728's `resource_metadata="…"` on /mcp. */
  challenge?: (req: Request) => string;
}

const BEARER = /^Bearer +(\S+) *$/i;

/** The route as called, without the query string (which is not ours to journal). */
const pathOf = (req: Request) => req.baseUrl + req.path;

export async function journalRefusal(
  deps: Pick<AuthDeps, 'journal' | 'log'>,
  req: Request,
  actor: string,
  data: { status: EntryData<'auth.refused'>['status']; [detail: string]: unknown },
  subject: string | null,
) {
  // A refusal is answered even when it cannot be journaled; the log then says so.
  await deps.journal
    .append({ kind: 'auth.refused', actor, subject, data: { method: req.method, path: pathOf(req), ...data } })
    .catch((err) => deps.log.error('could not journal a refused request', { error: err, ...data }));
}

/**
 * Bearer API keys. Missing, malformed, unknown or revoked keys get 401 with a `WWW-Authenticate`
 * challenge and are journaled as `auth.refused`, with the key's id when it has one but never the key.
 */
export function authenticate(deps: AuthDeps): RequestHandler {
  return async (req, res, next) => {
    const header = req.get('authorization');
    const token = header ? BEARER.exec(header)?.[1] : undefined;
    let refusal: { reason: string; keyId?: string; detail?: string; subject?: string };
    if (!header) refusal = { reason: 'missing' };
    else if (!token) refusal = { reason: 'malformed' };
    else if (looksLikeJwt(token)) {
      if (!deps.oidc) {
        refusal = {
          reason: 'oidc_not_configured',
          detail: 'this server takes Regent API keys (rgt_…) only: sign-in with identity provider tokens is not configured',
        };
      } else {
        const r = await deps.oidc.verify(token);
        if (r.ok) {
          req.principal = r.principal;
          next();
          return;
        }
        refusal = { reason: `oidc_${r.reason}`, detail: `the bearer token was refused: ${r.detail}`, ...(r.subject ? { subject: r.subject } : {}) };
      }
    } else {
      let r: Awaited<ReturnType<PeopleService['identify']>>;
      try {
        r = await deps.people.identify(token);
      } catch (err) {
        // Fail closed: no storage, no sign-in.
        deps.log.error('could not check an API key', { error: err });
        throw new UnavailableError('cannot check the API key right now (storage unavailable); try again');
      }
      if (r.ok) {
        req.principal = r.principal;
        next();
        return;
      }
      refusal = r.keyId ? { reason: r.reason, keyId: r.keyId } : { reason: r.reason };
    }
    const limited = deps.failures ? await deps.failures.hit(req) : undefined;
    const { detail, ...journaled } = refusal;
    if (limited?.over) {
      if (limited.first) await journalRefusal(deps, req, 'system', { status: 429, ...journaled, rateLimited: true }, null);
      res.setHeader('Retry-After', String(limited.retryAfterS));
      throw new RateLimitedError(
        `too many refused sign-ins from this address (more than ${limited.limit} a minute); try again in ${limited.retryAfterS} s`,
      );
    }
    await journalRefusal(deps, req, 'system', { status: 401, ...journaled }, refusal.keyId ? `key:${refusal.keyId}` : null);
    const missing = refusal.reason === 'missing';
    const more = deps.challenge ? `, ${deps.challenge(req)}` : '';
    res.setHeader('WWW-Authenticate', (missing ? 'Bearer realm="regent"' : 'Bearer realm="regent", error="invalid_token"') + more);
    throw new UnauthenticatedError(
      missing
        ? 'this route needs an API key: send Authorization: Bearer rgt_…'
        : header && !token
          ? 'the Authorization header must be "Bearer <API key>"'
          : (detail ?? 'the API key is not valid (unknown, revoked, or not a Regent key)'),
    );
  };
}

/** Journals every 403 as `auth.refused`, then lets the error handler answer it. */
export function journalForbidden(deps: Pick<AuthDeps, 'journal' | 'log'>): ErrorRequestHandler {
  return async (err, req, _res, next) => {
    // Any 403, also from route groups that throw RegentError('forbidden', …) themselves.
    if (err instanceof RegentError && err.code === 'forbidden') {
      await journalRefusal(deps, req, req.principal?.ref ?? 'system', { status: 403, ...(err.details ?? {}) }, null);
    }
    next(err);
  };
}

export function actorOf(p: Principal & { kind: 'user' }): Actor {
  return { id: p.id, roles: p.appRoles };
}

/** People's routes: a twin's key is refused here, whatever it asks; a twin never decides or approves. */
function person(req: Request, capability: Capability): Principal & { kind: 'user' } {
  const p = req.principal;
  if (!p) throw new RegentError('internal', 'authorization checked on a route without authentication');
  if (p.kind === 'twin') {
    throw new ForbiddenError(
      `${p.ref} uses a twin's key, which only works on the twin routes (such as POST /v1/proposals); ${capability} is for people`,
      { capability },
    );
  }
  return p;
}

function refuse(p: Principal, capability: Capability, attrs: Record<string, unknown>): never {
  const about = typeof attrs.owner === 'string' ? ` for a twin of ${attrs.owner}` : '';
  throw new ForbiddenError(`${p.ref} lacks the capability ${capability}${about}`, { capability });
}

/**
 * Throws 403 unless the caller is a person with `capability` for a resource with `attrs` (e.g.
 * its owner); returns that person.
 */
export function check(req: Request, capability: Capability, attrs: Record<string, unknown> = {}): Principal & { kind: 'user' } {
  const p = person(req, capability);
  if (!can(actorOf(p), capability, attrs)) refuse(p, capability, attrs);
  return p;
}

/** Throws 403 unless the caller has `capability` for at least one resource (list routes, and before loading one). */
export function checkSome(req: Request, capability: Capability): void {
  const p = person(req, capability);
  if (!canSome(actorOf(p), capability)) refuse(p, capability, {});
}

/** The refusal of a route that takes a twin's key, to anyone else. */
export function refuseNonTwin(): never {
  throw new ForbiddenError("this route takes a twin's API key (the one returned when the twin was created)", { capability: 'twin' });
}
