/**
 * Exactly-once business calls across crashes. Every connector call is recorded in
 * `connector_calls` under its idempotency key: `started` before the business system is called,
 * `succeeded` or `failed` (with the response) after. A second call with the same key returns what
 * was recorded; a call found `started` means a process died mid-call (or one is still running),
 * so it is repeated only where a repeat cannot make a second effect. A call whose answer never
 * came (cut off after sending) is `unknown`: for a non-idempotent operation its outcome is in
 * doubt, and it stays so (the same key answers "in doubt" again) until a person or a status
 * lookup settles it.
 */
import type { Sql, SqlTx } from '../db/sql';
import type { CallInDoubt, ExecutionResult } from './types';

export interface CallKey {
  idempotencyKey: string;
  connector: string;
  action: string;
}

export interface CallOptions extends CallKey {
  /** A repeat with the same key makes no second effect (the system honours the key, or it is idempotent). */
  idempotent: boolean;
  /** Where a person looks when the outcome is unknown, e.g. "crm" or "the mail server's log". */
  checkIn?: string;
  /** The process making the call, recorded so an in-doubt call can say who sent it. */
  executor?: string;
}

export const CALL_STATUSES = ['started', 'succeeded', 'failed', 'unknown'] as const;
export type CallStatus = (typeof CALL_STATUSES)[number];

interface CallRow {
  connector: string;
  action: string;
  status: CallStatus;
  response: Record<string, unknown> | null;
  error: string | null;
  started_by: string | null;
  updated_at: Date | string;
}

/** Where a person looks for a call's effect. */
export function checkInFor(call: Pick<CallOptions, 'checkIn' | 'connector' | 'idempotencyKey'>): string {
  return `${call.checkIn ?? call.connector} for idempotency key ${call.idempotencyKey}`;
}

function inDoubt(call: CallOptions, row: CallRow, lastHeard: string | null): ExecutionResult {
  const known: CallInDoubt = {
    sentAt: new Date(row.updated_at).toISOString(),
    sentBy: row.started_by,
    lastHeard,
    checkIn: checkInFor(call),
  };
  return {
    ok: false,
    retryable: false,
    inDoubt: known,
    error:
      `${lastHeard === null ? 'outcome unknown after a crash' : 'outcome unknown'}: a call with idempotency key ${call.idempotencyKey} ` +
      `was sent at ${known.sentAt}${row.started_by ? ` by ${row.started_by}` : ''} and ` +
      `${lastHeard === null ? 'never finished' : `was cut off (${lastHeard})`}; ${call.action} is not idempotent, so it is not repeated: ` +
      `check ${known.checkIn}`,
  };
}

const MAX_ERROR = 2000;

async function readCall(sql: SqlTx, key: string): Promise<CallRow | undefined> {
  const rows = await sql.query<CallRow>(
    'SELECT connector, action, status, response, error, started_by, updated_at FROM connector_calls WHERE idempotency_key = $1',
    [key],
  );
  return rows[0];
}

async function recordResult(sql: SqlTx, key: string, result: ExecutionResult): Promise<void> {
  if (!result.ok && result.inDoubt) {
    await sql.query(
      `UPDATE connector_calls SET status = 'unknown', response = $2::jsonb, error = $3 WHERE idempotency_key = $1`,
      [key, JSON.stringify({ retryable: false, inDoubt: result.inDoubt }), (result.inDoubt.lastHeard ?? result.error).slice(0, MAX_ERROR)],
    );
    return;
  }
  if (result.ok) {
    await sql.query(
      `UPDATE connector_calls SET status = 'succeeded', response = $2::jsonb, error = NULL, updated_at = now() WHERE idempotency_key = $1`,
      [key, JSON.stringify(result.result)],
    );
  } else {
    await sql.query(
      `UPDATE connector_calls SET status = 'failed', response = $2::jsonb, error = $3, updated_at = now() WHERE idempotency_key = $1`,
      [key, JSON.stringify({ retryable: result.retryable }), result.error.slice(0, MAX_ERROR)],
    );
  }
}

function reused(call: CallKey, row: CallRow): ExecutionResult {
  return {
    ok: false,
    retryable: false,
    error: `idempotency key "${call.idempotencyKey}" was already used for ${row.connector} ${row.action}; a different call needs a new key`,
  };
}

/** Marks a call started again by this process, if it is still as read; false when another moved it. */
async function restart(sql: Sql, call: CallOptions, from: CallStatus): Promise<boolean> {
  const again = await sql.query(
    `UPDATE connector_calls SET status = 'started', started_by = $3, updated_at = now() WHERE idempotency_key = $1 AND status = $2 RETURNING idempotency_key`,
    [call.idempotencyKey, from, call.executor ?? null],
  );
  return again.length > 0;
}

/** What a recorded row means for a new call with its key: a recorded answer, or go ahead. */
type Claim = { run: true } | { run: false; result: ExecutionResult };

async function claim(sql: Sql, call: CallOptions): Promise<Claim> {
  const inserted = await sql.query(
    `INSERT INTO connector_calls (idempotency_key, connector, action, status, started_by) VALUES ($1, $2, $3, 'started', $4)
     ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key`,
    [call.idempotencyKey, call.connector, call.action, call.executor ?? null],
  );
  if (inserted.length) return { run: true };
  // Bounded: each round either answers or loses a race to a writer that just changed the row.
  for (let round = 0; round < 5; round++) {
    const row = await readCall(sql, call.idempotencyKey);
    if (!row) throw new Error(`connector call ${call.idempotencyKey} vanished`); // rows are never deleted
    if (row.connector !== call.connector || row.action !== call.action) return { run: false, result: reused(call, row) };
    if (row.status === 'succeeded') return { run: false, result: { ok: true, result: row.response ?? {} } };
    if (row.status === 'failed') {
      if (row.response?.retryable !== true) return { run: false, result: { ok: false, retryable: false, error: row.error ?? 'failed' } };
      if (await restart(sql, call, 'failed')) return { run: true };
      continue;
    }
    // started: the process that began this call died (or is still waiting for an answer);
    // unknown: it was cut off after sending. A repeat is safe only for an idempotent call.
    if (call.idempotent) {
      if (await restart(sql, call, row.status)) return { run: true };
      continue;
    }
    return { run: false, result: inDoubt(call, row, row.status === 'unknown' ? row.error : null) };
  }
  return { run: false, result: { ok: false, retryable: true, error: `idempotency key ${call.idempotencyKey} is contended; try again` } };
}

/**
 * Runs `fn` (the business call) at most once per idempotency key, as far as the business system
 * can tell: see the module comment. `fn` must not throw for business failures; a throw is
 * recorded as a failure whose outcome is unknown.
 */
export async function runOnce(sql: Sql, call: CallOptions, fn: () => Promise<ExecutionResult>): Promise<ExecutionResult> {
  const c = await claim(sql, call);
  if (!c.run) return c.result;
  const sentAt = new Date().toISOString();
  let result: ExecutionResult;
  try {
    result = await fn();
  } catch (err) {
    const error = `${call.action} failed unexpectedly: ${(err as Error).message}`;
    result = call.idempotent
      ? { ok: false, retryable: true, maybeSent: true, error }
      : { ok: false, retryable: false, error, inDoubt: { sentAt, sentBy: null, lastHeard: error, checkIn: '' } };
  }
  // An unknown outcome says when and by whom the call went out, and where to look.
  if (!result.ok && result.inDoubt) {
    result = {
      ...result,
      inDoubt: {
        sentAt: result.inDoubt.sentAt ?? sentAt,
        sentBy: result.inDoubt.sentBy ?? call.executor ?? null,
        lastHeard: result.inDoubt.lastHeard,
        checkIn: result.inDoubt.checkIn || checkInFor(call),
      },
    };
  }
  // If this write fails (storage gone), the row stays `started`: the next attempt treats it as a crash.
  await recordResult(sql, call.idempotencyKey, result);
  return result;
}

/**
 * For effects that live in Regent's own database (the sandbox): the effect and its record commit
 * in one transaction, so a crash leaves either both or neither, and a repeat is always safe.
 * `fn` returns the result, or throws a {@link BusinessFailure} to refuse without any effect.
 */
export async function runOnceAtomically(
  sql: Sql,
  call: CallKey,
  fn: (tx: SqlTx) => Promise<Record<string, unknown>>,
): Promise<ExecutionResult> {
  try {
    return await sql.transaction<ExecutionResult>(async (tx) => {
      // Waits for a concurrent holder of the key to commit, then sees its row.
      const inserted = await tx.query(
        `INSERT INTO connector_calls (idempotency_key, connector, action, status) VALUES ($1, $2, $3, 'started')
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key`,
        [call.idempotencyKey, call.connector, call.action],
      );
      if (!inserted.length) {
        const row = (await readCall(tx, call.idempotencyKey))!;
        if (row.connector !== call.connector || row.action !== call.action) return reused(call, row);
        if (row.status === 'succeeded') return { ok: true, result: row.response ?? {} };
        if (row.status === 'failed' && row.response?.retryable !== true)
          return { ok: false, retryable: false, error: row.error ?? 'failed' };
        // A retryable failure, or a `started` or `unknown` row left by another connector type: the
        // effect is applied here in one transaction with its record, so running it now is safe.
      }
      const result: ExecutionResult = { ok: true, result: await fn(tx) };
      await recordResult(tx, call.idempotencyKey, result);
      return result;
    });
  } catch (err) {
    if (!(err instanceof BusinessFailure)) throw err;
    // The transaction rolled back; record the refusal so the same key gets the same answer.
    const result: ExecutionResult = { ok: false, retryable: false, error: err.message };
    await sql.query(
      `INSERT INTO connector_calls (idempotency_key, connector, action, status, response, error) VALUES ($1, $2, $3, 'failed', $4::jsonb, $5)
       ON CONFLICT (idempotency_key) DO UPDATE SET status = 'failed', response = EXCLUDED.response, error = EXCLUDED.error, updated_at = now()
       WHERE connector_calls.status <> 'succeeded' AND connector_calls.connector = EXCLUDED.connector AND connector_calls.action = EXCLUDED.action`,
      [call.idempotencyKey, call.connector, call.action, JSON.stringify({ retryable: false }), err.message.slice(0, MAX_ERROR)],
    );
    const row = await readCall(sql, call.idempotencyKey);
    if (row && row.status === 'succeeded') return { ok: true, result: row.response ?? {} }; // a concurrent twin won
    return result;
  }
}

/** A refusal by the (simulated) business system: nothing happened, and trying again will not help. */
export class BusinessFailure extends Error {
  override readonly name = 'BusinessFailure';
}

/** The recorded state of a call, for operators and tests. */
export async function callStatus(
  sql: Sql,
  idempotencyKey: string,
): Promise<{ status: CallRow['status']; error: string | null } | undefined> {
  const row = await readCall(sql, idempotencyKey);
  return row && { status: row.status, error: row.error };
}
