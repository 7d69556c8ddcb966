/**
 * The run engine: a worker in every Regent process that claims due objective runs (FOR UPDATE
 * SKIP LOCKED plus a lease, so any number of processes can share the work), gives each one's
 * planner a PlannerContext, and records what came of it.
 *
 * By job: this file schedules (claims, concurrency, start and stop), turn.ts runs one turn of a
 * run, guards.ts checks and submits what a planner asks for; run-context.ts is what they share.
 */
import { randomUUID } from 'node:crypto';
import type { Planner } from '../agent/types';
import type { ConnectorRegistry } from '../connectors/types';
import type { JournalService } from '../journal/service';
import type { AppendInput } from '../journal/contract';
import type { Logger } from '../log/logger';
import type { PolicyService } from '../policy/service';
import type { Mode } from '../policy/types';
import type { ProposalService } from '../proposals/service';
import { createGuards } from './guards';
import { Interrupted, transitionEntry, type RunContext } from './run-context';
import type { ObjectiveStore } from './store';
import { createTurn } from './turn';
import type { ObjectiveRecord } from './types';

export interface RunnerOptions {
  /** How long a runner holds a claimed run before another may take it over. */
  leaseMs: number;
  pollIntervalMs: number;
  /** Action requests per twin and minute (all its objectives, all processes). */
  ratePerMinute: number;
  /** Runs one process works on at once. */
  maxConcurrent: number;
  /** Consecutive failures of storage or the pipeline before a run gives up. */
  maxFailures: number;
  retryBaseMs: number;
}

export const DEFAULT_RUNNER_OPTIONS: RunnerOptions = {
  leaseMs: 30_000,
  pollIntervalMs: 250,
  ratePerMinute: 30,
  maxConcurrent: 4,
  maxFailures: 5,
  retryBaseMs: 1000,
};

export interface TwinInfo {
  id: string;
  owner: string;
  authority: string;
  mode: Mode;
}

export interface RunnerDeps {
  store: ObjectiveStore;
  journal: Pick<JournalService, 'appendWithin'>;
  proposals: Pick<ProposalService, 'create' | 'get' | 'reviews' | 'cancel'>;
  twins: { get(id: string): Promise<TwinInfo> };
  policy: Pick<PolicyService, 'bundle' | 'version'>;
  connectors: () => ConnectorRegistry;
  /** The planner for a run: its playbook's, or the language model's (undefined when none is configured). */
  plannerFor(o: ObjectiveRecord): Planner | string;
  log: Logger;
  runnerId?: string;
  options?: Partial<RunnerOptions>;
}

export function createObjectiveRunner(deps: RunnerDeps) {
  const { store, journal, log } = deps;
  const opts = { ...DEFAULT_RUNNER_OPTIONS, ...deps.options };
  const runner = deps.runnerId ?? `runner-${process.pid}-${randomUUID().slice(0, 8)}`;
  const active = new Map<string, { controller: AbortController; done: Promise<void> }>();
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | undefined;
  let again = false;
  let stopping = false;
  let started = false;

  const policyVersion = () => deps.policy.version();
  const ctx: RunContext = { deps, opts, runner, policyVersion };
  const { turn, withdrawOpen } = createTurn(ctx, createGuards(ctx));

  /** Claims what is due (up to the free slots) and starts a turn for each. */
  async function tick(): Promise<void> {
    for (;;) {
      const free = opts.maxConcurrent - active.size;
      if (free <= 0 || stopping) return;
      const claimed = await store.transaction(async (tx) => {
        const rows = await store.claim(tx, runner, opts.leaseMs, free);
        const entries: AppendInput[] = [];
        const out: ObjectiveRecord[] = [];
        for (const r of rows) {
          const expired = r.deadline !== null && Date.parse(r.deadline) <= Date.now();
          if (r.status === 'running' || expired) {
            out.push(r);
            continue;
          }
          const why = r.status === 'queued' ? 'started' : 'resumed: a request it waits on was decided';
          out.push((await store.update(tx, r.id, { status: 'running' }))!);
          entries.push(transitionEntry(r, r.status, 'running', 'system', why, policyVersion()));
        }
        await journal.appendWithin(tx, entries);
        return out;
      });
      if (claimed.length === 0) return;
      for (const o of claimed) {
        const controller = new AbortController();
        const done = turn(o, controller)
          .catch((err) => void log.error('objective turn crashed', { objective: o.id, error: err }))
          .finally(() => {
            active.delete(o.id);
            kick();
          });
        active.set(o.id, { controller, done });
      }
    }
  }

  function kick(): void {
    if (stopping || !started) return;
    if (ticking) {
      again = true;
      return;
    }
    ticking = tick()
      .catch((err) => void log.error('objective runner tick failed', { error: err }))
      .finally(() => {
        ticking = undefined;
        if (again) {
          again = false;
          kick();
        }
      });
  }

  return {
    runnerId: runner,
    kick,
    withdrawOpen,

    /** Interrupts a run this process is working on (it was cancelled). */
    interrupt(id: string): void {
      active.get(id)?.controller.abort(new Interrupted('cancelled', 'the objective was cancelled'));
    },

    start(): void {
      if (started) return;
      started = true;
      stopping = false;
      timer = setInterval(kick, opts.pollIntervalMs);
      timer.unref();
      kick();
    },

    /** Stops claiming, interrupts running turns (they resume later, here or elsewhere), and waits for them. */
    async stop(): Promise<void> {
      stopping = true;
      started = false;
      if (timer) clearInterval(timer);
      for (const { controller } of active.values()) controller.abort(new Interrupted('stopping', 'the server is stopping'));
      while (ticking) await ticking.catch(() => undefined);
      await Promise.all([...active.values()].map((a) => a.done));
    },

    /** Resolves when no turn runs in this process (tests). */
    async idle(): Promise<void> {
      while (ticking || active.size) {
        await ticking?.catch(() => undefined);
        await Promise.all([...active.values()].map((a) => a.done));
      }
    },

    activeCount: () => active.size,
  };
}

export type ObjectiveRunner = ReturnType<typeof createObjectiveRunner>;
