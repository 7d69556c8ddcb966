import { AsyncLocalStorage } from 'node:async_hooks';
import winston from 'winston';

export type Logger = winston.Logger;

/** Request-scoped context (request id, actor) carried through async calls into every log line. */
const context = new AsyncLocalStorage<{ requestId: string }>();

export function withRequestContext<T>(requestId: string, fn: () => T): T {
  return context.run({ requestId }, fn);
}

export function currentRequestId(): string | undefined {
  return context.getStore()?.requestId;
}

// Keys whose values are never written to a log, at any depth.
const SECRET_KEY = /pass(word)?|secret|token|api[-_]?key|authorization|cookie|private|signing[-_]?key|credential/i;
const URL_PASSWORD = /(\w+:\/\/[^:/\s]+:)([^@\s]+)@/g;

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[deep]';
  if (typeof value === 'string') return value.replace(URL_PASSWORD, '$1***@');
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Error) return { name: value.name, message: redact(value.message, depth + 1) };
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? '[redacted]' : redact(v, depth + 1);
    return out;
  }
  return value;
}

const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (key === 'level') continue;
    (info as Record<string, unknown>)[key] = SECRET_KEY.test(key) ? '[redacted]' : redact(info[key]);
  }
  const requestId = currentRequestId();
  if (requestId && !info.requestId) info.requestId = requestId;
  return info;
});

/** JSON lines on stderr (stdout stays clean for CLI output that scripts read). */
export function createLogger(level: string, opts: { silent?: boolean; stream?: NodeJS.WritableStream } = {}): Logger {
  return winston.createLogger({
    level,
    silent: opts.silent ?? false,
    format: winston.format.combine(winston.format.timestamp(), redactFormat(), winston.format.json()),
    defaultMeta: { service: 'regent' },
    transports: [
      opts.stream
        ? new winston.transports.Stream({ stream: opts.stream })
        : new winston.transports.Console({ stderrLevels: [...Object.keys(winston.config.npm.levels)] }),
    ],
  });
}
