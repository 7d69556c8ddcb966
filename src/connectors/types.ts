import type { SqlTx } from '../db/sql';
import type { z } from 'zod';

/**
 * A least-privilege adapter: named operations only (no generic shell, fetch or SQL). A
 * connector is an adapter instance with its own credentials, which nothing outside it ever sees:
 * not the journal, not logs, not API responses, not a twin or a model.
 */

/** The risk attributes the policy sees for an action, e.g. amount, counterparty, dataClass. */
export type RiskAttributes = Record<string, unknown>;

export interface Operation {
  /** The action name the policy decides on, e.g. `crm.discount.update`. */
  readonly action: string;
  /** Validates and normalizes the input (args of the action request). */
  readonly input: z.ZodType<Record<string, unknown>>;
  /** JSON Schema of the input, for tools offered to a model and the API docs. */
  readonly inputJsonSchema: Record<string, unknown>;
  /** Safe to retry after an uncertain outcome (the connector retries only these). */
  readonly idempotent: boolean;
  readonly description?: string;
  /** Hints for MCP clients and models, declared per operation in the connector YAML (operationAnnotations fills the defaults). */
  readonly annotations: ToolAnnotations;
  /** The attributes the policy sees, computed from a validated input. */
  attributes(input: Record<string, unknown>): RiskAttributes;
  /**
   * Why the operation cannot be called right now (an MCP server not reached yet, an upstream tool
   * that changed and waits for an admin), or undefined when it can. Such an operation is offered
   * to no twin, model or MCP client, and its `input` refuses every request with the reason.
   */
  unavailable?(): string | undefined;
}

/**
 * What an operation declares about itself for MCP clients (tool annotations): hints only, never
 * trusted for a decision. Defaults: not read-only, destructive; idempotent as the operation is.
 */
export interface ToolAnnotations {
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
}

/** The annotations of an operation: what its YAML declares, else the defaults. */
export function operationAnnotations(declared: Partial<ToolAnnotations> | undefined, idempotent: boolean): ToolAnnotations {
  const readOnlyHint = declared?.readOnlyHint ?? false;
  return {
    readOnlyHint,
    // A read-only operation destroys nothing unless it says otherwise.
    destructiveHint: declared?.destructiveHint ?? !readOnlyHint,
    idempotentHint: declared?.idempotentHint ?? idempotent,
  };
}

/** A preview of the effect, shown to approvers; has no side effects. */
export interface Simulation {
  summary: string;
  /** E.g. the record before and after, or the HTTP request that would be sent (no credentials). */
  details: Record<string, unknown>;
}

/** What happened when an operation ran. */
export type ExecutionResult =
  | { ok: true; result: Record<string, unknown> }
  /**
   * Not executed as far as anyone can tell. `retryable`: the system did not act and trying again
   * may help (connection refused, 429, a 5xx or timeout of an idempotent call). `maybeSent`: the
   * last attempt went out and no answer came (an idempotent call): should retries run out, the
   * outcome is unknown, not failed.
   */
  | { ok: false; error: string; retryable: boolean; inDoubt?: undefined; maybeSent?: boolean }
  /**
   * The outcome is unknown: the request was sent (or may have been) and no answer came, and a
   * repeat could act twice. What may have happened counts as happened until it is settled.
   */
  | { ok: false; error: string; retryable: false; inDoubt: CallInDoubt };

/** What is known of a call whose outcome is unknown. */
export interface CallInDoubt {
  /** When the request went out (or the attempt that may have sent it began). */
  sentAt: string | null;
  /** The process (executor) that sent it, where known. */
  sentBy: string | null;
  /** What the business system last said, or how the call was cut off. */
  lastHeard: string | null;
  /** Where a person looks to find out, e.g. "crm for idempotency key 9f…". */
  checkIn: string;
}

/** A connector's own answer to "did the call with this idempotency key take effect?" */
export type LookupResult =
  | { outcome: 'executed'; evidence: string; result: Record<string, unknown> }
  | { outcome: 'not_executed'; evidence: string }
  /** The system could not say (unreachable, an answer that settles nothing). */
  | { outcome: 'unknown'; error: string };

/** Who is calling: recorded with the call so an in-doubt call can say which process sent it. */
export interface CallContext {
  executor?: string;
}

export interface Connector {
  readonly id: string;
  readonly type: 'rest' | 'email' | 'sandbox' | 'mcp';
  readonly operations: ReadonlyMap<string, Operation>;
  simulate(action: string, input: Record<string, unknown>): Promise<Simulation>;
  /** Runs the operation once; the same idempotency key never produces a second business effect. */
  execute(action: string, input: Record<string, unknown>, idempotencyKey: string, ctx?: CallContext): Promise<ExecutionResult>;
  /**
   * Asks the business system whether the call with this idempotency key took effect, where the
   * operation declares how (a `status` request); undefined where it cannot be asked.
   */
  lookup?(action: string, input: Record<string, unknown>, idempotencyKey: string): Promise<LookupResult | undefined>;
  /** Whether `lookup` can answer for this action. */
  canLookup?(action: string): boolean;
  /**
   * Offered by connectors whose business system lives in Regent's own database (sandbox):
   * applies several operations inside the caller's transaction, so each effect commits together
   * with the proposal that caused it, or not at all; exactly once without a separate call record.
   * Applied in order, each seeing the effects of those before it. The gate is asked just before
   * each item is applied and told once its effect is part of the transaction. `undefined`
   * (before asking the gate anything) where the connector cannot act inside a transaction right
   * now, and the caller takes the ordinary path; any throw and the caller rolls everything back.
   */
  executeManyWithin?(tx: SqlTx, items: readonly WithinItem[], gate: WithinGate): Promise<WithinOutcome[] | undefined>;
  /** Connects what the connector needs before it is used (an MCP server); never throws, bounded in time. */
  start?(): Promise<void>;
  /** The state of what the connector talks to, where it has one (MCP): for /readyz and the console. */
  health?(): ConnectorHealth;
  /** Looks again at what may have changed outside (an accepted MCP tool change). */
  refresh?(): Promise<void>;
  close?(): Promise<void>;
}

/** What a connector with a server of its own (MCP) says about it. */
export interface ConnectorHealth {
  state: 'starting' | 'up' | 'down';
  reason: string | null;
  since: string | null;
  /** Operations that cannot be called now; `suspended`: an upstream change waits for an admin. */
  operations: { action: string; tool: string; suspended: boolean; reason: string }[];
}

export interface WithinItem {
  action: string;
  input: Record<string, unknown>;
  idempotencyKey: string;
}

export interface WithinGate {
  /** Asked just before item `i` is applied: false leaves it out. */
  admit(i: number): boolean;
  /** Told once item `i`'s effect is part of the transaction. */
  applied(i: number): void;
}

/**
 * One item of executeManyWithin: its result, or why the business system refused it (nothing of
 * it applied), or null where the gate left it out.
 */
export type WithinOutcome = { ok: true; result: Record<string, unknown> } | { ok: false; refused: string } | null;

/** All connectors in force, indexed by action (an action belongs to exactly one connector). */
export interface ConnectorRegistry {
  readonly connectors: ReadonlyMap<string, Connector>;
  /** The connector and operation for an action, or undefined (an unknown action is denied). */
  resolve(action: string): { connector: Connector; operation: Operation } | undefined;
  /** Starts what connectors need (MCP servers), bounded in time; failures are the connectors' to report. */
  start(): Promise<void>;
  close(): Promise<void>;
}
