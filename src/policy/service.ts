import fs from 'node:fs';
import path from 'node:path';
import type { SqlTx } from '../db/sql';
import { InputError, NotFoundError, UnavailableError } from '../errors/errors';
import type { JournalService } from '../journal/service';
import type { Logger } from '../log/logger';
import { toDecimal, toMinor } from './amount';
import { decide, type PolicyBundle } from './engine';
import { policyHistoryOf } from './history';
import { formatLoadError, loadBundleFromSources, readPolicySources, type LoadError, type PolicySource } from './load';
import type { Booking, PolicyStore, PolicySummary, StoredPolicyVersion, TotalKey } from './store';
import { totalId } from './store';
import type { Period } from './time';
import type { Decision, DecisionRequest, Spent } from './types';

export type ReloadResult =
  { ok: true; version: string; changed: boolean; summary: PolicySummary } | { ok: false; errors: LoadError[]; inForce: string | null };

export interface ReservedDecision {
  decision: Decision;
  /** Ids of the reservations made for `ref` (empty unless the outcome is execute with limits). */
  reservationIds: string[];
}

/**
 * Several requests decided in order against running totals locked once (a batch of actions
 * that execute in one transaction). Each decision sees the amounts of the requests admitted
 * before it, as if they had been decided one after another.
 */
export interface OrderedBooking {
  /** The decision for request `i`, counting what was admitted so far. */
  decide(i: number): Decision;
  /** Counts an admitted decision's amounts (outcome execute, booked under `ref`) from now on. */
  admit(decision: Decision, ref: string): void;
  /** Writes the admitted requests' reservations and moves their running totals. */
  flush(status: 'reserved' | 'committed'): Promise<void>;
}

export interface PolicyServiceOptions {
  dir: string;
  store: PolicyStore;
  journal: Pick<JournalService, 'append' | 'latest'>;
  log: Logger;
  /** Debounce for file changes, ms. */
  debounceMs?: number;
}

function summarize(prev: PolicySource[] | undefined, next: PolicySource[], bundle: PolicyBundle, previous: string | null): PolicySummary {
  const before = new Map((prev ?? []).map((s) => [s.file, s.text]));
  const after = new Map(next.map((s) => [s.file, s.text]));
  return {
    authorities: [...bundle.authorities.keys()].sort(),
    files: [...after.keys()].sort(),
    previous,
    added: [...after.keys()].filter((f) => !before.has(f)).sort(),
    removed: [...before.keys()].filter((f) => !after.has(f)).sort(),
    changed: [...after.keys()].filter((f) => before.has(f) && before.get(f) !== after.get(f)).sort(),
  };
}

/**
 * The policy bundle in force, and decisions against it. Loading never half-applies: a refused
 * bundle is journaled and the last good one stays in force (from the database after a restart).
 * With no good bundle at all, every decision is refused (fail closed).
 */
export function createPolicyService(opts: PolicyServiceOptions) {
  const { store, journal, log } = opts;
  let current: { bundle: PolicyBundle; sources: PolicySource[] } | undefined;
  let watcher: fs.FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  /** The reload or sync running now: they are serialized, or they would race on `current`. */
  let reloading: Promise<unknown> | undefined;
  let syncTimer: NodeJS.Timeout | undefined;
  /** Told whenever the bundle in force here changes (a reload, a rollback, another process's version). */
  const listeners = new Set<(version: string) => void>();
  const changed = (version: string) => {
    for (const fn of listeners) {
      try {
        fn(version);
      } catch (err) {
        log.warn('a policy change listener failed', { error: err });
      }
    }
  };

  /**
   * The version in force is the one the journal names last (policy.loaded or policy.rolled_back),
   * whichever process loaded it. Brings this process to it, from the sources stored with it.
   */
  async function sync(): Promise<boolean> {
    const last = await journal.latest(['policy.loaded', 'policy.rolled_back']);
    const version = last?.policyVersion;
    if (!version || version === current?.bundle.version) return false;
    const stored = await store.getVersion(version);
    if (!stored) throw new Error(`the journal names policy version ${version}, which is not in policy_versions`);
    const loaded = loadBundleFromSources(stored.sources);
    if (!loaded.ok) throw new Error(`policy version ${version} in storage does not load: ${formatLoadError(loaded.errors[0]!)}`);
    const previous = current?.bundle.version ?? null;
    current = { bundle: loaded.bundle, sources: stored.sources };
    log.info('policy version in force changed in another process; now in force here too', { version, previous, by: last.actor });
    changed(version);
    return true;
  }

  async function apply(sources: PolicySource[], actor: string, kind: 'policy.loaded' | 'policy.rolled_back'): Promise<ReloadResult> {
    const loaded = loadBundleFromSources(sources);
    if (!loaded.ok) return refuse(loaded.errors, actor);
    const bundle = loaded.bundle;
    const previous = current?.bundle.version ?? null;
    if (previous === bundle.version) {
      return { ok: true, version: bundle.version, changed: false, summary: summarize(current!.sources, sources, bundle, previous) };
    }
    const summary = summarize(current?.sources, sources, bundle, previous);
    await store.saveVersion({ version: bundle.version, sources, summary, loadedBy: actor });
    await journal.append({
      kind,
      actor,
      subject: `policy:${bundle.version.slice(7, 23)}`,
      data: { version: bundle.version, ...summary },
      policyVersion: bundle.version,
    });
    current = { bundle, sources };
    log.info('policy bundle in force', { version: bundle.version, previous, authorities: summary.authorities.length });
    changed(bundle.version);
    return { ok: true, version: bundle.version, changed: true, summary };
  }

  async function refuse(errors: LoadError[], actor: string): Promise<ReloadResult> {
    const inForce = current?.bundle.version ?? null;
    log.warn('policy bundle refused; the last good bundle stays in force', { errors: errors.map(formatLoadError), inForce });
    await journal.append({
      kind: 'policy.refused',
      actor,
      data: { errors: errors.slice(0, 50).map((e) => ({ file: e.file, line: e.line, message: e.message })), inForce },
      policyVersion: inForce,
    });
    return { ok: false, errors, inForce };
  }

  /** Runs fn when no reload or sync is running (they would otherwise race on `current`). */
  async function serialized<T>(fn: () => Promise<T>): Promise<T> {
    while (reloading) await reloading.catch(() => undefined);
    const run = fn();
    reloading = run;
    try {
      return await run;
    } finally {
      reloading = undefined;
    }
  }

  async function reload(actor = 'system'): Promise<ReloadResult> {
    // Serialized: a reload racing another would otherwise journal versions out of order.
    return serialized(async () => {
      const read = readPolicySources(opts.dir);
      if (!read.ok) return refuse(read.errors, actor);
      return apply(read.sources, actor, 'policy.loaded');
    });
  }

  function inForce(): PolicyBundle {
    if (!current) throw new UnavailableError('no valid policy bundle is in force; every action is refused until one loads');
    return current.bundle;
  }

  /** The windows a decision would reserve against, keyed per running total. */
  function totalKeys(d: Decision): (TotalKey & { period: Period })[] {
    const seen = new Map<string, TotalKey & { period: Period }>();
    for (const r of d.reservations) {
      const k = { delegator: r.delegator, periodKey: `${r.key}@${r.tz}`, currency: r.currency, period: r.period };
      seen.set(totalId(k), k);
    }
    return [...seen.values()];
  }

  /** One amount per running total the decision reserves against (shared totals booked once). */
  function bookings(decision: Decision): Booking[] {
    return totalKeys(decision).map((k) => {
      const r = decision.reservations.find(
        (x) => x.delegator === k.delegator && `${x.key}@${x.tz}` === k.periodKey && x.currency === k.currency,
      )!;
      return { ...k, authority: r.authority, amountMinor: toMinor(r.amount, r.currency) };
    });
  }

  /** The decision for `request` given running totals (a decision without limits needs none). */
  function decideWith(bundle: PolicyBundle, request: DecisionRequest, first: Decision, totals: ReadonlyMap<string, bigint>): Decision {
    if (first.outcome !== 'execute' || first.reservations.length === 0) return first;
    const spentBy: Record<string, Spent> = {};
    for (const k of totalKeys(first)) {
      const total = totals.get(totalId(k));
      if (total === undefined) throw new Error(`running total ${k.delegator} ${k.periodKey} ${k.currency} was not locked`);
      (spentBy[k.delegator] ??= {})[k.period] = toDecimal(total, k.currency);
    }
    const delegator = first.reservations.find((r) => r.authority === first.authority)?.delegator;
    return decide(bundle, { ...request, spent: (delegator && spentBy[delegator]) || {}, spentBy });
  }

  return {
    /**
     * Puts back the version last in force (as the journal records it), then loads the files: an
     * unchanged bundle is not journaled again, a changed one is journaled with its diff, an
     * invalid one is refused and the recorded version stays in force.
     */
    async start(o: { watch?: boolean; syncMs?: number } = {}): Promise<ReloadResult> {
      const last = await journal.latest(['policy.loaded', 'policy.rolled_back']);
      const stored = last?.policyVersion ? await store.getVersion(last.policyVersion) : undefined;
      if (stored) {
        const loaded = loadBundleFromSources(stored.sources);
        if (loaded.ok) current = { bundle: loaded.bundle, sources: stored.sources };
      }
      const result = await reload('system');
      if (o.watch) this.watch();
      if (o.syncMs) {
        // Several processes on one database: a version loaded (or rolled back) by any of them
        // reaches the others within syncMs. A failed sync keeps the version in force here.
        syncTimer = setInterval(() => {
          void serialized(sync).catch((err) => log.error('policy sync failed; the version in force here stays', { error: err }));
        }, o.syncMs);
        syncTimer.unref();
      }
      return result;
    },

    /** Calls `fn` whenever the bundle in force here changes; returns the way to stop. */
    onChange(fn: (version: string) => void): () => void {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },

    /** Brings this process to the version in force in the database (see start's syncMs). */
    sync: () => serialized(sync),

    /** Reloads (debounced) whenever a file under the policies directory changes. */
    watch(): void {
      if (watcher || !fs.existsSync(opts.dir)) return;
      watcher = fs.watch(opts.dir, { recursive: true }, () => {
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => {
          void reload('system').catch((err) => log.error('policy reload failed', { error: err }));
        }, opts.debounceMs ?? 300);
      });
      watcher.on('error', (err) => log.error('policy watcher failed', { error: err }));
    },

    reload,

    /** The bundle in force (throws Unavailable when none: callers fail closed). */
    bundle: inForce,

    version: (): string | null => current?.bundle.version ?? null,

    /** A pure decision against the bundle in force, with the running totals the caller gives. */
    decide(request: DecisionRequest): Decision {
      return decide(inForce(), request);
    },

    /**
     * Decides with the delegators' real running totals and, when the outcome is execute under a
     * period limit, reserves the amount in the same transaction. Totals are locked, so concurrent
     * requests can never together pass a limit: the one that would is decided again and capped.
     */
    async decideAndReserve(request: Omit<DecisionRequest, 'spent' | 'spentBy'>, ref: string, within?: SqlTx): Promise<ReservedDecision> {
      const bundle = inForce();
      const first = decide(bundle, request);
      if (first.outcome !== 'execute' || first.reservations.length === 0) return { decision: first, reservationIds: [] };
      const run = async (tx: SqlTx): Promise<ReservedDecision> => {
        const totals = await store.lockTotals(tx, totalKeys(first));
        const decision = decideWith(bundle, request, first, totals);
        if (decision.outcome !== 'execute') return { decision, reservationIds: [] };
        const reservationIds = await store.addReservations(tx, ref, bookings(decision));
        return { decision, reservationIds };
      };
      return within ? run(within) : store.transaction(run);
    },

    /**
     * Opens an ordered booking for `requests` in `tx`: the running totals any of them could
     * reserve against are locked at once (one statement), then each is decided in turn.
     */
    async bookInOrder(tx: SqlTx, requests: readonly DecisionRequest[]): Promise<OrderedBooking> {
      const bundle = inForce();
      const first = requests.map((r) => decide(bundle, r));
      const totals = await store.lockTotals(
        tx,
        first.flatMap((d) => (d.outcome === 'execute' ? totalKeys(d) : [])),
      );
      const admitted: { ref: string; items: Booking[] }[] = [];
      return {
        decide: (i) => decideWith(bundle, requests[i]!, first[i]!, totals),
        admit(decision, ref) {
          const items = bookings(decision);
          for (const b of items) {
            const id = totalId(b);
            const total = totals.get(id);
            if (total === undefined) throw new Error(`running total ${b.delegator} ${b.periodKey} ${b.currency} was not locked`);
            totals.set(id, total + b.amountMinor);
          }
          admitted.push({ ref, items });
        },
        flush: (status) => store.addReservationsFor(tx, admitted, status).then(() => undefined),
      };
    },

    /**
     * Books an approved action's amounts on the running totals without a limit check: the
     * people who approved it accepted any excess. Idempotent per `ref`.
     */
    async reserveApproved(decision: Decision, ref: string, within?: SqlTx): Promise<string[]> {
      if (decision.reservations.length === 0) return [];
      const keys = totalKeys(decision);
      const run = async (tx: SqlTx): Promise<string[]> => {
        await store.lockTotals(tx, keys);
        if (await store.hasReservations(tx, ref)) return [];
        return store.addReservations(tx, ref, bookings(decision));
      };
      return within ? run(within) : store.transaction(run);
    },

    /** Gives reserved amounts back (rejection, expiry, failure). */
    release: (ref: string, within?: SqlTx) => store.release(ref, within),
    /** Keeps reserved amounts as spent (executed). */
    commit: (ref: string, within?: SqlTx) => store.commit(ref, within),

    ...policyHistoryOf(store),

    async getVersion(version: string): Promise<StoredPolicyVersion> {
      const v = await store.getVersion(version);
      if (!v) throw new NotFoundError(`no recorded policy version ${version}`);
      return v;
    },

    /**
     * Puts an earlier version back in force by rewriting the authority files from its record
     * (the files stay the source of truth, so the next edit starts from what is in force).
     */
    async rollback(version: string, actor: string): Promise<ReloadResult> {
      const v = await store.getVersion(version);
      if (!v) throw new NotFoundError(`no recorded policy version ${version} (see regent policy versions)`);
      const authorities = path.join(opts.dir, 'authorities');
      const root = path.basename(path.resolve(opts.dir));
      const prefix = `${root}/authorities/`;
      for (const s of v.sources) {
        if (!s.file.startsWith(prefix) || s.file.slice(prefix.length).includes('/')) {
          throw new InputError(`version ${version} holds ${s.file}, which is not under ${prefix}: cannot restore it here`);
        }
      }
      const loaded = loadBundleFromSources(v.sources);
      if (!loaded.ok) throw new InputError(`version ${version} no longer loads: ${formatLoadError(loaded.errors[0]!)}`);
      // Write to temporary names first, then swap, so a crash leaves either set, never a mix.
      fs.mkdirSync(authorities, { recursive: true });
      const keep = new Set(v.sources.map((s) => s.file.slice(prefix.length)));
      for (const s of v.sources) fs.writeFileSync(path.join(authorities, `.${s.file.slice(prefix.length)}.rollback`), s.text);
      for (const name of fs.readdirSync(authorities)) {
        if (/\.ya?ml$/.test(name) && !keep.has(name)) fs.rmSync(path.join(authorities, name));
      }
      for (const name of keep) fs.renameSync(path.join(authorities, `.${name}.rollback`), path.join(authorities, name));
      return serialized(() => apply(v.sources, actor, 'policy.rolled_back'));
    },

    stop(): void {
      if (timer) clearTimeout(timer);
      if (syncTimer) clearInterval(syncTimer);
      watcher?.close();
      watcher = undefined;
    },
  };
}

export type PolicyService = ReturnType<typeof createPolicyService>;
