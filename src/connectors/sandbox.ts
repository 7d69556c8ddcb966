/**
 * The sandbox connector: simulated business systems (a CRM, an ERP, a maintenance planner, a
 * mailbox) kept in Regent's own database (`sandbox_records`), with real state changes, so the
 * product can be tried offline and dry runs have somewhere to run.
 *
 * Each operation is planned from the records it reads (which gives `simulate` its before/after
 * without writing) and applied in one transaction together with its `connector_calls` record, so
 * the same idempotency key never changes anything twice, even across a crash.
 *
 * By job: sandbox-records.ts holds the records and the seed, sandbox-operations.ts what each
 * operation does; this file makes them a connector. Callers import from here.
 */
import { z } from 'zod';
import type { Sql, SqlTx } from '../db/sql';
import { InputError } from '../errors/errors';
import { BusinessFailure, runOnceAtomically } from './calls';
import { parseInput } from './input';
import { OPERATIONS, type Plan, type Read, type SandboxOperation, type SandboxOperationName } from './sandbox-operations';
import { readSandboxRecord, readSandboxRecords, refText, seedRecord, seedSandbox, writeRecords, type Ref, type SandboxRecord } from './sandbox-records';
import { operationAnnotations, type Connector, type ExecutionResult, type Operation, type Simulation, type ToolAnnotations, type WithinGate, type WithinItem, type WithinOutcome } from './types';

export { SANDBOX_OPERATIONS, type SandboxOperationName } from './sandbox-operations';
export { listSandboxRecords, readSandboxRecord, seedSandbox, type SandboxRecord } from './sandbox-records';

/** A gate that admits every item (one action executed on its own). */
const EVERY_ITEM: WithinGate = { admit: () => true, applied: () => undefined };

/** What a sandbox connector document says (the loader has validated it). */
export interface SandboxConnectorSpec {
  id: string;
  operations: { action: string; simulates?: SandboxOperationName; description?: string; annotations?: Partial<ToolAnnotations> }[];
}

/**
 * What an executed write changed, as recorded in the proposal's result and the journal: the
 * fields that changed, before and after, and for a list that grew the entries added (not the
 * whole list twice). A new record is recorded whole.
 */
export function describeChange(
  record: string,
  version: number,
  before: Record<string, unknown> | null,
  after: Record<string, unknown>,
): { record: string; version: number; before: Record<string, unknown> | null; after: Record<string, unknown>; appended?: Record<string, unknown[]> } {
  if (before === null) return { record, version, before: null, after };
  const was: Record<string, unknown> = {};
  const now: Record<string, unknown> = {};
  const appended: Record<string, unknown[]> = {};
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const b = before[k];
    const a = after[k];
    // A plan keeps what it does not change (the same values), so most fields end here cheaply.
    if (a === b) continue;
    const added = Array.isArray(b) && Array.isArray(a) ? appendedTo(b, a) : undefined;
    if (added) appended[k] = added;
    else if (!same(a, b)) {
      if (k in before) was[k] = b;
      if (k in after) now[k] = a;
    }
  }
  return { record, version, before: was, after: now, ...(Object.keys(appended).length ? { appended } : {}) };
}

const same = (a: unknown, b: unknown) => a === b || JSON.stringify(a) === JSON.stringify(b);

/**
 * The entries `after` adds at the end of `before` (whose oldest entries may have been dropped),
 * if that is all it does. Kept entries are usually the very same values, compared by reference
 * before by content.
 */
function appendedTo(before: unknown[], after: unknown[]): unknown[] | undefined {
  for (let m = Math.min(after.length - 1, before.length); m >= 0; m--) {
    let ok = true;
    for (let i = 0; i < m && ok; i++) ok = same(after[i], before[before.length - m + i]);
    if (ok) return m === 0 && before.length > 0 ? undefined : after.slice(m);
  }
  return undefined;
}

const describeWrites = (plan: Plan) => plan.writes.map((w) => ({ record: refText(w.ref), before: w.before, after: w.after }));

export function createSandboxConnector(spec: SandboxConnectorSpec, deps: { sql: Sql }): Connector {
  const { sql } = deps;
  const bound = new Map<string, SandboxOperation>();
  const operations = new Map<string, Operation>();
  for (const op of spec.operations) {
    const impl = OPERATIONS[op.simulates ?? (op.action as SandboxOperationName)];
    if (!impl) throw new Error(`${op.action} is not a sandbox operation`); // the loader refuses this first
    bound.set(op.action, impl);
    operations.set(op.action, {
      action: op.action,
      input: impl.input,
      inputJsonSchema: z.toJSONSchema(impl.input) as Record<string, unknown>,
      idempotent: true, // effect and record commit together, so a repeat is always answered from the record
      description: op.description ?? impl.description,
      annotations: operationAnnotations(op.annotations, true),
      attributes: impl.attributes,
    });
  }

  // The demo data is written the first time an operation executes (a failure is retried next
  // time); until then simulate reads the seed in memory, so a preview never writes anything.
  let seeded: Promise<unknown> | undefined;
  let seedDone = false;
  const ensureSeeded = () =>
    (seeded ??= seedSandbox(sql).then(
      () => (seedDone = true),
      (err) => ((seeded = undefined), Promise.reject(err)),
    ));

  /**
   * Applies `items` in order in `tx`, each planned from the records as the items before it left
   * them: the records each plan reads first are fetched (and locked) in one statement, and every
   * record's final state is written in one. The one mechanism behind execute (one item, its own
   * transaction) and executeManyWithin (a batch, the caller's transaction).
   */
  async function applyInOrder(tx: SqlTx, items: readonly WithinItem[], gate: WithinGate): Promise<WithinOutcome[]> {
    const now = new Date().toISOString();
    const resolved = items.map((it) => resolve(it.action, it.input));
    // The records each plan reads first, fetched (and locked) in one statement: a plan is run
    // up to its first read, which names the record and stops it.
    const wanted = new Map<string, Ref>();
    const stop = new Error('prefetch');
    await Promise.all(
      resolved.map((r, i) =>
        r.ok
          ? r.impl.plan(r.input, async (ref) => (wanted.set(refText(ref), ref), Promise.reject(stop)), { key: items[i]!.idempotencyKey, now }).catch((err) => {
              if (err !== stop && !(err instanceof BusinessFailure)) throw err;
            })
          : undefined,
      ),
    );
    const held = new Map<string, SandboxRecord | undefined>([...wanted.keys()].map((k) => [k, undefined]));
    for (const rec of await readSandboxRecords(tx, [...wanted.values()], { lock: true })) held.set(refText(rec), rec);
    // Each plan sees the records as the items before it left them.
    const written = new Map<string, { ref: Ref; data: Record<string, unknown>; version: number; created: boolean }>();
    const read: Read = async (ref) => {
      const k = refText(ref);
      const w = written.get(k);
      if (w) return { ...ref, data: w.data, version: w.version, updatedAt: now };
      if (!held.has(k)) held.set(k, await readSandboxRecord(tx, ref, { lock: true }));
      return held.get(k);
    };
    const out: WithinOutcome[] = [];
    for (let i = 0; i < items.length; i++) {
      const r = resolved[i]!;
      if (!r.ok) {
        out.push({ ok: false, refused: r.error });
        continue;
      }
      if (!gate.admit(i)) {
        out.push(null);
        continue;
      }
      let plan: Plan;
      try {
        plan = await r.impl.plan(r.input, read, { key: items[i]!.idempotencyKey, now });
      } catch (err) {
        if (!(err instanceof BusinessFailure)) throw err;
        out.push({ ok: false, refused: err.message });
        continue;
      }
      const changes = plan.writes.map((w) => {
        const k = refText(w.ref);
        const before = held.get(k);
        const version = (written.get(k)?.version ?? before?.version ?? 0) + 1;
        written.set(k, { ref: w.ref, data: w.after, version, created: before === undefined });
        return describeChange(k, version, w.before, w.after);
      });
      out.push({ ok: true, result: { summary: plan.summary, changes } });
      gate.applied(i);
    }
    await writeRecords(tx, [...written.values()]);
    return out;
  }

  /** The operation and the validated input, or why not (never reaching a plan with bad input). */
  function resolve(action: string, input: Record<string, unknown>) {
    const impl = bound.get(action);
    const op = operations.get(action);
    if (!impl || !op) return { ok: false as const, error: `${spec.id} has no operation ${action}` };
    const parsed = parseInput(op, input);
    return parsed.ok ? { ok: true as const, impl, input: parsed.input } : parsed;
  }

  return {
    id: spec.id,
    type: 'sandbox',
    operations,

    async simulate(action, input): Promise<Simulation> {
      const r = resolve(action, input);
      if (!r.ok) throw new InputError(r.error);
      const read: Read = async (ref) => (await readSandboxRecord(sql, ref)) ?? (seeded ? undefined : seedRecord(ref));
      try {
        const plan = await r.impl.plan(r.input, read, { key: undefined, now: new Date().toISOString() });
        return { summary: plan.summary, details: { connector: spec.id, action, changes: describeWrites(plan) } };
      } catch (err) {
        if (!(err instanceof BusinessFailure)) throw err;
        return { summary: `Would be refused: ${err.message}`, details: { connector: spec.id, action, refused: err.message, changes: [] } };
      }
    },

    async execute(action, input, idempotencyKey): Promise<ExecutionResult> {
      const r = resolve(action, input);
      if (!r.ok) return { ok: false, retryable: false, error: r.error };
      await ensureSeeded();
      return runOnceAtomically(sql, { idempotencyKey, connector: spec.id, action }, async (tx) => {
        const [o] = await applyInOrder(tx, [{ action, input: r.input, idempotencyKey }], EVERY_ITEM);
        if (!o?.ok) throw new BusinessFailure(o ? o.refused : `${action} was not applied`);
        return o.result;
      });
    },

    async executeManyWithin(tx, items, gate) {
      // The demo data is written with the first execution, in its transaction; once it was
      // there before this transaction began (this process or another wrote it), never again.
      if (!seedDone && (await seedSandbox(tx)) === 0) seedDone = true;
      return applyInOrder(tx, items, gate);
    },
  };
}
