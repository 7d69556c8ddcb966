import type { ErrorRequestHandler, RequestHandler } from 'express';
import { RegentError, type ErrorCode } from '../errors/errors';
import type { Logger } from '../log/logger';
import { randomUUID } from 'node:crypto';

/** The only place that knows how an error code becomes an HTTP status. */
export const STATUS: Record<ErrorCode, number> = {
  bad_input: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  unavailable: 503,
  internal: 500,
  payload_too_large: 413,
  rate_limited: 429,
};

const TITLE: Record<ErrorCode, string> = {
  bad_input: 'Bad request',
  unauthenticated: 'Authentication required',
  forbidden: 'Forbidden',
  not_found: 'Not found',
  conflict: 'Conflict',
  unavailable: 'Service unavailable',
  internal: 'Internal error',
  payload_too_large: 'Payload too large',
  rate_limited: 'Too many requests',
};

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  errorId: string;
  requestId?: string;
}

export function sendProblem(res: Parameters<RequestHandler>[1], code: ErrorCode, detail: string, errorId: string, extra: Record<string, unknown> = {}) {
  const status = STATUS[code];
  const body: Problem & Record<string, unknown> = {
    type: `https://regent.dev/problems/${code.replace(/_/g, '-')}`,
    title: TITLE[code],
    status,
    detail,
    instance: res.req.originalUrl,
    errorId,
    requestId: res.req.requestId,
    ...extra,
  };
  res.status(status).type('application/problem+json').send(JSON.stringify(body));
}

export const notFoundHandler: RequestHandler = (req, res) => {
  sendProblem(res, 'not_found', `no route for ${req.method} ${req.path}`, randomUUID());
};

/** Turns anything thrown into problem+json; the error id is in the log line too. Never a stack trace. */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    let code: ErrorCode = 'internal';
    let detail = 'an unexpected error occurred; quote the errorId when reporting it';
    let errorId: string = randomUUID();
    let extra: Record<string, unknown> = {};
    if (err instanceof RegentError) {
      code = err.code;
      detail = err.message;
      errorId = err.id;
      if (err.details) extra = err.details;
    } else if (err?.type === 'entity.parse.failed') {
      code = 'bad_input';
      detail = `malformed JSON body: ${err.message}`;
    } else if (err?.type === 'entity.too.large') {
      code = 'payload_too_large';
      detail = `request body is larger than the limit of ${err.limit} bytes`;
    } else if (err?.type === 'encoding.unsupported' || err?.type === 'charset.unsupported') {
      code = 'bad_input';
      detail = err.message;
    } else if (err instanceof URIError && (err as URIError & { status?: number }).status === 400) {
      // The router could not percent-decode a path parameter.
      code = 'bad_input';
      detail = `malformed percent-encoding in the URL path: ${req.path}`;
    } else if (typeof err?.status === 'number' && err.status >= 400 && err.status < 500 && err.expose) {
      // Other refusals of the request itself by express or its body parser (aborted, bad length, …).
      code = 'bad_input';
      detail = err.message;
    }
    const level = STATUS[code] >= 500 ? 'error' : 'warn';
    log.log(level, 'request failed', {
      errorId,
      code,
      method: req.method,
      path: req.path,
      detail,
      ...(code === 'internal' ? { error: { name: err?.name, message: err?.message, stack: err?.stack } } : {}),
    });
    if (res.headersSent) return;
    sendProblem(res, code, detail, errorId, extra);
  };
}
