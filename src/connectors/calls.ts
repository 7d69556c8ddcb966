/**
 * Exactly-once business calls across crashes. Every connector call is recorded in
 * `connector_calls` under its idempotency key: `started` before the business system is called,
 * `succeeded` or `failed` (with the response) after. A second call with the same key returns what
 * was recorded; a call found `started` means a process died mid-call (or one is still running),
 * so it is repeated only where a repeat cannot make a second effect.
 */
import type { Sql, SqlTx } from '../db/sql';
import type { ExecutionResult } from './types';

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
}

interface CallRow {
  connector: string;
  action: string;
  status: 'started' | 'succeeded' | 'failed';
  response: Record<string, unknown> | null;
  error: string | null;
  updated_at: Date | string;
}

const MAX_ERROR = 2000;

async function readCall(sql: SqlTx, key: string): Promise<CallRow | undefined> {
  const rows = await sql.query<CallRow>(
    'SELECT connector, action, status, response, error, updated_at FROM connector_calls WHERE idempotency_key = $1',
    [key],
  );
  return rows[0];
}

async function recordResult(sql: SqlTx, key: string, result: ExecutionResult): Promise<void> {
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

/** What a recorded row means for a new call with its key: a recorded answer, or go ahead. */
type Claim = { run: true } | { run: false; result: ExecutionResult };

async function claim(sql: Sql, call: CallOptions): Promise<Claim> {
  const inserted = await sql.query(
    `INSERT INTO connector_calls (idempotency_key, connector, action, status) VALUES ($1, $2, $3, 'started')
     ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key`,
    [call.idempotencyKey, call.connector, call.action],
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
      const again = await sql.query(
        `UPDATE connector_calls SET status = 'started', updated_at = now() WHERE idempotency_key = $1 AND status = 'failed' RETURNING idempotency_key`,
        [call.idempotencyKey],
      );
      if (again.length) return { run: true };
      continue;
    }
    // started: the process that began this call died (or is still waiting for an answer).
    if (call.idempotent) return { run: true };
    const since = new Date(row.updated_at).toISOString();
    return {
      run: false,
      result: {
        ok: false,
        retryable: false,
        error:
          `outcome unknown after a crash: a call with idempotency key ${call.idempotencyKey} started at ${since} and never finished; ` +
          `check ${call.checkIn ?? call.connector} for idempotency key ${call.idempotencyKey} before trying again with a new key`,
      },
    };
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
  let result: ExecutionResult;
  try {
    result = await fn();
  } catch (err) {
    result = { ok: false, retryable: call.idempotent, error: `${call.action} failed unexpectedly: ${(err as Error).message}` };
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
        // A retryable failure, or a `started` row left by another connector type: run it now.
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
