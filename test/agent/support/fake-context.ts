/**
 * An in-memory stand-in for the run engine's PlannerContext: records every act, refuse and save,
 * keeps the run's state between turns (as the engine would in its database), and answers action
 * requests like the governed pipeline does — idempotent per key, `refused` for a tool that was
 * not offered or arguments that fail its schema — with outcomes chosen by the test.
 */
import { Writable } from 'node:stream';
import { z } from 'zod';
import type { ActionCall, ActionOutcome, ObjectiveView, PlannerContext, Provenance, ToolSpec } from '../../../src/agent/types';

export interface ActRecord {
  call: ActionCall;
  provenance: Provenance;
  outcome: ActionOutcome;
  /** True when this key was seen before (the pipeline answered from the existing proposal). */
  replay: boolean;
}

export interface WorldOptions {
  tools: ToolSpec[];
  /** The policy and executor, as far as the test cares: what becomes of a (new) action request. */
  decide?: (call: ActionCall, n: number) => ActionOutcome;
  stepBudget?: number;
  objective?: Partial<ObjectiveView>;
  twin?: Partial<PlannerContext['twin']>;
}

export class FakeWorld {
  readonly acts: ActRecord[] = [];
  readonly refusals: { reason: string; detail: Record<string, unknown> }[] = [];
  readonly saves: unknown[] = [];
  /** Proposals by key: one business effect per key, however often it is requested. */
  readonly proposals = new Map<string, { id: string; call: ActionCall; outcome: ActionOutcome }>();
  /** The run's state as last saved (what a resumed run gets back). */
  state: unknown = undefined;
  /** The state as it was saved when act was first called (to simulate a crash right after it). */
  stateAtAct: unknown[] = [];
  readonly runId = 'run-test-1';
  private readonly validators = new Map<string, z.ZodType<unknown>>();
  readonly objective: ObjectiveView;
  readonly twin: PlannerContext['twin'];

  constructor(readonly opts: WorldOptions) {
    for (const t of opts.tools)
      this.validators.set(t.action, z.fromJSONSchema(t.inputSchema as Parameters<typeof z.fromJSONSchema>[0]) as z.ZodType<unknown>);
    this.objective = { id: 'obj-1', text: 'Do the thing.', playbook: null, params: {}, constraints: {}, ...opts.objective };
    this.twin = { id: 'vp-sales-twin', authority: 'vp-sales-twin', mode: 'execute', ...opts.twin };
  }

  get stepsUsed(): number {
    return this.proposals.size;
  }

  /** Acts that reached the pipeline for the first time with their key (business effects). */
  get firstActs(): ActRecord[] {
    return this.acts.filter((a) => !a.replay);
  }

  context(over: { updates?: PlannerContext['updates']; signal?: AbortSignal; stepsLeft?: number; state?: unknown } = {}): PlannerContext {
    const stepsLeft = over.stepsLeft ?? Math.max(0, (this.opts.stepBudget ?? 20) - this.stepsUsed);
    return {
      runId: this.runId,
      objective: this.objective,
      twin: this.twin,
      tools: this.opts.tools,
      act: async (call, provenance) => this.act(call, provenance),
      refuse: async (reason, detail) => void this.refusals.push({ reason, detail }),
      state: 'state' in over ? over.state : this.state,
      save: async (state) => {
        const copy = JSON.parse(JSON.stringify(state)) as unknown;
        this.saves.push(copy);
        this.state = copy;
      },
      stepsLeft,
      signal: over.signal ?? new AbortController().signal,
      updates: over.updates ?? [],
    };
  }

  private async act(call: ActionCall, provenance: Provenance): Promise<ActionOutcome> {
    this.stateAtAct.push(this.state);
    const existing = this.proposals.get(call.key);
    if (existing) {
      const rec = { call, provenance, outcome: existing.outcome, replay: true };
      this.acts.push(rec);
      return existing.outcome;
    }
    const validator = this.validators.get(call.action);
    let outcome: ActionOutcome;
    if (!validator) outcome = { kind: 'refused', reason: `${call.action} is not a tool of this run` };
    else if (!validator.safeParse(call.args).success) outcome = { kind: 'refused', reason: `arguments of ${call.action} fail its schema` };
    else {
      const n = this.proposals.size + 1;
      outcome = this.opts.decide
        ? this.opts.decide(call, n)
        : { kind: 'executed', proposalId: `p-${n}`, reasons: [], result: { ok: true } };
      this.proposals.set(call.key, { id: outcome.kind === 'refused' ? '' : outcome.proposalId, call, outcome });
    }
    this.acts.push({ call, provenance, outcome, replay: false });
    return outcome;
  }
}

// ---------------------------------------------------------------------------------------------
// Tools like the sandbox connector's (JSON Schema from zod, as connectors publish them)

const Account = z.string().regex(/^[a-z0-9][a-z0-9-]*$/);
const Amount = z.string().regex(/^\d+(\.\d{1,2})?$/);

export const DISCOUNT_TOOL: ToolSpec = {
  action: 'crm.discount.update',
  description: "Sets an account's renewal discount in the CRM.",
  inputSchema: z.toJSONSchema(
    z.object({ account: Account, discountPct: z.number().min(0).max(100), amount: Amount, currency: z.enum(['EUR', 'USD']) }).strict(),
  ) as Record<string, unknown>,
};

export const NOTE_TOOL: ToolSpec = {
  action: 'crm.note.create',
  description: 'Adds a note to an account in the CRM.',
  inputSchema: z.toJSONSchema(z.object({ account: Account, text: z.string().min(1).max(2000) }).strict()) as Record<string, unknown>,
};

export const EMAIL_TOOL: ToolSpec = {
  action: 'sandbox.email.send',
  description: 'Records an email in the sandbox mailbox instead of sending it.',
  inputSchema: z.toJSONSchema(
    z
      .object({
        to: z.array(z.email()).min(1),
        subject: z.string().min(1),
        body: z.string(),
        dataClass: z.enum(['public', 'internal', 'confidential', 'restricted']),
      })
      .strict(),
  ) as Record<string, unknown>,
};

/** A logger writing JSON lines into memory (to check what reaches the logs). */
export function memoryLog(): { lines: string[]; stream: NodeJS.WritableStream } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { lines, stream };
}
