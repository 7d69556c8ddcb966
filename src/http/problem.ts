import type { ErrorRequestHandler, RequestHandler } from 'express';
import { RegentError, type ErrorCode } from '../errors/errors';
import type { Logger } from '../log/logger';
import { randomUUID } from 'node:crypto';

/** The only place that knows how an error code becomes an HTTP status. */
const STATUS: Record<ErrorCode, number> = {
  bad_input: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  unavailable: 503,
  internal: 500,
};

const TITLE: Record<ErrorCode, string> = {
  bad_input: 'Bad request',
  unauthenticated: 'Authentication required',
  forbidden: 'Forbidden',
  not_found: 'Not found',
  conflict: 'Conflict',
  unavailable: 'Service unavailable',
  internal: 'Internal error',
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
      code = 'bad_input';
      detail = `request body is larger than the limit of ${err.limit} bytes`;
    } else if (err?.type === 'encoding.unsupported' || err?.type === 'charset.unsupported') {
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
