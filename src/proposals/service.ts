import { randomUUID } from 'node:crypto';
import type { ConnectorRegistry } from '../connectors/types';
import type { SqlTx } from '../db/sql';
import { NotFoundError } from '../errors/errors';
import type { JournalService } from '../journal/service';
import type { Logger } from '../log/logger';
import type { PolicyService } from '../policy/service';
import type { Mode } from '../policy/types';
import { createContext } from './context';
import { createExecutor } from './executor';
import { createIntake } from './intake';
import { createReview } from './review';
import type { ProposalStore } from './store';
import { createSweeper } from './sweeper';
import { TERMINAL, type ActingTwin, type Proposal, type Review } from './types';

/** What the proposal service needs to know about twins (the twins capability provides it). */
export interface TwinPort {
  get(id: string): Promise<{ id: string; owner: string; authority: string; mode: Mode; killed: boolean } | undefined>;
  isHalted(id: string): Promise<boolean>;
  /** The twin with `halted` (a kill switch is engaged for it), in one read. */
  getForAction(id: string): Promise<ActingTwin | undefined>;
  /** getForAction for several twins, inside the caller's transaction. */
  getManyForAction(ids: readonly string[], tx: SqlTx): Promise<ReadonlyMap<string, ActingTwin>>;
}

/** A person deciding on a proposal. Twins never review. */
export interface Reviewer {
  id: string;
  roles: readonly string[];
}

export interface ProposalOptions {
  /** How long approved work may wait to execute (kill switch, retries) before it expires. */
  executionWindowMs: number;
  /** How long an executor holds a claim before another may take the work over. */
  leaseMs: number;
  maxAttempts: number;
  retryBaseMs: number;
  /** Sweep (expiry, escalation) and executor poll intervals. */
  sweepIntervalMs: number;
  pollIntervalMs: number;
  /** How often an in-doubt call is looked up again where its connector can be asked. */
  lookupIntervalMs: number;
}

export const DEFAULT_PROPOSAL_OPTIONS: ProposalOptions = {
  executionWindowMs: 24 * 3600_000,
  leaseMs: 30_000,
  maxAttempts: 5,
  retryBaseMs: 500,
  sweepIntervalMs: 1000,
  pollIntervalMs: 250,
  lookupIntervalMs: 30_000,
};

export interface ProposalDeps {
  store: ProposalStore;
  journal: Pick<JournalService, 'appendWithin' | 'append'>;
  policy: Pick<PolicyService, 'bundle' | 'version' | 'decide' | 'decideAndReserve' | 'bookInOrder' | 'reserveApproved' | 'release' | 'commit'>;
  connectors: () => ConnectorRegistry;
  twins: TwinPort;
  log: Logger;
  executorId?: string;
  options?: Partial<ProposalOptions>;
  /**
   * Called after a proposal reaches pending_approval, is escalated, or goes in doubt (a person
   * must settle it): webhook notifications.
   */
  onPending?: (p: Proposal, why: 'pending' | 'escalated' | 'in_doubt') => void;
  /**
   * Whether this process may claim work now: false while its liveness lock is lost (others may
   * be taking its claims over). Absent: always.
   */
  alive?: () => boolean;
  /** Called after an execution ended (executed, failed, or back to approved for a retry). */
  onSettled?: (p: Proposal) => void;
}

export { payloadHash } from './context';

/**
 * The governed action pipeline: an action request becomes a proposal, decided by policy,
 * reviewed by people where policy says so, and executed exactly once through its connector.
 * Every state change commits together with its journal entries.
 */
export function createProposalService(deps: ProposalDeps) {
  const { store, log } = deps;
  const opts = { ...DEFAULT_PROPOSAL_OPTIONS, ...deps.options };
  const executor = deps.executorId ?? `executor-${process.pid}-${randomUUID().slice(0, 8)}`;
  let sweepTimer: NodeJS.Timeout | undefined;
  let pollTimer: NodeJS.Timeout | undefined;
  let looking: Promise<number> | undefined;

  const ctx = createContext(deps, opts, executor);
  const exec = createExecutor(ctx);
  const intake = createIntake(ctx, exec.kick);
  const people = createReview(ctx, exec);
  const { sweep } = createSweeper(ctx);
  const { kick } = exec;

  return {
    executorId: executor,

    /** A twin's action request (POST /v1/proposals). The same idempotency key returns the same proposal. */
    create: intake.create,

    async get(id: string): Promise<Proposal> {
      const p = await store.get(id);
      if (!p) throw new NotFoundError(`proposal ${id} does not exist`);
      return p;
    },

    /** The proposal a twin made with this idempotency key, if any. */
    byIdempotencyKey: (twin: string, key: string): Promise<Proposal | undefined> => store.byIdempotencyKey(twin, key),

    list: (q: Parameters<ProposalStore['list']>[0]) => store.list(q),

    reviews: (id: string): Promise<Review[]> => store.reviews(id),

    /** The connector's preview of the effect, shown to approvers (no side effects). */
    preview: people.preview,

    /** approve | reject | edit | comment by a person. */
    review: people.review,

    /** Withdraws a proposal that has not run (the twin's owner, an admin, or the twin itself). */
    cancel: people.cancel,

    /**
     * A person settles an in-doubt proposal (POST /v1/proposals/:id/reconcile): the twin's owner
     * or an admin, as the caller checked; never a twin.
     */
    reconcile: people.reconcile,

    /**
     * Asks connectors with a status lookup about in-doubt calls due for another look; returns
     * how many were settled.
     */
    lookupDue: exec.lookupDue,

    /** Post-hoc audit of an action executed in execute mode: passed or flagged. */
    audit: people.audit,

    /**
     * Expires pending approvals and approved work whose time ran out; a pending approval with an
     * escalation target is escalated once (another window, the target added) before it expires.
     */
    sweep,

    executeDue: exec.executeDue,
    kick,

    /** Resolves once no execution started by kick() is running. */
    idle: exec.idle,

    pendingCount: () => store.pendingCount(),

    /** Requests executed with their decision: transactions run and requests carried. */
    inlineStats: intake.inlineStats,

    start(): void {
      sweepTimer = setInterval(() => {
        void this.sweep().catch((err) => log.error('proposal sweep failed', { error: err }));
        if (!looking)
          looking = this.lookupDue()
            .catch((err) => {
              log.error('in-doubt lookups failed', { error: err });
              return 0;
            })
            .finally(() => {
              looking = undefined;
            });
      }, opts.sweepIntervalMs);
      pollTimer = setInterval(kick, opts.pollIntervalMs);
      sweepTimer.unref();
      pollTimer.unref();
      kick();
    },

    async stop(): Promise<void> {
      exec.halt();
      if (sweepTimer) clearInterval(sweepTimer);
      if (pollTimer) clearInterval(pollTimer);
      await exec.idle();
      if (looking) await looking;
    },

    isTerminal: (p: Proposal) => TERMINAL.has(p.status),
  };
}

export type ProposalService = ReturnType<typeof createProposalService>;
