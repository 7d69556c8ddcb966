/**
 * One turn of one claimed run: the lease heartbeat, the planner's context and its plan, and
 * recording where the run now stands (finished, waiting, released for a retry, or failed).
 */
import type { Planner, PlannerContext, PlannerResult } from '../agent/types';
import { RegentError } from '../errors/errors';
import type { AppendInput } from '../journal/contract';
import { AWAITING_STATUSES, OPEN_STATUSES, type ProposalStatus } from '../proposals/types';
import type { RunGuards } from './guards';
import { Interrupted, subject, transitionEntry, type RunContext } from './run-context';
import { toolsFor } from './tools';
import { objectiveView, type ObjectiveRecord, type ObjectiveStatus, type ObjectiveStep } from './types';

const MAX_STATE_BYTES = 1_000_000;

/** Journal data stays readable: long values are cut, and the whole is bounded. */
function bounded(value: unknown, max = 4000): unknown {
  const text = JSON.stringify(value) ?? 'null';
  return text.length <= max ? value : { truncated: true, preview: text.slice(0, max) };
}

/** A turn of a claimed run, and the withdrawal of a run's open proposals (on failure or cancellation). */
export function createTurn(ctx: RunContext, guards: RunGuards) {
  const { deps, opts, runner, policyVersion } = ctx;
  const { store, journal, proposals, log } = deps;
  const { act, outcomeFor } = guards;

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

  async function journalOnly(entry: AppendInput): Promise<void> {
    await store.transaction((tx) => journal.appendWithin(tx, [entry]));
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

  return { turn, withdrawOpen };
}
