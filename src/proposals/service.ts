import { createHash, randomUUID } from 'node:crypto';
import type { CallInDoubt, Connector, ConnectorRegistry, ExecutionResult, LookupResult, Operation } from '../connectors/types';
import type { SqlTx } from '../db/sql';
import { ConflictError, InputError, NotFoundError, RegentError, UnavailableError } from '../errors/errors';
import { firstIssue } from '../errors/input';
import { canonicalize } from '../journal/jcs';
import type { JournalService } from '../journal/service';
import type { AppendInput } from '../journal/types';
import type { Logger } from '../log/logger';
import type { PolicyService } from '../policy/service';
import type { Decision, DecisionRequest, Mode } from '../policy/types';
import { createInlineExecutor } from './inline';
import type { NewProposal, ProposalPatch, ProposalStore } from './store';
import {
  CreateProposalSchema,
  ReconcileSchema,
  ReviewSchema,
  TERMINAL,
  TRANSITIONS,
  type ActingTwin,
  type ApprovalState,
  type InDoubt,
  type Proposal,
  type ProposalStatus,
  type Review,
} from './types';

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

const OUTCOME_STATUS = { deny: 'denied', propose: 'proposed', approve: 'pending_approval', execute: 'approved' } as const;

/** SHA-256 of the canonical args: what an approval is bound to. */
export function payloadHash(args: unknown): string {
  return createHash('sha256').update(canonicalize(args)).digest('hex');
}


const subject = (id: string) => `proposal:${id}`;

/** Thrown inside a transaction to roll it back: the idempotency key was already used. */
class Retry extends Error {
  constructor(readonly existing: Proposal) {
    super(`idempotency key already used by proposal ${existing.id}`);
  }
}


/**
 * The governed action pipeline: an action request becomes a proposal, decided by policy,
 * reviewed by people where policy says so, and executed exactly once through its connector.
 * Every state change commits together with its journal entries.
 */
export function createProposalService(deps: ProposalDeps) {
  const { store, journal, policy, twins, log } = deps;
  const opts = { ...DEFAULT_PROPOSAL_OPTIONS, ...deps.options };
  const executor = deps.executorId ?? `executor-${process.pid}-${randomUUID().slice(0, 8)}`;
  let sweepTimer: NodeJS.Timeout | undefined;
  let pollTimer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let looking: Promise<number> | undefined;
  let again = false;
  let stopped = false;

  function transitionEntry(
    p: Proposal,
    to: ProposalStatus,
    actor: string,
    reason: string,
    extra: Record<string, unknown> = {},
  ): AppendInput {
    return {
      kind: 'proposal.transitioned',
      actor,
      subject: subject(p.id),
      data: { twin: p.twin, action: p.action, from: p.status, to, reason, ...extra },
      policyVersion: p.policyVersion,
    };
  }

  /** Inserts a new proposal; a used idempotency key rolls the whole transaction back (Retry). */
  async function insertOrRetry(tx: SqlTx, p: NewProposal & { id: string }): Promise<Proposal> {
    const r = await store.insert(p, tx);
    if (!r.created) throw new Retry(r.proposal);
    return r.proposal;
  }

  const inline = createInlineExecutor({
    store,
    policy,
    journal,
    log,
    twins: (ids, tx) => twins.getManyForAction(ids, tx),
    executes: (d) => OUTCOME_STATUS[d.outcome] === 'approved',
  });

  function assertTransition(p: Proposal, to: ProposalStatus): void {
    if (!TRANSITIONS[p.status].includes(to)) {
      throw new ConflictError(`proposal ${p.id} is ${p.status}; it cannot become ${to}`, { status: p.status });
    }
  }

  function resolve(action: string): { connector: Connector; operation: Operation } | undefined {
    return deps.connectors().resolve(action);
  }

  function decisionEntry(id: string, twin: string, actor: string, request: DecisionRequest, d: Decision): AppendInput {
    return {
      kind: 'policy.decided',
      actor,
      subject: subject(id),
      data: {
        twin,
        request: { ...request, at: typeof request.at === 'string' ? request.at : request.at.toISOString() },
        outcome: d.outcome,
        reasons: d.reasons.map((r) => ({ code: r.code, message: r.message, source: r.source })),
        authority: d.authority,
        approval: d.approval && { approvers: d.approval.approvers, quorum: d.approval.quorum, expiresAt: d.approval.expiresAt },
      },
      policyVersion: d.policyVersion,
    };
  }

  /** The entry of a proposal's creation, `to` its first status. */
  function createdEntry(p: Proposal, to: ProposalStatus, d: Decision): AppendInput {
    return {
      ...transitionEntry(
        { ...p, status: 'proposed' },
        to,
        `twin:${p.twin}`,
        d.reasons.find((x) => x.code !== 'granted' && x.code !== 'approval_tier')?.message ?? d.outcome,
      ),
      data: {
        twin: p.twin,
        action: p.action,
        from: null,
        to,
        rationale: p.rationale,
        ...(p.context ? { context: p.context } : {}),
      },
    };
  }

  function approvalState(d: Decision): ApprovalState | null {
    if (!d.approval) return null;
    return {
      approvers: d.approval.approvers,
      quorum: d.approval.quorum,
      expiresAt: d.approval.expiresAt,
      escalateTo: d.approval.escalateTo ?? [],
      approvedBy: [],
      escalated: false,
    };
  }

  /** The status, expiry and audit flag a fresh decision leads to. */
  function placement(d: Decision, twinMode: Mode, now: number): Pick<NewProposal, 'status' | 'approval' | 'expiresAt' | 'audit'> {
    const status = OUTCOME_STATUS[d.outcome];
    const approval = approvalState(d);
    const expiresAt =
      status === 'pending_approval'
        ? approval!.expiresAt
        : status === 'approved'
          ? new Date(now + opts.executionWindowMs).toISOString()
          : null;
    // Execute mode runs first and is looked at afterwards: queue it for post-hoc audit.
    const audit = status === 'approved' && twinMode === 'execute' ? 'pending' : null;
    return { status, approval, expiresAt, audit };
  }

  function request(
    twin: { id: string; authority: string; mode: Mode },
    action: string,
    attributes: Record<string, unknown>,
  ): DecisionRequest {
    return {
      principal: `twin:${twin.id}`,
      action,
      resource: attributes,
      at: new Date().toISOString(),
      twinMode: twin.mode,
      authority: twin.authority,
    };
  }

  function kick(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = executeDue().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        kick();
      }
    });
    running.catch((err) => log.error('executor tick failed', { error: err }));
  }

  /** Claims due work and runs it through its connector, one proposal at a time per claim batch. */
  async function executeDue(limit = 20): Promise<number> {
    let done = 0;
    for (;;) {
      // Without its liveness lock, this process's claims look dead to others: claim nothing.
      if (deps.alive && !deps.alive()) return done;
      // The claim and its journal entries commit together.
      const claimed = await store.transaction(async (tx) => {
        const rows = await store.claim(tx, executor, opts.leaseMs, limit);
        await journal.appendWithin(
          tx,
          rows.map((p) =>
            transitionEntry(
              { ...p, status: p.attempts > 1 ? 'executing' : 'approved' },
              'executing',
              'system',
              p.attempts > 1 ? `attempt ${p.attempts}` : 'claimed for execution',
              { executor, attempt: p.attempts },
            ),
          ),
        );
        return rows;
      });
      if (claimed.length === 0) return done;
      await Promise.all(claimed.map((p) => runOne(p)));
      done += claimed.length;
    }
  }

  async function runOne(p: Proposal): Promise<void> {
    const ref = subject(p.id);
    // The kill switch may have been engaged between the claim and now: check once more.
    if (await twins.isHalted(p.twin)) {
      await finishWith(p, { status: 'approved', nextAttemptAt: null }, async () => undefined, 'kill switch engaged; waiting');
      return;
    }
    const resolved = resolve(p.action);
    let outcome: ExecutionResult;
    const startedAt = new Date().toISOString();
    if (!resolved) outcome = { ok: false, error: `no connector offers ${p.action} any more`, retryable: false };
    else {
      try {
        // The proposal id is the idempotency key: a retry or a takeover never makes a second effect.
        outcome = await resolved.connector.execute(p.action, p.args, p.id, { executor });
      } catch (err) {
        outcome = { ok: false, error: `connector failed: ${(err as Error).message}`, retryable: true, maybeSent: true };
      }
    }
    if (outcome.ok) {
      const finished = await finishWith(
        p,
        { status: 'executed', result: outcome.result, error: null },
        async (tx) => {
          await policy.commit(ref, tx);
        },
        'executed',
      );
      if (finished) log.info('proposal executed', { proposal: p.id, action: p.action, twin: p.twin });
      else await settleLate(p, outcome);
      return;
    }
    const retry = outcome.retryable && p.attempts < opts.maxAttempts;
    if (retry) {
      const delay = opts.retryBaseMs * 2 ** (p.attempts - 1) * (0.5 + Math.random());
      await finishWith(
        p,
        { status: 'approved', error: outcome.error, nextAttemptAt: new Date(Date.now() + delay).toISOString() },
        async () => undefined,
        `will retry: ${outcome.error}`,
      );
      setTimeout(kick, delay + 10).unref();
      return;
    }
    // Retries of an idempotent call ran out, the last one sent and unanswered: it may have acted.
    const doubt: CallInDoubt | undefined =
      outcome.inDoubt ??
      (outcome.maybeSent ? { sentAt: startedAt, sentBy: executor, lastHeard: outcome.error, checkIn: `${resolved?.connector.id ?? 'the system'} for idempotency key ${p.id}` } : undefined);
    if (doubt) {
      await goInDoubt(p, doubt, outcome.error, resolved?.connector);
      return;
    }
    const finished = await finishWith(
      p,
      { status: 'failed', error: outcome.error },
      async (tx) => {
        await policy.release(ref, tx);
      },
      outcome.error,
    );
    if (!finished) await settleLate(p, outcome);
  }

  /**
   * The call's outcome is unknown: the proposal goes in doubt, its amount stays reserved, and
   * the connector's own status lookup (where it has one) is asked at once.
   */
  async function goInDoubt(p: Proposal, doubt: CallInDoubt, error: string, connector: Connector | undefined): Promise<void> {
    const inDoubt: InDoubt = {
      since: new Date().toISOString(),
      sentAt: doubt.sentAt,
      executor: doubt.sentBy,
      connector: connector?.id ?? null,
      checkIn: doubt.checkIn,
      lastHeard: doubt.lastHeard,
      error,
    };
    // The sweep asks the connector again only after the interval: it is asked once right here.
    const nextAttemptAt = new Date(Date.now() + opts.lookupIntervalMs).toISOString();
    const updated = await finishWith(p, { status: 'in_doubt', error, inDoubt, nextAttemptAt }, async () => undefined, `outcome unknown: ${error}`, { inDoubt });
    if (!updated) return;
    log.warn('proposal in doubt', { proposal: p.id, action: p.action, twin: p.twin, connector: inDoubt.connector });
    deps.onPending?.(updated, 'in_doubt');
    if (connector?.lookup && connector.canLookup?.(p.action)) await lookUp(updated, connector);
  }

  /**
   * This executor's claim was taken over while its call ran (its lease lapsed, or its liveness
   * lock was lost). If the taker put the proposal in doubt, what this executor heard settles it.
   */
  async function settleLate(p: Proposal, outcome: ExecutionResult): Promise<void> {
    if (!outcome.ok && (outcome.inDoubt || outcome.retryable || outcome.maybeSent)) return; // nothing more is known
    const now = await store.get(p.id).catch(() => undefined);
    if (now?.status !== 'in_doubt') return;
    const evidence = outcome.ok
      ? `the executor that sent the call (${executor}) received its answer after its claim was taken over`
      : `the executor that sent the call (${executor}) was told it was refused: ${outcome.error}`;
    await settle(p.id, 'system', outcome.ok ? 'executed' : 'not_executed', evidence, outcome.ok ? outcome.result : null).catch((err) =>
      log.warn('could not settle an in-doubt proposal from its late answer', { proposal: p.id, error: err }),
    );
  }

  /** Asks the connector whether an in-doubt call took effect; settles it when the answer does. */
  async function lookUp(p: Proposal, connector: Connector): Promise<LookupResult | undefined> {
    let answer: LookupResult | undefined;
    try {
      answer = await connector.lookup!(p.action, p.args, p.id);
    } catch (err) {
      answer = { outcome: 'unknown', error: (err as Error).message };
    }
    if (!answer) return undefined;
    if (answer.outcome === 'unknown') {
      log.info('in-doubt status lookup settled nothing', { proposal: p.id, connector: connector.id, error: answer.error });
      return answer;
    }
    await settle(p.id, 'system', answer.outcome, answer.evidence, answer.outcome === 'executed' ? answer.result : null).catch((err) => {
      if (!(err instanceof ConflictError)) throw err; // settled meanwhile by a person: theirs stands
    });
    return answer;
  }

  /**
   * Settles an in-doubt proposal: executed commits its reservation, not executed releases it.
   * Once only; journaled with who settled it and on what evidence.
   */
  async function settle(
    id: string,
    by: string,
    outcome: 'executed' | 'not_executed',
    evidence: string,
    result: Record<string, unknown> | null,
  ): Promise<Proposal> {
    const settled = await store.transaction(async (tx) => {
      const p = await store.lock(tx, id);
      if (!p) throw new NotFoundError(`proposal ${id} does not exist`);
      if (p.reconciliation)
        throw new ConflictError(`proposal ${id} was already reconciled by ${p.reconciliation.by} (${p.reconciliation.outcome})`, { status: p.status });
      if (p.status !== 'in_doubt') throw new ConflictError(`proposal ${id} is ${p.status}; only a proposal in doubt can be reconciled`, { status: p.status });
      const reconciliation = { outcome, evidence, by, at: new Date().toISOString() };
      const to = outcome === 'executed' ? 'executed' : 'failed';
      assertTransition(p, to);
      const updated = await store.update(tx, id, {
        status: to,
        reconciliation,
        ...(outcome === 'executed' ? { result: result ?? { reconciled: true }, error: null } : { error: `not executed (reconciled by ${by}): ${evidence}` }),
      });
      if (outcome === 'executed') await policy.commit(subject(id), tx);
      else await policy.release(subject(id), tx);
      await journal.appendWithin(tx, [
        {
          kind: 'proposal.reconciled',
          actor: by,
          subject: subject(id),
          data: { twin: p.twin, action: p.action, outcome, evidence, inDoubt: p.inDoubt },
          policyVersion: p.policyVersion,
        },
        transitionEntry(p, to, by, `reconciled: ${outcome === 'executed' ? 'it took effect' : 'it did not take effect'}`),
      ]);
      return updated;
    });
    log.info('in-doubt proposal reconciled', { proposal: id, outcome, by: by === 'system' ? 'system' : 'person' });
    deps.onSettled?.(settled);
    return settled;
  }

  /** Records an execution's end if this executor still holds the claim, with its journal entry. */
  async function finishWith(
    p: Proposal,
    patch: ProposalPatch,
    extra: (tx: SqlTx) => Promise<void>,
    reason: string,
    data: Record<string, unknown> = {},
  ): Promise<Proposal | undefined> {
    return store
      .transaction(async (tx) => {
        // Only while this executor still holds the claim: if it lapsed, another executor took the
        // work over and its result is the one that counts.
        const updated = await store.updateClaimed(tx, p.id, executor, { ...patch, claimedBy: null, claimedUntil: null });
        if (!updated) return undefined;
        await extra(tx);
        await journal.appendWithin(tx, [
          transitionEntry(
            { ...p, status: 'executing' },
            patch.status!,
            'system',
            reason,
            { ...(patch.status === 'executed' ? { result: patch.result } : { error: patch.error ?? null }), ...data },
          ),
        ]);
        return updated;
      })
      .then((updated) => {
        if (updated) deps.onSettled?.(updated);
        return updated;
      });
  }

  /** Whether `reviewer` may approve, reject or edit `p` (separation of duties lives here). */
  function eligibility(p: Proposal, reviewer: Reviewer, owner: string, attributes: Record<string, unknown>): string | null {
    const approval = p.approval;
    if (!approval) return 'this proposal does not wait for approval';
    const me = `user:${reviewer.id}`;
    const named = [...approval.approvers, ...(approval.escalated ? approval.escalateTo : [])];
    const matches = named.some((a) => a === me || (a.startsWith('role:') && reviewer.roles.includes(a.slice(5))));
    if (!matches) return `approval needs one of ${named.join(', ')}`;
    // The twin's owner approves their own twin's request only where the tier names them.
    if (owner === me && !named.includes(me)) return `${me} owns this twin and is not named by the approval tier`;
    // Where an authority delegates to the approver, the amount must be within their own limits.
    const bundle = policy.bundle();
    if (bundle.byDelegate.has(me)) {
      const own = policy.decide({ principal: me, action: p.action, resource: attributes, at: new Date().toISOString() });
      const over = own.reasons.find((r) =>
        ['over_per_action', 'over_period', 'no_grant', 'forbidden', 'not_valid', 'revoked', 'currency_mismatch'].includes(r.code),
      );
      if (own.outcome === 'deny' || over) return `beyond ${me}'s own authority: ${over?.message ?? own.reasons[0]?.message ?? 'denied'}`;
    }
    return null;
  }

  function attributesOf(action: string, args: Record<string, unknown>): Record<string, unknown> {
    const r = resolve(action);
    return r ? r.operation.attributes(args) : {};
  }

  return {
    executorId: executor,

    /** A twin's action request (POST /v1/proposals). The same idempotency key returns the same proposal. */
    async create(
      twinId: string,
      body: unknown,
      opts: { context?: Record<string, unknown> } = {},
    ): Promise<{ proposal: Proposal; created: boolean }> {
      const parsed = CreateProposalSchema.safeParse(body);
      if (!parsed.success) {
        const message = firstIssue(parsed.error, '');
        await journal.append({
          kind: 'proposal.refused',
          actor: `twin:${twinId}`,
          data: {
            reason: message,
            action: typeof (body as { action?: unknown })?.action === 'string' ? (body as { action: string }).action : null,
          },
        });
        throw new InputError(message);
      }
      const input = parsed.data;
      const resolved = resolve(input.action);
      let args = input.args;
      if (resolved) {
        const valid = resolved.operation.input.safeParse(input.args);
        if (!valid.success) {
          const message = firstIssue(valid.error, `args of ${input.action}: `);
          await journal.append({
            kind: 'proposal.refused',
            actor: `twin:${twinId}`,
            data: { reason: message, action: input.action, idempotencyKey: input.idempotencyKey },
          });
          throw new InputError(message);
        }
        args = valid.data;
      }
      const argsHash = payloadHash(args);
      const asRetry = (existing: Proposal) => {
        if (existing.action !== input.action || existing.argsHash !== argsHash) {
          throw new ConflictError(`idempotency key ${input.idempotencyKey} was already used for a different request (proposal ${existing.id})`);
        }
        return { proposal: existing, created: false };
      };
      // Execute mode with a connector whose system lives in this database: decided, booked,
      // applied and recorded in one transaction, batched with other such requests (inline.ts),
      // which read the twin too. Anything unusual on the way leaves the request to the ordinary
      // path: recorded, then executed.
      let result: { proposal: Proposal; created: boolean } | undefined;
      try {
        if (resolved && inline.supports(resolved.connector)) result = await executeWithDecision(resolved.connector);
        if (!result) {
          const twin = await twins.getForAction(twinId);
          if (!twin) throw new NotFoundError(`twin ${twinId} does not exist`);
          result = await record(twin);
        }
      } catch (err) {
        if (err instanceof Retry) return asRetry(err.existing);
        if (err instanceof NotFoundError) throw err;
        if (err instanceof RegentError) {
          await journal
            .append({
              kind: 'proposal.refused',
              actor: `twin:${twinId}`,
              data: { reason: err.message, action: input.action, idempotencyKey: input.idempotencyKey },
            })
            .catch(() => undefined);
          throw err;
        }
        throw new UnavailableError(`the action request could not be recorded: ${(err as Error).message}`);
      }
      if (result.proposal.status === 'approved') kick();
      if (result.proposal.status === 'pending_approval') deps.onPending?.(result.proposal, 'pending');
      if (result.proposal.status === 'executed') {
        log.info('proposal executed', { proposal: result.proposal.id, action: result.proposal.action, twin: twinId, inline: true });
        deps.onSettled?.(result.proposal);
      }
      return result;

      async function record(twin: ActingTwin): Promise<{ proposal: Proposal; created: boolean }> {
        const id = randomUUID();
        const req = request(twin, input.action, resolved ? resolved.operation.attributes(args) : {});
        return store.transaction(async (tx) => {
          // An action no connector offers can never run, whatever a document says: decide it
          // without reserving anything, then deny it.
          const { decision } = resolved ? await policy.decideAndReserve(req, subject(id), tx) : { decision: policy.decide(req) };
          const d: Decision = resolved
            ? decision
            : {
                ...decision,
                outcome: 'deny',
                approval: null,
                reservations: [],
                reasons: [
                  { code: 'no_grant', message: `no connector offers ${input.action}`, source: 'connectors' },
                  ...decision.reasons.filter((r) => r.code !== 'granted'),
                ],
              };
          const place = placement(d, twin!.mode, Date.now());
          const r = await insertOrRetry(tx, { id, twin: twin!.id, action: input.action, args, argsHash, rationale: input.rationale, idempotencyKey: input.idempotencyKey, decision: d, context: opts.context ?? null, ...place });
          await journal.appendWithin(tx, [decisionEntry(id, twin!.id, `twin:${twin!.id}`, req, d), createdEntry(r, place.status, d)]);
          return { proposal: r, created: true };
        });
      }

      async function executeWithDecision(connector: Connector): Promise<{ proposal: Proposal; created: boolean } | undefined> {
        const id = randomUUID();
        const attributes = resolved!.operation.attributes(args);
        const o = await inline.submit({
          id,
          twin: twinId,
          idempotencyKey: input.idempotencyKey,
          connector,
          action: input.action,
          args,
          request: (twin) => (twin.mode === 'execute' && !twin.halted ? request(twin, input.action, attributes) : undefined),
          record: (twin, req, d, result) => ({
            row: {
              id,
              twin: twin.id,
              action: input.action,
              args,
              argsHash,
              rationale: input.rationale,
              idempotencyKey: input.idempotencyKey,
              decision: d,
              context: opts.context ?? null,
              ...placement(d, twin.mode, Date.now()),
              status: 'executed',
              result,
              attempts: 1,
            },
            entries: (p) => [
              decisionEntry(id, p.twin, `twin:${p.twin}`, req, d),
              createdEntry(p, 'approved', d),
              transitionEntry({ ...p, status: 'approved' }, 'executing', 'system', 'executed with its decision (in-database connector)', { executor, attempt: 1 }),
              transitionEntry({ ...p, status: 'executing' }, 'executed', 'system', 'executed', { result }),
            ],
          }),
        });
        if (o.kind === 'taken') throw new Retry(o.existing);
        return o.kind === 'executed' ? { proposal: o.proposal, created: true } : undefined;
      }
    },

    async get(id: string): Promise<Proposal> {
      const p = await store.get(id);
      if (!p) throw new NotFoundError(`proposal ${id} does not exist`);
      return p;
    },

    list: (q: Parameters<ProposalStore['list']>[0]) => store.list(q),

    reviews: (id: string): Promise<Review[]> => store.reviews(id),

    /** The connector's preview of the effect, shown to approvers (no side effects). */
    async preview(p: Proposal): Promise<{ summary: string; details: Record<string, unknown> } | null> {
      const registry = deps.connectors();
      const r = registry.resolve(p.action);
      if (!r) return null;
      try {
        return await r.connector.simulate(p.action, p.args);
      } catch (err) {
        return { summary: `preview unavailable: ${(err as Error).message}`, details: {} };
      }
    },

    /** approve | reject | edit | comment by a person. */
    async review(id: string, reviewer: Reviewer, body: unknown): Promise<Proposal> {
      const parsed = ReviewSchema.safeParse(body);
      if (!parsed.success) throw new InputError(firstIssue(parsed.error, ''));
      const input = parsed.data;
      const me = `user:${reviewer.id}`;
      const before = await store.get(id);
      if (!before) throw new NotFoundError(`proposal ${id} does not exist`);
      const twin = await twins.get(before.twin);
      if (!twin) throw new NotFoundError(`twin ${before.twin} does not exist`);
      const outcome = await store.transaction(async (tx) => {
        const p = await store.lock(tx, id);
        if (!p) throw new NotFoundError(`proposal ${id} does not exist`);
        if (input.decision === 'comment') {
          await store.addReview(tx, {
            proposalId: p.id,
            actor: me,
            decision: 'comment',
            comment: input.comment!,
            args: null,
            argsHash: p.argsHash,
            policyVersion: p.policyVersion,
          });
          await journal.appendWithin(tx, [
            {
              kind: 'proposal.reviewed',
              actor: me,
              subject: subject(p.id),
              data: { decision: 'comment', comment: input.comment! },
              policyVersion: p.policyVersion,
            },
          ]);
          return { proposal: p, kick: false, pending: false };
        }
        if (p.status !== 'pending_approval')
          throw new ConflictError(
            `proposal ${p.id} is ${p.status}; only a pending approval can be ${input.decision === 'edit' ? 'edited' : input.decision + 'd'}`,
            { status: p.status },
          );
        if (p.expiresAt && Date.parse(p.expiresAt) <= Date.now())
          throw new ConflictError(`proposal ${p.id} expired at ${p.expiresAt}`, { status: 'expired' });
        let current: Proposal = p;
        const entries: AppendInput[] = [];
        // An approval counts only under the policy version in force: decide again if it changed.
        if (policy.version() !== p.policyVersion || input.decision === 'edit') {
          let args = p.args;
          if (input.decision === 'edit') {
            const resolved = resolve(p.action);
            const valid = resolved ? resolved.operation.input.safeParse(input.args) : undefined;
            if (valid && !valid.success) throw new InputError(firstIssue(valid.error, `args of ${p.action}: `));
            args = (valid?.data ?? input.args) as Record<string, unknown>;
          }
          const req = request(twin, p.action, attributesOf(p.action, args));
          const { decision } = await policy.decideAndReserve(req, subject(p.id), tx);
          const place = placement(decision, twin.mode, Date.now());
          const changedArgs = input.decision === 'edit';
          const patch: ProposalPatch = {
            decision,
            policyVersion: decision.policyVersion,
            status: place.status,
            approval: place.approval,
            expiresAt: place.expiresAt,
            audit: place.audit,
          };
          if (changedArgs) Object.assign(patch, { args, argsHash: payloadHash(args) });
          current = await store.update(tx, p.id, patch);
          entries.push(decisionEntry(p.id, p.twin, changedArgs ? me : 'system', req, decision));
          if (changedArgs) {
            await store.addReview(tx, {
              proposalId: p.id,
              actor: me,
              decision: 'edit',
              comment: input.comment ?? null,
              args,
              argsHash: current.argsHash,
              policyVersion: current.policyVersion,
            });
            entries.push({
              kind: 'proposal.reviewed',
              actor: me,
              subject: subject(p.id),
              data: { decision: 'edit', comment: input.comment ?? null, argsHash: current.argsHash, previousArgsHash: p.argsHash },
              policyVersion: current.policyVersion,
            });
          }
          entries.push(
            transitionEntry(
              p,
              current.status,
              changedArgs ? me : 'system',
              changedArgs ? 'edited; decided again' : 'policy changed; decided again',
            ),
          );
          if (changedArgs || current.status !== 'pending_approval') {
            await journal.appendWithin(tx, entries);
            return { proposal: current, kick: current.status === 'approved', pending: current.status === 'pending_approval' };
          }
        }
        const refusal = eligibility(current, reviewer, twin.owner, attributesOf(current.action, current.args));
        if (refusal) throw new RegentError('forbidden', refusal);
        if (input.decision === 'reject') {
          assertTransition(current, 'rejected');
          await store.addReview(tx, {
            proposalId: p.id,
            actor: me,
            decision: 'reject',
            comment: input.comment!,
            args: null,
            argsHash: current.argsHash,
            policyVersion: current.policyVersion,
          });
          const updated = await store.update(tx, p.id, { status: 'rejected', error: `rejected by ${me}: ${input.comment}` });
          await policy.release(subject(p.id), tx);
          entries.push({
            kind: 'proposal.reviewed',
            actor: me,
            subject: subject(p.id),
            data: { decision: 'reject', comment: input.comment },
            policyVersion: current.policyVersion,
          });
          entries.push(transitionEntry(current, 'rejected', me, input.comment!));
          await journal.appendWithin(tx, entries);
          return { proposal: updated, kick: false, pending: false };
        }
        // approve
        const approval = current.approval!;
        if (approval.approvedBy.includes(me))
          throw new ConflictError(`${me} already approved proposal ${p.id}; quorum counts distinct people`);
        await store.addReview(tx, {
          proposalId: p.id,
          actor: me,
          decision: 'approve',
          comment: input.comment ?? null,
          args: null,
          argsHash: current.argsHash,
          policyVersion: current.policyVersion,
        });
        const approvedBy = [...approval.approvedBy, me];
        const reached = approvedBy.length >= approval.quorum;
        entries.push({
          kind: 'proposal.reviewed',
          actor: me,
          subject: subject(p.id),
          data: {
            decision: 'approve',
            comment: input.comment ?? null,
            argsHash: current.argsHash,
            approvals: approvedBy.length,
            quorum: approval.quorum,
          },
          policyVersion: current.policyVersion,
        });
        let updated: Proposal;
        if (reached) {
          assertTransition(current, 'approved');
          await policy.reserveApproved(current.decision, subject(p.id), tx);
          updated = await store.update(tx, p.id, {
            status: 'approved',
            approval: { ...approval, approvedBy },
            expiresAt: new Date(Date.now() + opts.executionWindowMs).toISOString(),
          });
          entries.push(transitionEntry(current, 'approved', me, `quorum ${approval.quorum} reached: ${approvedBy.join(', ')}`));
        } else {
          updated = await store.update(tx, p.id, { approval: { ...approval, approvedBy } });
        }
        await journal.appendWithin(tx, entries);
        return { proposal: updated, kick: reached, pending: false };
      });
      if (outcome.kick) kick();
      if (outcome.pending) deps.onPending?.(outcome.proposal, 'pending');
      return outcome.proposal;
    },

    /** Withdraws a proposal that has not run (the twin's owner, an admin, or the twin itself). */
    async cancel(id: string, actor: string, reason: string): Promise<Proposal> {
      return store.transaction(async (tx) => {
        const p = await store.lock(tx, id);
        if (!p) throw new NotFoundError(`proposal ${id} does not exist`);
        assertTransition(p, 'cancelled');
        const updated = await store.update(tx, id, { status: 'cancelled', error: `cancelled by ${actor}: ${reason}` });
        await policy.release(subject(id), tx);
        await journal.appendWithin(tx, [transitionEntry(p, 'cancelled', actor, reason)]);
        return updated;
      });
    },

    /**
     * A person settles an in-doubt proposal (POST /v1/proposals/:id/reconcile): the twin's owner
     * or an admin, as the caller checked; never a twin.
     */
    async reconcile(id: string, actor: string, body: unknown): Promise<Proposal> {
      if (!actor.startsWith('user:')) throw new RegentError('forbidden', `${actor} may not reconcile: only the twin's owner or an admin settles an action in doubt`);
      const parsed = ReconcileSchema.safeParse(body);
      if (!parsed.success) throw new InputError(firstIssue(parsed.error, ''));
      return settle(id, actor, parsed.data.outcome, parsed.data.evidence, null);
    },

    /**
     * Asks connectors with a status lookup about in-doubt calls due for another look; returns
     * how many were settled.
     */
    async lookupDue(limit = 20): Promise<number> {
      const due = await store.dueForLookup(opts.lookupIntervalMs, limit);
      let settled = 0;
      for (const p of due) {
        const connector = resolve(p.action)?.connector;
        if (!connector?.lookup || !connector.canLookup?.(p.action)) continue;
        const answer = await lookUp(p, connector).catch((err) => {
          log.warn('in-doubt status lookup failed', { proposal: p.id, error: err });
          return undefined;
        });
        if (answer && answer.outcome !== 'unknown') settled++;
      }
      return settled;
    },

    /** Post-hoc audit of an action executed in execute mode: passed or flagged. */
    async audit(id: string, actor: string, verdict: 'passed' | 'flagged', comment?: string): Promise<Proposal> {
      return store.transaction(async (tx) => {
        const p = await store.lock(tx, id);
        if (!p) throw new NotFoundError(`proposal ${id} does not exist`);
        if (p.audit === null) throw new ConflictError(`proposal ${id} is not queued for post-hoc audit`);
        if (p.audit !== 'pending') throw new ConflictError(`proposal ${id} was already audited (${p.audit})`);
        const updated = await store.update(tx, id, { audit: verdict });
        await journal.appendWithin(tx, [
          {
            kind: 'proposal.audited',
            actor,
            subject: subject(id),
            data: { verdict, comment: comment ?? null, status: p.status },
            policyVersion: p.policyVersion,
          },
        ]);
        return updated;
      });
    },

    /**
     * Expires pending approvals and approved work whose time ran out; a pending approval with an
     * escalation target is escalated once (another window, the target added) before it expires.
     */
    async sweep(): Promise<number> {
      const escalated: Proposal[] = [];
      const n = await store.transaction(async (tx) => {
        const due = await store.lockExpired(tx, 100);
        const entries: AppendInput[] = [];
        for (const p of due) {
          const a = p.approval;
          if (p.status === 'pending_approval' && a && a.escalateTo.length > 0 && !a.escalated) {
            const window = Math.max(Date.parse(a.expiresAt) - Date.parse(p.createdAt), 60_000);
            const expiresAt = new Date(Date.now() + window).toISOString();
            escalated.push(await store.update(tx, p.id, { approval: { ...a, escalated: true, expiresAt }, expiresAt }));
            entries.push({
              kind: 'proposal.escalated',
              actor: 'system',
              subject: subject(p.id),
              data: { to: a.escalateTo, expiresAt },
              policyVersion: p.policyVersion,
            });
            continue;
          }
          await store.update(tx, p.id, { status: 'expired', error: `expired at ${p.expiresAt}` });
          await policy.release(subject(p.id), tx);
          entries.push(
            transitionEntry(p, 'expired', 'system', `no ${p.status === 'approved' ? 'execution' : 'decision'} before ${p.expiresAt}`),
          );
        }
        await journal.appendWithin(tx, entries);
        return due.length;
      });
      for (const p of escalated) deps.onPending?.(p, 'escalated');
      return n;
    },

    executeDue,
    kick,

    /** Resolves once no execution started by kick() is running. */
    async idle(): Promise<void> {
      while (running) await running.catch(() => undefined);
    },

    pendingCount: () => store.pendingCount(),

    /** Requests executed with their decision: transactions run and requests carried. */
    inlineStats: () => inline.stats(),

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
      stopped = true;
      if (sweepTimer) clearInterval(sweepTimer);
      if (pollTimer) clearInterval(pollTimer);
      while (running) await running.catch(() => undefined);
      if (looking) await looking;
    },

    isTerminal: (p: Proposal) => TERMINAL.has(p.status),
  };
}

export type ProposalService = ReturnType<typeof createProposalService>;
