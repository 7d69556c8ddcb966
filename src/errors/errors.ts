import { randomUUID } from 'node:crypto';

/**
 * Regent's one error family. Domain code throws these; only src/http maps a code to a status.
 * Every error carries an id that also appears in the log line written for it.
 */
export type ErrorCode =
  | 'bad_input'
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'unavailable'
  | 'internal'
  // Refusals of a request as such, said by src/http: a body over the limit, too many requests.
  | 'payload_too_large'
  | 'rate_limited';

export class RegentError extends Error {
  readonly id = randomUUID();
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'RegentError';
  }
}

export class InputError extends RegentError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('bad_input', message, details);
    this.name = 'InputError';
  }
}

export class NotFoundError extends RegentError {
  constructor(message: string) {
    super('not_found', message);
    this.name = 'NotFoundError';
  }
}

export class ConflictError extends RegentError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('conflict', message, details);
    this.name = 'ConflictError';
  }
}

/** Storage (or another dependency) cannot be reached; callers fail closed. */
export class UnavailableError extends RegentError {
  constructor(message: string) {
    super('unavailable', message);
    this.name = 'UnavailableError';
  }
}

/** No usable credentials; the HTTP layer answers 401 with a `WWW-Authenticate` challenge. */
export class UnauthenticatedError extends RegentError {
  constructor(message: string) {
    super('unauthenticated', message);
    this.name = 'UnauthenticatedError';
  }
}

/** Known caller, not allowed; `capability` names what was missing. */
export class ForbiddenError extends RegentError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('forbidden', message, details);
    this.name = 'ForbiddenError';
  }
}

/** Too many requests from one key or address; the HTTP layer answers 429 (with Retry-After, which it sets). */
export class RateLimitedError extends RegentError {
  constructor(message: string) {
    super('rate_limited', message);
    this.name = 'RateLimitedError';
  }
}
