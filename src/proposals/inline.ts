import type { Connector } from '../connectors/types';
import { detached, type SqlTx } from '../db/sql';
import type { JournalService } from '../journal/service';
import type { AppendInput } from '../journal/contract';
import type { Logger } from '../log/logger';
import type { PolicyService } from '../policy/service';
import type { Decision, DecisionRequest } from '../policy/types';
import type { NewProposal, ProposalStore } from './store';
import type { ActingTwin, Proposal } from './types';

/**
 * Execution together with the decision, in batches (group commit for governed actions).
 *
 * An action request in execute mode whose connector's system lives in Regent's own database
 * (sandbox) is decided, booked, applied and recorded in one transaction: the effect commits
 * together with its proposal and journal entries, or not at all. Requests arriving while a
 * transaction is running wait and go together in the next one, which locks the running totals
 * once, decides them in order (each counting the amounts admitted before it), reads and writes
 * the records they touch, inserts their proposals and appends their journal entries in a few
 * statements instead of a few per request.
 *
 * Anything unusual leaves the request to the ordinary path (recorded, then executed by the
 * outbox): a decision other than execute, a refusal by the business system, a connector that
 * cannot act in a transaction now. A batch that fails as a whole rolls back and its requests are
 * tried one by one, so one bad request never takes others down with it.
 */

/** One action request that may execute with its decision. */
export interface InlineItem {
  /** The new proposal's id, which is also the connector's idempotency key. */
  id: string;
  twin: string;
  idempotencyKey: string;
  connector: Connector;
  action: string;
  args: Record<string, unknown>;
  /**
   * The decision request, given the twin as read in the batch's transaction; undefined where the
   * twin may not act with the decision now (its mode, a kill switch).
   */
  request(twin: ActingTwin): DecisionRequest | undefined;
  /** The proposal row and journal entries once it executed, decided `d` on `request`, with `result`. */
  record(twin: ActingTwin, request: DecisionRequest, d: Decision, result: Record<string, unknown>): InlineRecord;
}

export type InlineOutcome =
  | { kind: 'executed'; proposal: Proposal }
  /** The idempotency key was already used: nothing was written for this request. */
  | { kind: 'taken'; existing: Proposal }
  /** Not executed here (nothing was written for it): the ordinary path takes the request. */
  | { kind: 'ordinary' };

export interface InlineRecord {
  row: NewProposal & { id: string };
  entries(p: Proposal): AppendInput[];
}

export interface InlineDeps {
  store: Pick<ProposalStore, 'transaction' | 'insertMany' | 'byIdempotencyKey'>;
  policy: Pick<PolicyService, 'bookInOrder'>;
  journal: Pick<JournalService, 'appendWithin'>;
  /** The twins named, read inside the batch's transaction (a missing one is left out). */
  twins(ids: readonly string[], tx: SqlTx): Promise<ReadonlyMap<string, ActingTwin>>;
  log: Logger;
  /** Whether decision `d` lets the request execute at once. */
  executes(d: Decision): boolean;
  /** Most requests per transaction. */
  maxBatch?: number;
}

/** Thrown inside a batch to roll it back: an idempotency key in it was already used. */
class KeyTaken extends Error {
  constructor() {
    super('an idempotency key in the batch was already used');
  }
}

/**
 * Whether a failed batch may have failed because of one of its requests (a value the database
 * refused, an idempotency key taken, a record changed under it), rather than because the
 * database is unreachable, shutting down, out of resources or timed out (SQLSTATE classes 08,
 * 53, 57; a dropped connection has no SQLSTATE at all).
 */
export function perRequest(err: unknown): boolean {
  if (err instanceof KeyTaken) return true;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return !/^(08|53|57)/.test(code);
  const message = err instanceof Error ? err.message : String(err);
  return !/connect|terminated|timeout|ECONN|EPIPE|socket|closed/i.test(message);
}

export function createInlineExecutor(deps: InlineDeps) {
  const { store, policy, journal, log } = deps;
  const maxBatch = deps.maxBatch ?? 64;
  const queue: { item: InlineItem; resolve: (o: InlineOutcome) => void }[] = [];
  let pumping: Promise<void> | undefined;
  /** Transactions run and requests they carried (a retry one by one counts again). */
  const stats = { batches: 0, requests: 0 };

  async function executeBatch(tx: SqlTx, items: readonly InlineItem[]): Promise<InlineOutcome[]> {
    const out: InlineOutcome[] = items.map(() => ({ kind: 'ordinary' }));
    // The twins as of this transaction: a mode changed or a kill switch engaged before it began
    // is seen here, not only as of the request's arrival.
    const twins = await deps.twins([...new Set(items.map((i) => i.twin))], tx);
    const live = items.flatMap((item, i) => {
      const twin = twins.get(item.twin);
      const request = twin && item.request(twin);
      return twin && request ? [{ i, item, twin, request }] : [];
    });
    if (live.length === 0) return out;
    const booking = await policy.bookInOrder(
      tx,
      live.map((l) => l.request),
    );
    const decided: (Decision | undefined)[] = [];
    const results: (Record<string, unknown> | undefined)[] = [];
    const byConnector = new Map<Connector, number[]>();
    live.forEach((l, k) => {
      const list = byConnector.get(l.item.connector);
      if (list) list.push(k);
      else byConnector.set(l.item.connector, [k]);
    });
    for (const [connector, index] of byConnector) {
      const outcomes = await connector.executeManyWithin!(
        tx,
        index.map((k) => ({ action: live[k]!.item.action, input: live[k]!.item.args, idempotencyKey: live[k]!.item.id })),
        {
          admit: (j) => {
            const d = (decided[index[j]!] = booking.decide(index[j]!));
            return deps.executes(d);
          },
          applied: (j) => booking.admit(decided[index[j]!]!, `proposal:${live[index[j]!]!.item.id}`),
        },
      );
      outcomes?.forEach((o, j) => {
        if (o?.ok) results[index[j]!] = o.result;
      });
    }
    const done = live.flatMap((l, k) => (results[k] ? [{ i: l.i, record: l.item.record(l.twin, l.request, decided[k]!, results[k]!) }] : []));
    if (done.length === 0) return out;
    await booking.flush('committed');
    const inserted = await store.insertMany(
      tx,
      done.map((d) => d.record.row),
    );
    if (inserted.length !== done.length) throw new KeyTaken();
    await journal.appendWithin(
      tx,
      inserted.flatMap((p, k) => done[k]!.record.entries(p)),
    );
    inserted.forEach((p, k) => (out[done[k]!.i] = { kind: 'executed', proposal: p }));
    return out;
  }

  async function run(batch: readonly { item: InlineItem; resolve: (o: InlineOutcome) => void }[]): Promise<void> {
    stats.batches++;
    stats.requests += batch.length;
    try {
      const outcomes = await store.transaction((tx) => executeBatch(tx, batch.map((b) => b.item)));
      batch.forEach((b, i) => b.resolve(outcomes[i]!));
      return;
    } catch (err) {
      // Nothing of the batch was written. When the database itself failed, trying again here
      // would only queue the others behind more failures: the ordinary path answers each.
      if (!perRequest(err)) {
        log.warn('could not execute with the decision; taking the ordinary path', { error: err, requests: batch.length });
        for (const b of batch) b.resolve({ kind: 'ordinary' });
        return;
      }
      // Several: each on its own, so one cannot fail the rest.
      if (batch.length > 1) {
        for (const b of batch) await run([b]);
        return;
      }
      const { item, resolve } = batch[0]!;
      if (err instanceof KeyTaken) {
        const existing = await store.byIdempotencyKey(item.twin, item.idempotencyKey).catch(() => undefined);
        resolve(existing ? { kind: 'taken', existing } : { kind: 'ordinary' });
        return;
      }
      log.warn('could not execute with the decision; taking the ordinary path', { error: err, action: item.action, twin: item.twin });
      resolve({ kind: 'ordinary' });
    }
  }

  async function pump(): Promise<void> {
    try {
      while (queue.length > 0) {
        // Let the event loop read what else has arrived first. On the embedded database a query
        // completes in microtasks (PGlite runs in this thread), so without this turn an HTTP
        // request would go from its socket to its commit before the next request's socket is
        // even read, and every batch would hold one request.
        await new Promise<void>((resolve) => setImmediate(resolve));
        const batch = queue.splice(0, maxBatch);
        // run() answers every request itself; should it ever throw, none may be left waiting.
        await run(batch).catch((err) => {
          log.error('batch failed unexpectedly; taking the ordinary path', { error: err });
          for (const b of batch) b.resolve({ kind: 'ordinary' });
        });
      }
    } finally {
      pumping = undefined;
    }
  }

  return {
    /**
     * Decides and executes `item` with its decision, together with whatever else is waiting.
     * Never rejects: a request that cannot execute here comes back as `ordinary`.
     */
    submit(item: InlineItem): Promise<InlineOutcome> {
      return new Promise((resolve) => {
        queue.push({ item, resolve });
        pumping ??= detached(() => pump());
      });
    },

    /** Whether `connector` can take part (its system lives in Regent's database). */
    supports: (connector: Connector): boolean => typeof connector.executeManyWithin === 'function',

    /** How many transactions ran, carrying how many requests, and how many requests wait now. */
    stats: (): { batches: number; requests: number; waiting: number } => ({ ...stats, waiting: queue.length }),
  };
}

export type InlineExecutor = ReturnType<typeof createInlineExecutor>;
