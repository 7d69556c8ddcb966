/**
 * The planner only plans. Everything it wants done goes through `act`, which checks the tool was
 * offered and the args fit its schema, enforces the step budget, the spend ceiling, the deadline
 * and the twin's rate limit, and submits an action request to the governed pipeline with the
 * idempotency key `<objective>:<key>`: a resumed run asking again gets the same proposal back,
 * never a second one. Every refusal is journaled; every state change commits with its entries.
 */
import type { ActionCall, ActionOutcome, Provenance, ToolSpec } from '../agent/types';
import type { SqlTx } from '../db/sql';
import { RegentError } from '../errors/errors';
import { firstIssue } from '../errors/input';
import { formatAmount, parseAmount } from '../policy/amount';
import { payloadHash } from '../proposals/service';
import { SPENDING_STATUSES, WITHDRAWABLE, type Proposal, type ProposalStatus } from '../proposals/types';
import { outcomeOf, refused } from './outcome';
import { Interrupted, subject, type RunContext } from './run-context';
import type { TwinInfo } from './runner';
import type { ObjectiveRecord } from './types';

/** The twin made too many requests this minute: the step waits until the window has room. */
class RateLimited extends Error {
  constructor(readonly retryAt: number) {
    super('rate limited');
  }
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

/** The checks and the submission behind a planner's `act`, and what a proposal tells the planner. */
export function createGuards(ctx: RunContext) {
  const { deps, opts, runner, policyVersion } = ctx;
  const { store, journal, proposals, log } = deps;

  async function outcomeFor(p: Proposal): Promise<ActionOutcome> {
    const needsReviews = p.status === 'rejected' || p.approval !== null;
    return outcomeOf(p, needsReviews ? await proposals.reviews(p.id) : []);
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

  return { act, outcomeFor };
}

export type RunGuards = ReturnType<typeof createGuards>;
