/**
 * The run engine: a worker in every Regent process that claims due objective runs (FOR UPDATE
 * SKIP LOCKED plus a lease, so any number of processes can share the work), gives each one's
 * planner a PlannerContext, and records what came of it.
 *
 * The planner only plans. Everything it wants done goes through `act`, which checks the tool was
 * offered and the args fit its schema, enforces the step budget, the spend ceiling, the deadline
 * and the twin's rate limit, and submits an action request to the governed pipeline with the
 * idempotency key `<objective>:<key>`: a resumed run asking again gets the same proposal back,
 * never a second one. Every refusal is journaled; every state change commits with its entries.
 */
import { randomUUID } from 'node:crypto';
import type { ActionCall, ActionOutcome, Planner, PlannerContext, PlannerResult, Provenance, ToolSpec } from '../agent/types';
import type { ConnectorRegistry } from '../connectors/types';
import type { SqlTx } from '../db/sql';
import { RegentError } from '../errors/errors';
import { firstIssue } from '../errors/input';
import type { JournalService } from '../journal/service';
import type { AppendInput } from '../journal/contract';
import type { Logger } from '../log/logger';
import { formatAmount, parseAmount } from '../policy/amount';
import type { PolicyService } from '../policy/service';
import type { Mode } from '../policy/types';
import { payloadHash, type ProposalService } from '../proposals/service';
import { AWAITING_STATUSES, OPEN_STATUSES, SPENDING_STATUSES, WITHDRAWABLE, type Proposal, type ProposalStatus } from '../proposals/types';
import { outcomeOf, refused } from './outcome';
import type { ObjectiveStore } from './store';
import { toolsFor } from './tools';
import { objectiveView, type ObjectiveRecord, type ObjectiveStatus, type ObjectiveStep } from './types';

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

/** Why a turn was interrupted: the objective was cancelled, the process stops, or another runner took over. */
class Interrupted extends Error {
  constructor(
    readonly why: 'cancelled' | 'stopping' | 'lost',
    message: string,
  ) {
    super(message);
    this.name = 'Interrupted';
  }
}

/** The twin made too many requests this minute: the step waits until the window has room. */
class RateLimited extends Error {
  constructor(readonly retryAt: number) {
    super('rate limited');
  }
}

const MAX_STATE_BYTES = 1_000_000;
const subject = (id: string) => `objective:${id}`;

function transitionEntry(o: { id: string; twin: string }, from: ObjectiveStatus, to: ObjectiveStatus, actor: string, reason: string, policyVersion: string | null): AppendInput<'objective.transitioned'> {
  return { kind: 'objective.transitioned', actor, subject: subject(o.id), data: { twin: o.twin, from, to, reason }, policyVersion };
}

/** Why a planner's call is not a usable action request, or null. */
function callProblem(call: unknown): string | null {
  if (!call || typeof call !== 'object') return 'an action request must be an object with action, args, rationale and key';
  const c = call as Record<string, unknown>;
  if (typeof c.key !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,159}$/.test(c.key)) return 'key must be 1-160 letters, digits, ".", "_", ":", "@" or "-"';
  if (typeof c.action !== 'string' || c.action.length === 0 || c.action.length > 200) return 'action must name a tool';
  if (!c.args || typeof c.args !== 'object' || Array.isArray(c.args)) return 'args must be an object';
  if (typeof c.rationale !== 'string') return 'rationale must be text';
  return null;
}


/**
 * What the journal keeps of a refused request's args: their hash (to match them against the
 * proposal or the model's log) and their names, never the values, which may hold personal data
 * the append-only journal could never forget.
 */
function argsTrace(args: unknown): { argsHash: string | null; argNames: string[] } {
  if (!args || typeof args !== 'object' || Array.isArray(args)) return { argsHash: null, argNames: [] };
  return { argsHash: payloadHash(args), argNames: Object.keys(args).slice(0, 50).map((k) => k.slice(0, 100)) };
}

/** Journal data stays readable: long values are cut, and the whole is bounded. */
function bounded(value: unknown, max = 4000): unknown {
  const text = JSON.stringify(value) ?? 'null';
  return text.length <= max ? value : { truncated: true, preview: text.slice(0, max) };
}

export function createObjectiveRunner(deps: RunnerDeps) {
  const { store, journal, proposals, log } = deps;
  const opts = { ...DEFAULT_RUNNER_OPTIONS, ...deps.options };
  const runner = deps.runnerId ?? `runner-${process.pid}-${randomUUID().slice(0, 8)}`;
  const active = new Map<string, { controller: AbortController; done: Promise<void> }>();
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | undefined;
  let again = false;
  let stopping = false;
  let started = false;

  const policyVersion = () => deps.policy.version();

  async function withdrawOpen(o: { id: string }, actor: string, reason: string, statuses: ReadonlySet<ProposalStatus>): Promise<void> {
    for (const s of await store.steps(o.id)) {
      if (!s.proposalId) continue;
      try {
        const p = await proposals.get(s.proposalId);
        if (statuses.has(p.status)) await proposals.cancel(p.id, actor, reason);
      } catch (err) {
        // Raced with an approval or an execution: what already happened stands.
        if (!(err instanceof RegentError && err.code === 'conflict')) log.error('could not withdraw a proposal of an objective', { objective: o.id, proposal: s.proposalId, error: err });
      }
    }
  }

  /** One turn of one claimed run: plan, act, and record where the run now stands. */
  async function turn(o: ObjectiveRecord, controller: AbortController): Promise<void> {
    const reported = new Map<string, ProposalStatus>();
    const heartbeat = setInterval(() => {
      void store
        .renew(runner, o.id, opts.leaseMs)
        .then((status) => {
          if (status === undefined) controller.abort(new Interrupted('lost', 'another runner took this run over'));
          else if (status === 'cancelled') controller.abort(new Interrupted('cancelled', 'the objective was cancelled'));
        })
        .catch((err) => log.warn('could not renew an objective lease', { objective: o.id, error: err }));
    }, Math.max(opts.leaseMs / 3, 50));
    heartbeat.unref();
    try {
      let result: PlannerResult;
      if (o.deadline && Date.parse(o.deadline) <= Date.now()) {
        result = { status: 'failed', summary: `${o.summary ? `${o.summary}; ` : ''}the deadline ${o.deadline} passed` };
      } else {
        const planner = deps.plannerFor(o);
        if (typeof planner === 'string') result = { status: 'failed', summary: planner };
        else result = await plan(o, planner, controller, reported);
      }
      await finish(o, result, reported);
    } catch (err) {
      const reason = controller.signal.aborted ? controller.signal.reason : err;
      if (reason instanceof Interrupted) {
        if (reason.why === 'stopping') await release(o, reported, 0).catch((e) => log.error('could not release an objective run', { objective: o.id, error: e }));
        log.info('objective run interrupted', { objective: o.id, why: reason.why });
        return;
      }
      await retryOrFail(o, err as Error, reported);
    } finally {
      clearInterval(heartbeat);
    }
  }

  async function plan(o: ObjectiveRecord, planner: Planner, controller: AbortController, reported: Map<string, ProposalStatus>): Promise<PlannerResult> {
    const twin = await deps.twins.get(o.twin);
    const bundle = deps.policy.bundle();
    const offered = toolsFor(bundle, deps.connectors(), twin.authority);
    const tools = new Map(offered.tools.map((t) => [t.action, t]));
    const authorityCurrency = bundle.authorities.get(twin.authority)?.currency ?? null;
    const steps = await store.steps(o.id);

    // Outcomes that changed since the planner last heard of them (decisions, executions).
    const updates: PlannerContext['updates'] = [];
    for (const s of steps) {
      if (!s.proposalId) continue;
      const p = await proposals.get(s.proposalId);
      if (p.status !== s.proposalStatus) {
        updates.push({ key: s.key, outcome: await outcomeFor(p) });
        reported.set(s.key, p.status);
      }
    }

    const ctx: PlannerContext = {
      runId: o.id,
      objective: objectiveView(o),
      twin: { id: twin.id, authority: twin.authority, mode: twin.mode },
      tools: [...tools.values()],
      act: (call, provenance) => act(o, twin, tools, authorityCurrency, call, provenance ?? { planner: planner.name }, controller, reported),
      refuse: async (reason, detail) => {
        await journalOnly({
          kind: 'agent.refused',
          actor: `twin:${o.twin}`,
          subject: subject(o.id),
          data: { objective: o.id, planner: planner.name, reason: String(reason).slice(0, 2000), detail: bounded(detail) },
          policyVersion: policyVersion(),
        });
        log.warn('agent step refused', { objective: o.id, twin: o.twin, reason: String(reason).slice(0, 300) });
      },
      state: o.plannerState ?? undefined,
      save: async (state) => {
        const text = JSON.stringify(state ?? null);
        if (Buffer.byteLength(text) > MAX_STATE_BYTES) throw new RegentError('bad_input', `the planner's state is larger than ${MAX_STATE_BYTES} bytes`);
        const saved = await store.transaction((tx) => store.update(tx, o.id, { plannerState: JSON.parse(text) }, runner));
        if (!saved) {
          const status = await store.status(o.id);
          const why = status === 'cancelled' ? new Interrupted('cancelled', 'the objective was cancelled') : new Interrupted('lost', 'another runner took this run over');
          controller.abort(why);
          throw why;
        }
      },
      stepsLeft: Math.max(o.stepBudget - o.stepsUsed, 0),
      signal: controller.signal,
      updates,
    };
    if (offered.unavailable) log.warn('twin has no tools', { objective: o.id, twin: o.twin, why: offered.unavailable });
    const result = await planner.run(ctx);
    if (controller.signal.aborted) throw controller.signal.reason;
    if (!result || !['completed', 'waiting', 'failed'].includes(result.status) || typeof result.summary !== 'string') {
      return { status: 'failed', summary: `the ${planner.name} planner ended its turn without a usable result` };
    }
    return { status: result.status, summary: result.summary.slice(0, 8000) };
  }

  async function outcomeFor(p: Proposal): Promise<ActionOutcome> {
    const needsReviews = p.status === 'rejected' || p.approval !== null;
    return outcomeOf(p, needsReviews ? await proposals.reviews(p.id) : []);
  }

  async function journalOnly(entry: AppendInput): Promise<void> {
    await store.transaction((tx) => journal.appendWithin(tx, [entry]));
  }

  function interrupted(controller: AbortController): never {
    throw controller.signal.reason ?? new Interrupted('stopping', 'the run was stopped');
  }

  /** The governed way for a planner to do anything: see the module comment. */
  async function act(
    o: ObjectiveRecord,
    twin: TwinInfo,
    tools: Map<string, ToolSpec>,
    authorityCurrency: string | null,
    call: ActionCall,
    provenance: Provenance,
    controller: AbortController,
    reported: Map<string, ProposalStatus>,
  ): Promise<ActionOutcome> {
    if (controller.signal.aborted) interrupted(controller);
    const actor = `twin:${twin.id}`;
    /** A refusal before anything is recorded: the request is not even a well-formed call. */
    const refuse = async (reason: string): Promise<ActionOutcome> => {
      await store.transaction((tx) => refusalWithin(tx, o, actor, call, provenance, reason, null));
      log.warn('agent action refused', { objective: o.id, twin: twin.id, reason });
      return refused(reason);
    };

    const problem = callProblem(call);
    if (problem) return refuse(problem);
    const argsHash = payloadHash(call.args);
    const existing = await store.step(o.id, call.key);
    if (existing) {
      if (existing.action !== call.action || existing.argsHash !== argsHash)
        return refuse(`key ${call.key} was already used in this run for a different request (${existing.action})`);
      if (existing.proposalId) {
        const p = await proposals.get(existing.proposalId);
        reported.set(existing.key, p.status);
        return outcomeFor(p);
      }
      if (existing.outcome) return existing.outcome;
      // Recorded but never submitted (the process stopped in between): submit it now.
      return submit(o, twin, call, provenance, controller, reported);
    }

    // Validated before anything is written: a refusal never leaves half a step behind.
    const tool = tools.get(call.action);
    const resolved = tool ? deps.connectors().resolve(call.action) : undefined;
    let invalid: string | null = null;
    let amountMinor: bigint | null = null;
    let currency: string | null = null;
    if (!tool || !resolved) {
      invalid = `${call.action} is not a tool this twin was offered (its authority ${twin.authority} does not grant it, or no connector offers it); offered: ${[...tools.keys()].join(', ') || 'none'}`;
    } else {
      const parsed = resolved.operation.input.safeParse(call.args);
      if (!parsed.success) invalid = `args of ${call.action} do not fit its schema: ${firstIssue(parsed.error)}`;
      else {
        const attrs = resolved.operation.attributes(parsed.data);
        if (typeof attrs.amount === 'string') {
          currency = typeof attrs.currency === 'string' ? attrs.currency : authorityCurrency;
          const amount = currency ? parseAmount(attrs.amount, currency) : undefined;
          if (amount?.ok) amountMinor = amount.minor;
          else currency = null;
        }
        const ceiling = o.constraints.spendCeiling;
        if (ceiling && typeof attrs.amount === 'string') {
          if (currency !== ceiling.currency)
            invalid = `${call.action} carries an amount in ${currency ?? 'an unknown currency'}, but this objective's spend ceiling is in ${ceiling.currency}; amounts are never converted`;
        }
      }
    }
    if (!call.rationale.trim() && !invalid) invalid = 'rationale must say why (approvers read it)';

    const deadline = o.deadline;
    for (;;) {
      try {
        const decided = await store.transaction(async (tx): Promise<ActionOutcome | 'submit' | 'repeat'> => {
          const now = await store.lock(tx, o.id);
          if (!now || now.status === 'cancelled') throw new Interrupted('cancelled', 'the objective was cancelled');
          if (now.claimedBy !== runner || now.status !== 'running') throw new Interrupted('lost', 'another runner took this run over');
          const reason = (text: string) => refusalWithin(tx, o, actor, call, provenance, text, null);
          if (now.stepsUsed >= now.stepBudget) return reason(`step budget of ${now.stepBudget} action requests is used up`);
          if (deadline && Date.parse(deadline) <= Date.now()) return reason(`the objective's deadline ${deadline} passed`);
          if (invalid) return refusalWithin(tx, o, actor, call, provenance, invalid, { key: call.key, action: call.action, argsHash });
          const ceiling = o.constraints.spendCeiling;
          if (ceiling && amountMinor !== null) {
            const limit = parseAmount(ceiling.amount, ceiling.currency);
            const spent = (await store.steps(o.id, tx))
              .filter((s) => s.amountMinor !== null && s.currency === ceiling.currency && SPENDING_STATUSES.has(s.proposalStatus ?? s.outcome?.kind ?? 'pending_approval'))
              .reduce((sum, s) => sum + s.amountMinor!, 0n);
            if (limit.ok && spent + amountMinor > limit.minor) {
              return refusalWithin(
                tx,
                o,
                actor,
                call,
                provenance,
                `${call.action} for ${formatAmount(amountMinor, ceiling.currency)} would bring this objective's requests to ${formatAmount(spent + amountMinor, ceiling.currency)}, above its spend ceiling of ${formatAmount(limit.minor, ceiling.currency)}`,
                { key: call.key, action: call.action, argsHash },
              );
            }
          }
          const rate = await store.lockRate(tx, twin.id);
          if (rate.count >= opts.ratePerMinute) throw new RateLimited((rate.oldest ? Date.parse(rate.oldest) : Date.now()) + 60_000);
          const inserted = await store.insertStep(tx, { objectiveId: o.id, key: call.key, twin: twin.id, action: call.action, argsHash, outcome: null, amountMinor, currency });
          // Asked twice at once with the same key: the other call recorded it; answer as a repeat.
          return inserted ? 'submit' : 'repeat';
        });
        if (decided === 'repeat') return act(o, twin, tools, authorityCurrency, call, provenance, controller, reported);
        if (decided !== 'submit') {
          log.warn('agent action refused', { objective: o.id, twin: twin.id, action: call.action, reason: decided.kind === 'refused' ? decided.reason : decided.kind });
          return decided;
        }
        break;
      } catch (err) {
        if (err instanceof Interrupted) {
          controller.abort(err);
          throw err;
        }
        if (!(err instanceof RateLimited)) throw err;
        const wait = Math.max(err.retryAt - Date.now(), 50);
        log.info('twin rate limit reached; the step waits', { objective: o.id, twin: twin.id, limitPerMinute: opts.ratePerMinute, waitMs: wait });
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(wait, 5000));
          controller.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
        });
        if (controller.signal.aborted) interrupted(controller);
      }
    }
    return submit(o, twin, call, provenance, controller, reported);
  }

  /** A refusal decided inside the step transaction (budget, deadline, invalid request, ceiling). */
  async function refusalWithin(
    tx: SqlTx,
    o: ObjectiveRecord,
    actor: string,
    call: ActionCall,
    provenance: Provenance,
    reason: string,
    record: { key: string; action: string; argsHash: string } | null,
  ): Promise<ActionOutcome> {
    const outcome = refused(reason);
    if (record) await store.insertStep(tx, { objectiveId: o.id, twin: o.twin, ...record, outcome, amountMinor: null, currency: null });
    await journal.appendWithin(tx, [
      {
        kind: 'agent.refused',
        actor,
        subject: subject(o.id),
        data: {
          objective: o.id,
          planner: provenance?.planner ?? null,
          key: typeof call?.key === 'string' ? call.key.slice(0, 200) : null,
          action: typeof call?.action === 'string' ? call.action.slice(0, 200) : null,
          reason,
          ...argsTrace(call?.args),
        },
        policyVersion: policyVersion(),
      },
    ]);
    return outcome;
  }

  /** Submits a recorded step to the pipeline and records the proposal it became. */
  async function submit(
    o: ObjectiveRecord,
    twin: TwinInfo,
    call: ActionCall,
    provenance: Provenance,
    controller: AbortController,
    reported: Map<string, ProposalStatus>,
  ): Promise<ActionOutcome> {
    const context = {
      objective: o.id,
      run: o.id,
      step: call.key,
      planner: provenance.planner,
      ...(provenance.model ? { model: provenance.model } : {}),
      ...(provenance.promptVersion ? { promptVersion: provenance.promptVersion } : {}),
      ...(provenance.systemPromptSha256 ? { systemPromptSha256: provenance.systemPromptSha256 } : {}),
      ...(provenance.playbook ? { playbook: provenance.playbook } : {}),
      policyVersion: policyVersion(),
    };
    let proposal: Proposal;
    try {
      ({ proposal } = await proposals.create(
        twin.id,
        { action: call.action, args: call.args, rationale: call.rationale.trim().slice(0, 4000), idempotencyKey: `${o.id}:${call.key}` },
        { context },
      ));
    } catch (err) {
      if (err instanceof RegentError && (err.code === 'bad_input' || err.code === 'conflict')) {
        // The pipeline refused it (and journaled proposal.refused): the step ends refused.
        const outcome = refused(err.message);
        await store.transaction(async (tx) => {
          await store.updateStep(tx, o.id, call.key, { outcome });
          await journal.appendWithin(tx, [
            {
              kind: 'agent.refused',
              actor: `twin:${twin.id}`,
              subject: subject(o.id),
              data: { objective: o.id, planner: provenance.planner, key: call.key, action: call.action, reason: err.message, ...argsTrace(call.args) },
              policyVersion: policyVersion(),
            },
          ]);
        });
        return outcome;
      }
      throw err;
    }
    const outcome = await outcomeFor(proposal);
    await store.transaction(async (tx) => {
      await store.updateStep(tx, o.id, call.key, { proposalId: proposal.id, outcome });
      await journal.appendWithin(tx, [
        {
          kind: 'objective.step',
          actor: `twin:${twin.id}`,
          subject: subject(o.id),
          data: { twin: twin.id, key: call.key, action: call.action, proposal: proposal.id, status: proposal.status, ...context },
          policyVersion: proposal.policyVersion,
        },
      ]);
    });
    reported.set(call.key, proposal.status);
    log.info('objective step submitted', { objective: o.id, twin: twin.id, key: call.key, action: call.action, proposal: proposal.id, status: proposal.status });
    // Cancelled while the request was on its way: it must not act for an objective that is over.
    if ((await store.status(o.id)) === 'cancelled') {
      if (WITHDRAWABLE.has(proposal.status)) await proposals.cancel(proposal.id, 'system', `objective ${o.id} was cancelled`).catch(() => undefined);
      controller.abort(new Interrupted('cancelled', 'the objective was cancelled'));
      interrupted(controller);
    }
    return outcome;
  }

  /** Records where a turn left the run: its status, summary, and the outcomes the planner has seen. */
  async function finish(o: ObjectiveRecord, result: PlannerResult, reported: Map<string, ProposalStatus>): Promise<void> {
    const steps = await store.steps(o.id);
    const current = (s: ObjectiveStep) => reported.get(s.key) ?? s.proposalStatus;
    let to: ObjectiveStatus;
    let summary = result.summary;
    if (result.status === 'completed') to = 'completed';
    else if (result.status === 'failed') to = 'failed';
    else if (steps.some((s) => current(s) === 'pending_approval' || current(s) === 'in_doubt')) to = 'waiting_for_approval';
    else if (steps.some((s) => OPEN_STATUSES.has(current(s) as ProposalStatus))) to = 'running';
    else {
      to = 'failed';
      summary = `${summary}; the planner asked to wait, but none of its requests awaits a decision or an execution`;
    }
    const from = o.status;
    const finished = to === 'completed' || to === 'failed';
    const updated = await store.transaction(async (tx) => {
      const row = await store.update(
        tx,
        o.id,
        { status: to, summary, claimedBy: null, claimedUntil: null, nextRunAt: null, failures: 0, finished },
        runner,
      );
      if (!row) return undefined;
      for (const [key, status] of reported) await store.updateStep(tx, o.id, key, { proposalStatus: status });
      if (from !== to) await journal.appendWithin(tx, [transitionEntry(o, from, to, 'system', summary.slice(0, 2000), policyVersion())]);
      return row;
    });
    if (!updated) return;
    log.info('objective run turn ended', { objective: o.id, twin: o.twin, status: to });
    if (to === 'failed') await withdrawOpen(o, 'system', `objective ${o.id} failed`, AWAITING_STATUSES);
  }

  /** Gives a run back without a status change (stopping, or a retry after a transient failure). */
  async function release(o: ObjectiveRecord, reported: Map<string, ProposalStatus>, delayMs: number, failures?: number): Promise<void> {
    await store.transaction(async (tx) => {
      const row = await store.update(
        tx,
        o.id,
        { claimedBy: null, claimedUntil: null, nextRunAt: new Date(Date.now() + delayMs).toISOString(), ...(failures !== undefined ? { failures } : {}) },
        runner,
      );
      if (row) for (const [key, status] of reported) await store.updateStep(tx, o.id, key, { proposalStatus: status });
    });
  }

  async function retryOrFail(o: ObjectiveRecord, err: Error, reported: Map<string, ProposalStatus>): Promise<void> {
    const transient = !(err instanceof RegentError) || err.code === 'unavailable';
    const failures = o.failures + 1;
    if (transient && failures < opts.maxFailures) {
      const delay = opts.retryBaseMs * 2 ** (failures - 1);
      log.warn('objective run failed; will retry', { objective: o.id, attempt: failures, retryInMs: delay, error: err });
      await release(o, reported, delay, failures).catch((e) => log.error('could not release an objective run', { objective: o.id, error: e }));
      return;
    }
    log.error('objective run failed', { objective: o.id, error: err });
    const summary = transient ? `gave up after ${failures} attempts: ${err.message}` : err.message;
    await finish(o, { status: 'failed', summary }, reported).catch((e) => log.error('could not record a failed objective run', { objective: o.id, error: e }));
  }

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
