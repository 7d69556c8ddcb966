/**
 * The LLM run's durable memory, saved through `ctx.save` after every step that matters: the
 * conversation as the model saw it (tokenized, in Regent's own compact form rather than a
 * library's serialization), the durable step counter from which action keys are derived, the
 * tool calls already given keys, pending proposals, and the PII mapping (never sent anywhere).
 */
import { z } from 'zod';
import { RegentError } from '../../errors/errors';
import { AIMessage, HumanMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages';
import { PII_KINDS, type PiiVaultState } from '../pii';
import type { PlannerResult } from '../types';

export const STATE_KIND = 'regent.llm-run';
export const STATE_VERSION = 1;

const ToolCallSchema = z.object({
  /** Regent's id for the call (the model's ids are neither stable nor unique everywhere). */
  id: z.string(),
  name: z.string(),
  args: z.record(z.string(), z.unknown()),
});

const TurnSchema = z.discriminatedUnion('role', [
  z.object({ role: z.literal('user'), content: z.string() }),
  z.object({ role: z.literal('assistant'), content: z.string(), toolCalls: z.array(ToolCallSchema) }),
  z.object({ role: z.literal('tool'), toolCallId: z.string(), name: z.string(), content: z.string() }),
]);
export type Turn = z.infer<typeof TurnSchema>;

/** What Regent decided about one tool call, fixed (and saved) before anything is done with it. */
const CallPlanSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('act'), key: z.string(), step: z.number().int(), action: z.string() }),
  z.object({
    kind: z.literal('refuse'),
    code: z.enum(['unknown_tool', 'invalid_json', 'invalid_arguments', 'unknown_placeholder', 'step_budget_exhausted', 'duplicate_call']),
    message: z.string(),
    action: z.string().optional(),
  }),
]);
export type CallPlan = z.infer<typeof CallPlanSchema>;

const ResultSchema = z.object({ status: z.enum(['completed', 'waiting', 'failed']), summary: z.string() });

export const RunStateSchema = z.object({
  kind: z.literal(STATE_KIND),
  version: z.literal(STATE_VERSION),
  /** Random, per run: marks untrusted-data blocks so data cannot forge their end. */
  nonce: z.string().min(8),
  turns: z.array(TurnSchema),
  /** The durable step counter: action keys are `llm-step-<n>`, n never reused in this run. */
  nextStep: z.number().int().min(1),
  plans: z.record(z.string(), CallPlanSchema),
  /** Keys of this run's action requests and what they were, for reading updates. */
  actions: z.record(z.string(), z.object({ action: z.string(), tool: z.string(), proposalId: z.string().optional(), status: z.string() })),
  /** Keys whose proposals are not final yet (pending approval, approved, executing). */
  outstanding: z.array(z.string()),
  /** Updates already shown to the model (`<key>:<status>`), so a replayed update is not shown twice. */
  seenUpdates: z.array(z.string()),
  /** Whether the model was already told once that a tool call is required. */
  nudged: z.boolean(),
  /** Regent's ids for the model's turns and tool calls. */
  nextTurnId: z.number().int().min(1),
  pii: z.object({
    tokens: z.record(z.string(), z.object({ kind: z.enum(PII_KINDS), value: z.string(), numeric: z.boolean().optional() })),
  }),
  /** The last result, so a finished run answers the same again. */
  finished: ResultSchema.nullable(),
});
export type RunState = z.infer<typeof RunStateSchema>;

export function newRunState(nonce: string, firstMessage: string, pii: PiiVaultState): RunState {
  return {
    kind: STATE_KIND,
    version: STATE_VERSION,
    nonce,
    turns: [{ role: 'user', content: firstMessage }],
    nextStep: 1,
    plans: {},
    actions: {},
    outstanding: [],
    seenUpdates: [],
    nudged: false,
    nextTurnId: 1,
    pii,
    finished: null,
  };
}

/** The saved state, or null when there is none (first step); a state that is not ours is an error. */
export function parseRunState(saved: unknown): RunState | null {
  if (saved === undefined || saved === null) return null;
  const r = RunStateSchema.safeParse(saved);
  if (!r.success) {
    const kind = (saved as { kind?: unknown }).kind;
    const version = (saved as { version?: unknown }).version;
    // Not transient: the run fails (journaled) rather than being retried or started over.
    throw new RegentError(
      'internal',
      kind === STATE_KIND && version !== STATE_VERSION
        ? `saved LLM run state has version ${String(version)}, this Regent reads version ${STATE_VERSION}`
        : `saved run state is not an LLM run's state (${r.error.issues[0]?.path.join('.') || 'root'}: ${r.error.issues[0]?.message})`,
    );
  }
  return r.data;
}

export function finishedResult(state: RunState): PlannerResult | null {
  return state.finished ? { status: state.finished.status, summary: state.finished.summary } : null;
}

// ---------------------------------------------------------------------------------------------
// Turns ⇄ LangChain messages

export function toMessages(turns: Turn[]): BaseMessage[] {
  return turns.map((t, i) => {
    switch (t.role) {
      case 'user':
        return new HumanMessage({ content: t.content, id: `rg-user-${i}` });
      case 'assistant':
        return new AIMessage({
          content: t.content,
          id: `rg-ai-${i}`,
          tool_calls: t.toolCalls.map((c) => ({ id: c.id, name: c.name, args: c.args, type: 'tool_call' as const })),
        });
      case 'tool':
        return new ToolMessage({ content: t.content, tool_call_id: t.toolCallId, name: t.name, id: `rg-tool-${i}` });
    }
  });
}

/** Tool calls of the last assistant turn that have no result yet (a run interrupted mid-batch). */
export function unansweredCalls(turns: Turn[]): { id: string; name: string; args: Record<string, unknown> }[] {
  let lastAssistant = -1;
  for (let i = turns.length - 1; i >= 0; i--) {
    if (turns[i]!.role === 'assistant') {
      lastAssistant = i;
      break;
    }
  }
  if (lastAssistant < 0) return [];
  const turn = turns[lastAssistant] as Extract<Turn, { role: 'assistant' }>;
  const answered = new Set(turns.slice(lastAssistant + 1).flatMap((t) => (t.role === 'tool' ? [t.toolCallId] : [])));
  return turn.toolCalls.filter((c) => !answered.has(c.id));
}
