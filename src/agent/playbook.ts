/**
 * The planner that needs no model: it walks a playbook's steps in order, turning each into an
 * action request with args rendered from the objective's parameters and earlier steps' outcomes.
 *
 * It is replayable by construction: every turn starts again from the first step and asks `act`
 * with the step id as key, which returns the existing proposal's current outcome for a step
 * already submitted (no second request, no second effect). So a run resumed after an approval,
 * a rejection or a restart simply continues where the outcomes say it stands.
 */
import { z } from 'zod';
import { RegentError } from '../errors/errors';
import type { Playbook, PlaybookStep } from '../objectives/playbooks';
import { matches, render, renderText, type Scope } from '../objectives/template';
import { OPEN_STATUSES } from '../proposals/types';
import type { ActionOutcome, Planner, PlannerContext, PlannerResult, Provenance } from './types';

/** The run's memory (below): which steps were skipped (their condition is not evaluated again) and what each became. */
export const PLAYBOOK_STATE_VERSION = 1;
type StepStatus = ActionOutcome['kind'] | 'skipped';

const OPEN: ReadonlySet<string> = OPEN_STATUSES;
const DONE: ReadonlySet<string> = new Set(['proposed', 'executed']);

/** How each step status reads in the summary: one entry for every outcome `act` returns, and skipped. */
const STATUS_TEXT: Record<StepStatus, string> = {
  proposed: 'proposed (recorded for a person to act on)',
  pending_approval: 'waiting for approval',
  approved: 'approved, about to execute',
  executing: 'executing',
  in_doubt: 'in doubt (the outcome is unknown until a person settles it)',
  executed: 'executed',
  failed: 'failed',
  denied: 'denied by policy',
  rejected: 'rejected',
  expired: 'expired',
  cancelled: 'cancelled',
  refused: 'refused',
  skipped: 'skipped (condition not met)',
};

const PlaybookStateSchema = z.object({
  v: z.literal(PLAYBOOK_STATE_VERSION),
  steps: z.record(
    z.string(),
    z.object({ status: z.enum(Object.keys(STATUS_TEXT) as [StepStatus, ...StepStatus[]]), proposalId: z.string().optional() }),
  ),
});
type PlaybookState = z.infer<typeof PlaybookStateSchema>;

/**
 * The saved state, or a fresh one on the first turn. A state that cannot be read fails the run
 * (journaled with the objective) rather than starting over: a fresh state would evaluate the
 * skipped steps' conditions again, and could take steps the run had decided against.
 */
export function readPlaybookState(state: unknown): PlaybookState {
  if (state === undefined || state === null) return { v: PLAYBOOK_STATE_VERSION, steps: {} };
  const r = PlaybookStateSchema.safeParse(state);
  if (r.success) return r.data;
  const v = (state as { v?: unknown }).v;
  const issue = r.error.issues[0];
  throw new RegentError(
    'internal',
    typeof v === 'number' && v !== PLAYBOOK_STATE_VERSION
      ? `the saved playbook run state has version ${v}, this Regent reads version ${PLAYBOOK_STATE_VERSION}; the run is failed rather than started over`
      : `the saved playbook run state cannot be read (${issue?.path.join('.') || 'root'}: ${issue?.message}); the run is failed rather than started over`,
  );
}

function describe(step: PlaybookStep, outcome: ActionOutcome | { kind: 'skipped' }): string {
  const name = step.title ?? step.id;
  let text = `${name} (${step.action}): ${STATUS_TEXT[outcome.kind]}`;
  if (outcome.kind === 'refused') text += ` — ${outcome.reason}`;
  else if (outcome.kind !== 'skipped') {
    const why = [...outcome.reasons, ...(outcome.error && !outcome.reasons.length ? [outcome.error] : [])];
    if (why.length && !DONE.has(outcome.kind)) text += ` — ${why.join('; ')}`;
    if (outcome.kind === 'executed' && typeof outcome.result?.summary === 'string') text += ` — ${outcome.result.summary}`;
  }
  return text;
}

function stepScope(outcome: ActionOutcome): Record<string, unknown> {
  if (outcome.kind === 'refused') return { status: 'refused', reasons: [outcome.reason], error: outcome.reason };
  return {
    status: outcome.kind,
    proposalId: outcome.proposalId,
    reasons: outcome.reasons,
    ...(outcome.result ? { result: outcome.result } : {}),
    ...(outcome.error ? { error: outcome.error } : {}),
  };
}

export function createPlaybookPlanner(playbook: Playbook): Planner {
  const provenance: Provenance = { planner: 'playbook', playbook: playbook.id };
  return {
    name: 'playbook',
    async run(ctx: PlannerContext): Promise<PlannerResult> {
      const state = readPlaybookState(ctx.state);
      const scope: Scope & { steps: Record<string, unknown> } = {
        params: ctx.objective.params,
        objective: { id: ctx.objective.id, text: ctx.objective.text },
        steps: {},
      };
      const lines: string[] = [];
      const summary = (last: string) => `Playbook "${playbook.title}": ${[...lines, last].filter(Boolean).join('; ')}`;
      let changed = false;
      for (const step of playbook.doc.steps) {
        if (ctx.signal.aborted) throw ctx.signal.reason ?? new Error('the run was stopped');
        const before = state.steps[step.id];
        if (before?.status === 'skipped' || (!before && !matches(step.when, scope))) {
          scope.steps[step.id] = { status: 'skipped' };
          if (!before) {
            state.steps[step.id] = { status: 'skipped' };
            changed = true;
          }
          lines.push(describe(step, { kind: 'skipped' }));
          continue;
        }
        const args = render(step.args, scope) as Record<string, unknown>;
        const rationale = renderText(step.rationale, scope);
        const outcome = await ctx.act({ action: step.action, args, rationale, key: step.id }, provenance);
        scope.steps[step.id] = stepScope(outcome);
        const record = { status: outcome.kind, ...(outcome.kind !== 'refused' ? { proposalId: outcome.proposalId } : {}) };
        if (before?.status !== record.status) {
          state.steps[step.id] = record;
          changed = true;
        }
        const line = describe(step, outcome);
        if (OPEN.has(outcome.kind) && step.await === 'settled') {
          if (changed) await ctx.save(state);
          return { status: 'waiting', summary: summary(line) };
        }
        if (!OPEN.has(outcome.kind) && !DONE.has(outcome.kind) && step.onFailure === 'stop') {
          if (changed) await ctx.save(state);
          return { status: 'failed', summary: summary(`${line}; stopped there`) };
        }
        lines.push(line);
      }
      if (changed) await ctx.save(state);
      return { status: 'completed', summary: summary('') };
    },
  };
}
