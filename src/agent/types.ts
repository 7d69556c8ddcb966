/**
 * The contract between an objective's run (src/objectives) and whatever plans it: a playbook
 * (no model) or an LLM agent (src/agent/llm). A planner never touches storage, connectors or
 * credentials: everything it wants done goes through `act`, which is the governed action pipeline.
 */
import type { ToolAnnotations } from '../connectors/types';

/** A tool the planner may use: one connector operation the twin's authority grants, nothing else. */
export interface ToolSpec {
  /** The action name, e.g. `crm.discount.update`. */
  action: string;
  /** Human-readable description (from the operation, or generated from the action name). */
  description: string;
  /** JSON Schema (object) of the operation's input. */
  inputSchema: Record<string, unknown>;
  /** The operation's hints for MCP clients (read-only, destructive, idempotent). */
  annotations?: ToolAnnotations;
}

/** What became of one action request; given back to the model as the tool's result. */
export type ActionOutcome =
  | { kind: 'refused'; reason: string }
  | {
      kind: 'denied' | 'proposed' | 'pending_approval' | 'approved' | 'executing' | 'in_doubt' | 'executed' | 'failed' | 'rejected' | 'expired' | 'cancelled';
      proposalId: string;
      /** The policy's reasons (denied, pending), or the approver's comment (rejected). */
      reasons: string[];
      /** The connector's result, when executed. */
      result?: Record<string, unknown>;
      error?: string;
    };

export interface ActionCall {
  action: string;
  args: Record<string, unknown>;
  rationale: string;
  /**
   * Stable within the run (e.g. the model's tool-call id or the playbook step id): the same key
   * always returns the same proposal, so a resumed run never repeats a side effect.
   */
  key: string;
}

/** Where an agent's proposal came from; stored with the proposal (`context`) and journaled. */
export interface Provenance {
  planner: 'playbook' | 'llm';
  model?: string;
  promptVersion?: string;
  /** SHA-256 of the system prompt the model saw. */
  systemPromptSha256?: string;
  playbook?: string;
}

export interface ObjectiveView {
  id: string;
  text: string;
  playbook: string | null;
  params: Record<string, unknown>;
  constraints: { deadline?: string; stepBudget?: number; spendCeiling?: { amount: string; currency: string } };
}

export interface PlannerContext {
  runId: string;
  objective: ObjectiveView;
  twin: { id: string; authority: string; mode: 'propose' | 'approve' | 'execute' };
  /** Exactly the operations the twin's authority grants and a connector offers. */
  tools: ToolSpec[];
  /**
   * Submit an action request through the governed pipeline (idempotent per `key`). Calls to a
   * tool not in `tools`, or args failing its schema, come back `refused` (and are journaled).
   */
  act(call: ActionCall, provenance: Provenance): Promise<ActionOutcome>;
  /**
   * Record (journal) a refused step that never became an action request: model output that is
   * not a usable tool call (bad JSON in arguments, no tool, text where a call was required).
   */
  refuse(reason: string, detail: Record<string, unknown>): Promise<void>;
  /** The run's durable memory, as last saved (undefined on the first step). */
  state: unknown;
  /** Persist the run's memory (JSON); a run resumed after a restart gets it back as `state`. */
  save(state: unknown): Promise<void>;
  /** Steps (action requests) this run may still make. */
  stepsLeft: number;
  /** Aborted when the objective is cancelled or the server stops. */
  signal: AbortSignal;
  /** Outcomes of this run's earlier proposals that changed since the planner last ran (decisions, executions). */
  updates: Array<{ key: string; outcome: ActionOutcome }>;
}

/**
 * A planner's turn ends in one of these. `waiting` means: resume me when one of my pending
 * proposals is decided (the run goes to waiting_for_approval meanwhile).
 */
export type PlannerResult =
  | { status: 'completed'; summary: string }
  | { status: 'waiting'; summary: string }
  | { status: 'failed'; summary: string };

export interface Planner {
  readonly name: 'playbook' | 'llm';
  run(ctx: PlannerContext): Promise<PlannerResult>;
}
