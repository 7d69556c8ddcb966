/**
 * The REST connector: the operations a connector document declares, over HTTP, to one host.
 *
 * The secret is handed in once, when the connector is made, and lives only in this closure: it is
 * put on the wire to the declared origin and nowhere else (not in a returned object, an error, a
 * simulation, a log line or another connector).
 */
import type { z } from 'zod';
import type { Sql } from '../db/sql';
import { InputError } from '../errors/errors';
import { parseInput } from './input';
import { checkInFor, runOnce } from './calls';
import { compileInputSchema, placeholders, restIdempotent, toJsonSchema, type RestConnectorDoc, type RestOperationDoc } from './schema';
import { MASK, scrubber } from './secrets';
import { operationAnnotations, type Connector, type ExecutionResult, type LookupResult, type Operation, type Simulation } from './types';

export interface RestDeps {
  sql: Sql;
  /** Base delay of the retry backoff (doubles per attempt, with jitter). */
  backoffMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_RETRIES = 2;
const MAX_BACKOFF_MS = 10_000;
const MAX_BODY_IN_ERROR = 300;
const MAX_TEXT_RESULT = 4000;
/** A business system's answer is read up to this size; a larger one is cut, never buffered whole. */
const MAX_RESPONSE_BYTES = 1 << 20;
const PENDING_KEY = '(the idempotency key)';

/** The HTTP request for an operation and input; `url` is always on the declared origin. */
interface PlannedRequest {
  method: string;
  url: URL;
  body: string | undefined;
}

/**
 * Fills `{x}` with URL-encoded input values and proves the result stays where it was declared:
 * same origin, and the path exactly as written (no dot segment or other normalization moved it).
 */
export function planRequest(
  baseUrl: string,
  op: Pick<RestOperationDoc, 'method' | 'path'>,
  input: Record<string, unknown>,
): PlannedRequest {
  const base = new URL(baseUrl);
  const basePath = base.pathname.replace(/\/+$/, '');
  const names = new Set(placeholders(op.path));
  const path = op.path.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
    const value = String(input[name] ?? '');
    // "." and ".." survive encodeURIComponent and would be resolved as dot segments by URL.
    if (value === '' || value === '.' || value === '..')
      throw new InputError(`${name} ${JSON.stringify(value)} cannot be used in a URL path`);
    return encodeURIComponent(value);
  });
  const expected = basePath + path;
  const url = new URL(base.origin + expected);
  if (url.origin !== base.origin || url.pathname !== expected) {
    throw new InputError(`the request would leave ${base.origin}${basePath || '/'}; refused`);
  }
  let body: string | undefined;
  if (op.method === 'GET') {
    // GET has no body: what the path did not take travels as the query string.
    for (const [k, v] of Object.entries(input)) {
      if (names.has(k) || v === undefined) continue;
      for (const item of Array.isArray(v) ? v : [v])
        url.searchParams.append(k, typeof item === 'object' && item !== null ? JSON.stringify(item) : String(item));
    }
  } else {
    body = JSON.stringify(input);
  }
  return { method: op.method, url, body };
}

type Attempt =
  | { kind: 'ok'; result: Record<string, unknown> }
  /** The system answered no: trying again will not change that. */
  | { kind: 'final'; error: string }
  /**
   * Maybe transient: a timeout, a network error, 5xx or 429. `unsent`: the system surely did not
   * act; `answered`: it said something (5xx), rather than nothing at all (a timeout, a reset).
   */
  | { kind: 'transient'; error: string; unsent: boolean; answered: boolean; retryAfterMs?: number };

async function readBounded(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size >= MAX_RESPONSE_BYTES) {
      await reader.cancel();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function retryAfterMs(res: Response): number | undefined {
  const v = res.headers.get('retry-after');
  if (!v) return undefined;
  const s = Number(v);
  if (Number.isFinite(s)) return s * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

export function createRestConnector(doc: RestConnectorDoc, secret: string | undefined, deps: RestDeps): Connector {
  const { sql } = deps;
  const backoffMs = deps.backoffMs ?? 250;
  const scrub = scrubber([secret]);
  // The only place the secret is combined into anything; `auth` never leaves this closure.
  const auth =
    doc.auth && secret !== undefined
      ? { header: doc.auth.header, value: doc.auth.scheme ? `${doc.auth.scheme} ${secret}` : secret }
      : undefined;
  const shownAuth = doc.auth ? { [doc.auth.header]: doc.auth.scheme ? `${doc.auth.scheme} ${MASK}` : MASK } : {};

  const declared = new Map<string, RestOperationDoc>();
  const operations = new Map<string, Operation>();
  for (const op of doc.operations) {
    declared.set(op.action, op);
    const attributeMap = Object.entries(op.attributes);
    operations.set(op.action, {
      action: op.action,
      input: compileInputSchema(op.input) as z.ZodType<Record<string, unknown>>,
      inputJsonSchema: toJsonSchema(op.input),
      idempotent: restIdempotent(op),
      ...(op.description !== undefined ? { description: op.description } : {}),
      annotations: operationAnnotations(op.annotations, restIdempotent(op)),
      attributes: (input) =>
        Object.fromEntries(attributeMap.filter(([, field]) => input[field] !== undefined).map(([attr, field]) => [attr, input[field]])),
    });
  }

  function prepare(action: string, input: Record<string, unknown>) {
    const op = declared.get(action);
    const operation = operations.get(action);
    if (!op || !operation) return { ok: false as const, error: `${doc.id} has no operation ${action}` };
    const parsed = parseInput(operation, input);
    if (!parsed.ok) return parsed;
    try {
      return { ok: true as const, op, operation, input: parsed.input, request: planRequest(doc.baseUrl, op, parsed.input) };
    } catch (err) {
      if (err instanceof InputError) return { ok: false as const, error: `${action}: ${err.message}` };
      throw err;
    }
  }

  async function attempt(req: PlannedRequest, key: string, timeoutMs: number): Promise<Attempt> {
    const where = `${req.method} ${req.url.pathname}`;
    const headers: Record<string, string> = { Accept: 'application/json', 'Idempotency-Key': key };
    if (req.body !== undefined) headers['Content-Type'] = 'application/json';
    if (auth) headers[auth.header] = auth.value;
    let res: Response;
    let text: string;
    try {
      // Redirects are not followed: a Location elsewhere must not receive the credential.
      res = await fetch(req.url, {
        method: req.method,
        headers,
        body: req.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await readBounded(res);
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      if (e.name === 'TimeoutError')
        return { kind: 'transient', unsent: false, answered: false, error: `${doc.id} did not answer ${where} within ${timeoutMs} ms` };
      const code = e.cause?.code;
      return {
        kind: 'transient',
        unsent: code === 'ECONNREFUSED',
        answered: false,
        error: `${doc.id} unreachable for ${where}: ${scrub(e.cause?.message ?? e.message)}`,
      };
    }
    const shown = scrub(text);
    if (res.status >= 200 && res.status < 300) {
      let body: unknown = shown.length > MAX_TEXT_RESULT ? `${shown.slice(0, MAX_TEXT_RESULT)}…` : shown;
      if (/json/i.test(res.headers.get('content-type') ?? '') && shown) {
        try {
          body = JSON.parse(shown);
        } catch {
          /* not JSON after all: keep the text */
        }
      }
      return { kind: 'ok', result: { status: res.status, body } };
    }
    const excerpt = shown.length > MAX_BODY_IN_ERROR ? `${shown.slice(0, MAX_BODY_IN_ERROR)}…` : shown;
    const error = `HTTP ${res.status} from ${doc.id} for ${where}${excerpt ? `: ${excerpt}` : ''}`;
    if (res.status === 429 || res.status >= 500) {
      const after = retryAfterMs(res);
      return { kind: 'transient', unsent: res.status === 429, answered: true, error, ...(after !== undefined ? { retryAfterMs: after } : {}) };
    }
    return { kind: 'final', error };
  }

  async function send(op: RestOperationDoc, operation: Operation, req: PlannedRequest, key: string): Promise<ExecutionResult> {
    const attempts = 1 + (operation.idempotent ? (op.retries ?? DEFAULT_RETRIES) : 0);
    const timeoutMs = op.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    for (let n = 1; ; n++) {
      const a = await attempt(req, key, timeoutMs);
      if (a.kind === 'ok') return { ok: true, result: a.result };
      if (a.kind === 'final') return { ok: false, retryable: false, error: a.error };
      if (n >= attempts) {
        if (a.unsent) return { ok: false, retryable: true, error: a.error };
        if (operation.idempotent) {
          const error = attempts > 1 ? `${a.error} (after ${attempts} attempts)` : a.error;
          return a.answered ? { ok: false, retryable: true, error } : { ok: false, retryable: true, maybeSent: true, error };
        }
        // Not idempotent and the system may have acted: repeating could do it twice.
        const checkIn = checkInFor({ connector: doc.id, idempotencyKey: key });
        return {
          ok: false,
          retryable: false,
          inDoubt: { sentAt: null, sentBy: null, lastHeard: a.error, checkIn },
          error: `${a.error}; outcome unknown and ${op.action} is not idempotent, so it is not repeated: check ${checkIn}`,
        };
      }
      const exp = Math.min(MAX_BACKOFF_MS, backoffMs * 2 ** (n - 1));
      await sleep(Math.max(exp / 2 + Math.random() * (exp / 2), Math.min(a.retryAfterMs ?? 0, MAX_BACKOFF_MS)));
    }
  }

  /** Reads a status answer: 2xx executed, 404/410 not executed, or as `field` says; else unknown. */
  async function askStatus(st: NonNullable<RestOperationDoc['status']>, req: PlannedRequest, key: string): Promise<LookupResult> {
    const a = await attempt(req, key, st.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const where = `GET ${req.url.pathname}`;
    if (a.kind === 'transient') return { outcome: 'unknown', error: a.error };
    if (a.kind === 'final') {
      if (/^HTTP (404|410) /.test(a.error)) return { outcome: 'not_executed', evidence: `${doc.id} answered ${where}: ${a.error}` };
      return { outcome: 'unknown', error: a.error };
    }
    const status = a.result.status as number;
    if (!st.field) return { outcome: 'executed', evidence: `${doc.id} answered ${where} with HTTP ${status}`, result: a.result };
    const body = a.result.body;
    const value = body && typeof body === 'object' ? (body as Record<string, unknown>)[st.field] : undefined;
    const shown = JSON.stringify(value);
    if (st.executed?.some((v) => v === value))
      return { outcome: 'executed', evidence: `${doc.id} answered ${where}: ${st.field} = ${shown}`, result: a.result };
    if (st.notExecuted?.some((v) => v === value))
      return { outcome: 'not_executed', evidence: `${doc.id} answered ${where}: ${st.field} = ${shown}` };
    return { outcome: 'unknown', error: `${doc.id} answered ${where} with ${st.field} = ${shown ?? 'nothing'}, which settles nothing` };
  }

  return {
    id: doc.id,
    type: 'rest',
    operations,

    async simulate(action, input): Promise<Simulation> {
      const p = prepare(action, input);
      if (!p.ok) throw new InputError(p.error);
      const headers: Record<string, string> = { ...shownAuth, 'Idempotency-Key': PENDING_KEY };
      if (p.request.body !== undefined) headers['Content-Type'] = 'application/json';
      return {
        summary: `${p.request.method} ${p.request.url.href}`,
        details: {
          connector: doc.id,
          action,
          method: p.request.method,
          url: p.request.url.href,
          headers,
          body: p.request.body === undefined ? null : p.input,
        },
      };
    },

    async execute(action, input, idempotencyKey, ctx): Promise<ExecutionResult> {
      const p = prepare(action, input);
      if (!p.ok) return { ok: false, retryable: false, error: p.error };
      return runOnce(
        sql,
        { idempotencyKey, connector: doc.id, action, idempotent: p.operation.idempotent, ...(ctx?.executor ? { executor: ctx.executor } : {}) },
        () => send(p.op, p.operation, p.request, idempotencyKey),
      );
    },

    canLookup: (action) => declared.get(action)?.status !== undefined,

    async lookup(action, input, idempotencyKey): Promise<LookupResult | undefined> {
      const op = declared.get(action);
      if (!op?.status) return undefined;
      const p = prepare(action, input);
      if (!p.ok) return { outcome: 'unknown', error: p.error };
      let req: PlannedRequest;
      try {
        req = planRequest(doc.baseUrl, { method: 'GET', path: op.status.path }, { ...p.input, idempotencyKey });
      } catch (err) {
        return { outcome: 'unknown', error: `${action} status: ${(err as Error).message}` };
      }
      // Only the path: a status request sends no query string of the input.
      req.url.search = '';
      return askStatus(op.status, req, idempotencyKey);
    },
  };
}
