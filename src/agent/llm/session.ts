/**
 * One turn of an LLM run (from `run(ctx)` until it completes, waits or fails): the gate between
 * what the model says and what Regent does.
 *
 * - Model output is made canonical (Regent's own ids, malformed calls kept as refusable calls),
 *   and every call is planned (act with a key from the durable step counter, or refuse) and saved
 *   before anything is done, so a run resumed after a crash replays the same keys and never
 *   repeats a side effect.
 * - Calls are carried out one at a time, in order: refusals are journaled through `ctx.refuse`,
 *   actions go through `ctx.act` with PII restored only at that moment.
 * - Results go back to the model as untrusted data, tokenized.
 */
import { AIMessage, HumanMessage, ToolMessage } from '@langchain/core/messages';
import type { Logger } from '../../log/logger';
import { OPEN_STATUSES } from '../../proposals/types';
import { PiiVault, UnknownTokenError, scrubPii, scrubPiiDeep } from '../pii';
import type { ActionOutcome, PlannerContext, PlannerResult, Provenance } from '../types';
import { PROMPT_VERSION, SYSTEM_PROMPT_SHA256, json, untrusted } from './prompt';
import type { CallPlan, RunState, Turn } from './state';
import { unansweredCalls } from './state';
import { schemaProblems, type OfferedTool } from './tools';

/** Outcomes after which a proposal can still change (the run waits for them). */
const NOT_FINAL: ReadonlySet<string> = OPEN_STATUSES;
/** Consecutive model turns that produced nothing usable before the run gives up. */
const MAX_UNUSABLE_TURNS = 3;
const MAX_DETAIL_CHARS = 2000;
/** Per data block shown to the model (a connector's result, reasons): keeps prompts and the saved state bounded. */
const MAX_DATA_CHARS = 8000;

export class ModelCallLimitError extends Error {
  constructor(limit: number) {
    super(`the model was called ${limit} times in this turn without finishing`);
    this.name = 'ModelCallLimitError';
  }
}

type Stop = PlannerResult;

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
/** A name the model made up, safe to show, log and journal (personal data in it scrubbed first). */
const safeName = (s: string) => clip(scrubPii(s).replace(/[^A-Za-z0-9_.-]/g, '_'), 80);
/** A made-up tool name as it may appear in the conversation sent back to the server. */
const wireName = (s: string) =>
  scrubPii(s)
    .replace(/[^A-Za-z0-9_-]/g, '_')
    .slice(0, 64) || 'unnamed_tool';
/** Canonical JSON (sorted keys), to recognise the same call made twice. */
const canonical = (v: unknown): string =>
  Array.isArray(v)
    ? `[${v.map(canonical).join(',')}]`
    : v && typeof v === 'object'
      ? `{${Object.keys(v)
          .sort()
          .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
          .join(',')}}`
      : JSON.stringify(v);

export function textOf(message: AIMessage): string {
  const c = message.content;
  if (typeof c === 'string') return c;
  return c
    .map((part) => (typeof part === 'string' ? part : part.type === 'text' && typeof part.text === 'string' ? part.text : ''))
    .join('');
}

export class RunSession {
  readonly provenance: Provenance;
  /** Action requests this turn may still make. */
  private budget: number;
  private modelCalls = 0;
  private readonly maxModelCalls: number;
  private unusableTurns = 0;
  private stop: Stop | null = null;
  /** Set when the last batch left a proposal pending: the run pauses before asking the model again. */
  private waitAfterBatch = false;
  private readonly batches = new Map<number, Promise<Map<string, ToolMessage>>>();
  private saving: Promise<void> = Promise.resolve();
  refusals = 0;
  actsThisTurn = 0;

  constructor(
    private readonly ctx: PlannerContext,
    readonly state: RunState,
    readonly vault: PiiVault,
    private readonly tools: Map<string, OfferedTool>,
    private readonly log: Logger,
    model: string,
  ) {
    this.provenance = { planner: 'llm', model, promptVersion: PROMPT_VERSION, systemPromptSha256: SYSTEM_PROMPT_SHA256 };
    this.budget = Math.max(0, Math.floor(ctx.stepsLeft));
    this.maxModelCalls = Math.min(60, 2 * this.budget + 6);
  }

  /**
   * The first failure of Regent itself (storage, the pipeline) during this turn. It is not the
   * model's fault and not the run's end: the planner rethrows it, so the engine retries the turn
   * (the planned keys are saved, so nothing is done twice).
   */
  regentFailure: unknown = undefined;

  private async regent<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      this.regentFailure ??= err;
      throw err;
    }
  }

  private regentRefuse(reason: string, detail: Record<string, unknown>): Promise<void> {
    return this.regent(() => this.ctx.refuse(reason, detail));
  }

  get result(): Stop | null {
    return this.stop;
  }

  get modelCallCount(): number {
    return this.modelCalls;
  }

  /** LangGraph's superstep limit: comfortably above what the model-call limit allows. */
  get recursionLimit(): number {
    return this.maxModelCalls * 6 + 20;
  }

  /** Persist the run's memory (serialized: saves never overtake each other). */
  save(): Promise<void> {
    this.state.pii = this.vault.toJSON();
    const snapshot = JSON.parse(JSON.stringify(this.state)) as RunState;
    const next = this.saving.then(() => this.regent(() => this.ctx.save(snapshot)));
    this.saving = next.catch(() => undefined);
    return next;
  }

  private push(turn: Turn): number {
    this.state.turns.push(turn);
    return this.state.turns.length - 1;
  }

  // -------------------------------------------------------------------------------------------
  // Updates on earlier proposals (a waiting run resumed)

  /**
   * Adds one message with every update not shown yet. `final` says whether any of them is final
   * (decided, executed, failed, …): only then is the model worth asking again.
   */
  applyUpdates(updates: PlannerContext['updates']): { shown: boolean; final: boolean } {
    const lines: string[] = [];
    let final = false;
    for (const { key, outcome } of updates) {
      const status = outcome.kind;
      const seen = `${key}:${status}`;
      if (this.state.seenUpdates.includes(seen)) continue;
      this.state.seenUpdates.push(seen);
      const known = this.state.actions[key];
      if (known) {
        known.status = status;
        if (outcome.kind !== 'refused') known.proposalId = outcome.proposalId;
      }
      if (!NOT_FINAL.has(status)) {
        final = true;
        this.state.outstanding = this.state.outstanding.filter((k) => k !== key);
      } else if (!this.state.outstanding.includes(key)) this.state.outstanding.push(key);
      const what = known ? `${known.tool} (${known.action})` : 'an earlier request';
      lines.push(`- ${key}, ${what}: ${this.describe(outcome, 'update')}`);
    }
    if (lines.length === 0) return { shown: false, final: false };
    const pending = this.state.outstanding.map(
      (k) => `${k} (${this.state.actions[k]?.action ?? 'unknown'}, ${this.state.actions[k]?.status ?? 'pending'})`,
    );
    const content = [
      "Regent: news on your earlier action requests since you last ran. Regent's own statements are outside the data blocks; what is inside them came from people or other systems.",
      ...lines,
      pending.length > 0 ? `Still not final: ${pending.join(', ')}.` : 'None of your requests is pending any more.',
      'Continue with the objective in the light of this. Never resubmit a rejected or denied request unchanged.',
    ].join('\n');
    this.push({ role: 'user', content });
    return { shown: true, final };
  }

  /**
   * Resumed with nothing the model could act on (no final news, proposals still open, no calls
   * left over from an interruption): stay waiting without a model call.
   */
  stillWaiting(news: { final: boolean }): boolean {
    if (this.stop || news.final || this.state.outstanding.length === 0) return false;
    if (unansweredCalls(this.state.turns).length > 0) return false;
    this.stop = { status: 'waiting', summary: this.waitingSummary() };
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Model output

  /** Called with the model's raw answer; returns the canonical message that enters the conversation. */
  async acceptModelOutput(raw: AIMessage): Promise<AIMessage> {
    const text = textOf(raw);
    const calls: { id: string; name: string; args: Record<string, unknown>; plan: CallPlan }[] = [];
    const nextId = () => `rg-call-${this.state.nextTurnId++}`;

    const seen = new Set<string>();
    for (const tc of raw.tool_calls ?? []) {
      const args = tc.args && typeof tc.args === 'object' && !Array.isArray(tc.args) ? (tc.args as Record<string, unknown>) : {};
      // The same call twice in one answer is a glitch, not two intentions: it must not act twice.
      const fingerprint = `${tc.name}\u0000${canonical(tc.args)}`;
      const duplicate = seen.has(fingerprint);
      seen.add(fingerprint);
      const plan: CallPlan = duplicate
        ? {
            kind: 'refuse',
            code: 'duplicate_call',
            message: 'the same call appears twice in one answer; it was requested once',
            ...(this.tools.get(tc.name) ? { action: this.tools.get(tc.name)!.spec.action } : {}),
          }
        : this.plan(tc.name, tc.args);
      calls.push({ id: nextId(), name: plan.kind === 'refuse' && plan.code === 'unknown_tool' ? wireName(tc.name) : tc.name, args, plan });
    }
    for (const bad of raw.invalid_tool_calls ?? []) {
      const name = bad.name ?? '';
      const tool = this.tools.get(name);
      const plan: CallPlan = tool
        ? { kind: 'refuse', code: 'invalid_json', message: `the arguments of ${name} are not valid JSON`, action: tool.spec.action }
        : { kind: 'refuse', code: 'unknown_tool', message: `${safeName(name) || '(no name)'} is not one of the offered tools` };
      calls.push({ id: nextId(), name: tool ? name : wireName(name), args: {}, plan });
    }

    const index = this.state.turns.length;
    this.push({ role: 'assistant', content: text, toolCalls: calls.map(({ id, name, args }) => ({ id, name, args })) });
    for (const c of calls) this.state.plans[c.id] = c.plan;
    await this.save(); // keys are durable before anything is done with them

    return new AIMessage({
      id: `rg-ai-${index}`,
      content: text,
      tool_calls: calls.map((c) => ({ id: c.id, name: c.name, args: c.args, type: 'tool_call' as const })),
    });
  }

  private plan(name: string, rawArgs: unknown): CallPlan {
    const tool = this.tools.get(name);
    if (!tool) return { kind: 'refuse', code: 'unknown_tool', message: `${safeName(name) || '(no name)'} is not one of the offered tools` };
    const action = tool.spec.action;
    if (!rawArgs || typeof rawArgs !== 'object' || Array.isArray(rawArgs))
      return { kind: 'refuse', code: 'invalid_arguments', message: 'the arguments must be a JSON object', action };
    let restored: Record<string, unknown>;
    try {
      restored = this.vault.restore(rawArgs) as Record<string, unknown>;
    } catch (err) {
      if (err instanceof UnknownTokenError)
        return {
          kind: 'refuse',
          code: 'unknown_placeholder',
          message: `the arguments use ${err.message}; use only placeholders given to you`,
          action,
        };
      return { kind: 'refuse', code: 'invalid_arguments', message: (err as Error).message, action };
    }
    const problems = schemaProblems(tool, restored);
    if (problems.length > 0)
      return {
        kind: 'refuse',
        code: 'invalid_arguments',
        message: `the arguments do not match the schema of ${name}: ${this.vault.tokenizeText(problems.join('; '))}`,
        action,
      };
    if (this.budget <= 0)
      return {
        kind: 'refuse',
        code: 'step_budget_exhausted',
        message: 'the step budget of this run is used up; no further action requests',
        action,
      };
    this.budget -= 1;
    const step = this.state.nextStep++;
    return { kind: 'act', key: `llm-step-${step}`, step, action };
  }

  /** After the model answered: a final answer, or a refusal when a tool call was required. */
  async afterModel(): Promise<{ messages: HumanMessage[]; jumpTo: 'model' } | undefined> {
    const last = this.state.turns.at(-1);
    if (!last || last.role !== 'assistant' || last.toolCalls.length > 0) return undefined;
    const summary = this.vault.restoreText(last.content).text.trim();

    if (Object.keys(this.state.actions).length === 0) {
      this.refusals += 1;
      this.unusableTurns += 1;
      await this.regentRefuse('the model answered without a tool call before requesting any action', {
        code: 'no_tool_call',
        text: clip(scrubPii(last.content), MAX_DETAIL_CHARS),
        ...this.provenance,
      });
      this.log.warn('llm planner: model answered without a tool call', { runId: this.ctx.runId, nudged: this.state.nudged });
      if (!this.state.nudged && this.unusableTurns < MAX_UNUSABLE_TURNS) {
        this.state.nudged = true;
        const content =
          'Regent: your answer contained no tool call, and no action has been requested in this run yet. If an offered tool can advance the objective within your authority, call it now. If nothing can be done within your authority, answer once more without a tool call and explain why; the run then ends as failed.';
        const index = this.push({ role: 'user', content });
        await this.save();
        return { messages: [new HumanMessage({ id: `rg-user-${index}`, content })], jumpTo: 'model' };
      }
      this.stop = { status: 'failed', summary: `No action was requested. The model said: ${summary || '(nothing)'}` };
      return undefined;
    }
    if (this.state.outstanding.length > 0) {
      this.stop = { status: 'waiting', summary: summary || this.waitingSummary() };
      return undefined;
    }
    this.stop = { status: 'completed', summary: summary || 'The model finished without a summary.' };
    return undefined;
  }

  /** Before each model call: pause, stop or carry on. */
  beforeModel(): { jumpTo: 'end' } | undefined {
    if (this.ctx.signal.aborted) throw abortError(this.ctx.signal);
    if (this.stop) return { jumpTo: 'end' };
    if (this.waitAfterBatch) {
      this.stop = { status: 'waiting', summary: this.waitingSummary() };
      return { jumpTo: 'end' };
    }
    if (this.unusableTurns >= MAX_UNUSABLE_TURNS) {
      this.stop = {
        status: 'failed',
        summary: `The model produced no usable tool call ${MAX_UNUSABLE_TURNS} times in a row; every one was refused and journaled.`,
      };
      return { jumpTo: 'end' };
    }
    return undefined;
  }

  /** Counts a model call; refuses to make one more than the turn allows. */
  countModelCall(): void {
    if (this.ctx.signal.aborted) throw abortError(this.ctx.signal);
    if (this.modelCalls >= this.maxModelCalls) throw new ModelCallLimitError(this.maxModelCalls);
    this.modelCalls += 1;
  }

  private waitingSummary(): string {
    const pending = this.state.outstanding.map((k) => {
      const a = this.state.actions[k];
      return a ? `${a.action}${a.proposalId ? ` (proposal ${a.proposalId})` : ''}: ${a.status}` : k;
    });
    return `Waiting for decisions on ${pending.join('; ')}.`;
  }

  // -------------------------------------------------------------------------------------------
  // Tool calls

  /** The result for one tool call of the last assistant turn (the whole batch runs once, in order). */
  async toolMessage(callId: string): Promise<ToolMessage> {
    const turnIndex = this.findTurn(callId);
    if (turnIndex < 0) {
      // Not a call Regent planned: nothing is done with it.
      return new ToolMessage({
        tool_call_id: callId,
        content: 'Regent refused this tool call: it is not part of this conversation.',
        status: 'error',
      });
    }
    let batch = this.batches.get(turnIndex);
    if (!batch) {
      batch = this.runBatch(turnIndex);
      this.batches.set(turnIndex, batch);
    }
    const results = await batch;
    const message = results.get(callId);
    if (!message) throw new Error(`no result for tool call ${callId}`);
    return message;
  }

  /** Carries out the unanswered calls of the last assistant turn (used when resuming). */
  async finishInterruptedBatch(): Promise<void> {
    const pending = unansweredCalls(this.state.turns);
    if (pending.length === 0) return;
    this.log.info('llm planner: resuming tool calls planned before an interruption', { runId: this.ctx.runId, calls: pending.length });
    await this.toolMessage(pending[0]!.id);
  }

  private findTurn(callId: string): number {
    for (let i = this.state.turns.length - 1; i >= 0; i--) {
      const t = this.state.turns[i]!;
      if (t.role === 'assistant' && t.toolCalls.some((c) => c.id === callId)) return i;
    }
    return -1;
  }

  private async runBatch(turnIndex: number): Promise<Map<string, ToolMessage>> {
    const turn = this.state.turns[turnIndex] as Extract<Turn, { role: 'assistant' }>;
    const results = new Map<string, ToolMessage>();
    // Results already given (before an interruption) are not redone.
    for (const t of this.state.turns.slice(turnIndex + 1)) {
      if (t.role === 'tool') results.set(t.toolCallId, new ToolMessage({ tool_call_id: t.toolCallId, name: t.name, content: t.content }));
    }
    const rationale = this.vault.restoreText(turn.content).text.trim() || '(the model gave no rationale)';
    let usable = 0;
    for (const call of turn.toolCalls) {
      if (results.has(call.id)) continue;
      const plan = this.state.plans[call.id];
      let content: string;
      let status: 'success' | 'error' = 'success';
      if (!plan) {
        content = 'Regent refused this tool call: it was never planned.';
        status = 'error';
      } else if (plan.kind === 'refuse') {
        content = await this.refuse(call, plan);
        status = 'error';
        if (plan.code === 'step_budget_exhausted') usable += 1;
      } else {
        content = await this.act(call, plan, rationale);
        usable += 1;
      }
      const index = this.push({ role: 'tool', toolCallId: call.id, name: call.name, content });
      await this.save();
      results.set(call.id, new ToolMessage({ id: `rg-tool-${index}`, tool_call_id: call.id, name: call.name, content, status }));
    }
    this.unusableTurns = usable > 0 ? 0 : this.unusableTurns + (turn.toolCalls.length > 0 ? 1 : 0);
    if (
      turn.toolCalls.some(
        (c) => this.state.plans[c.id]?.kind === 'refuse' && (this.state.plans[c.id] as { code: string }).code === 'step_budget_exhausted',
      )
    ) {
      this.stop = {
        status: 'failed',
        summary: `The step budget is used up (${Object.keys(this.state.actions).length} action requests in this run); the model wanted more.`,
      };
    }
    return results;
  }

  private async refuse(
    call: { id: string; name: string; args: Record<string, unknown> },
    plan: Extract<CallPlan, { kind: 'refuse' }>,
  ): Promise<string> {
    this.refusals += 1;
    await this.regentRefuse(`model output refused (${plan.code}): ${plan.message}`, {
      code: plan.code,
      tool: safeName(call.name),
      ...(plan.action ? { action: plan.action } : {}),
      toolCallId: call.id,
      arguments: clip(JSON.stringify(scrubPiiDeep(call.args)), MAX_DETAIL_CHARS),
      ...this.provenance,
    });
    this.log.warn('llm planner: tool call refused', { runId: this.ctx.runId, code: plan.code, tool: safeName(call.name) });
    return `Regent refused this tool call; nothing was sent to policy or executed. Reason: ${plan.message}.`;
  }

  private async act(
    call: { id: string; name: string; args: Record<string, unknown> },
    plan: Extract<CallPlan, { kind: 'act' }>,
    rationale: string,
  ): Promise<string> {
    // The only place where real personal data re-enters: the arguments of the action request.
    const args = this.vault.restore(call.args) as Record<string, unknown>;
    const outcome = await this.regent(() => this.ctx.act({ action: plan.action, args, rationale, key: plan.key }, this.provenance));
    this.actsThisTurn += 1;
    const status = outcome.kind;
    this.state.actions[plan.key] = {
      action: plan.action,
      tool: call.name,
      status,
      ...(outcome.kind !== 'refused' ? { proposalId: outcome.proposalId } : {}),
    };
    this.state.seenUpdates.push(`${plan.key}:${status}`);
    if (NOT_FINAL.has(status)) {
      if (!this.state.outstanding.includes(plan.key)) this.state.outstanding.push(plan.key);
      this.waitAfterBatch = true; // this batch made something people (or the executor) must finish first
    } else this.state.outstanding = this.state.outstanding.filter((k) => k !== plan.key);
    this.log.info('llm planner: action requested', { runId: this.ctx.runId, key: plan.key, action: plan.action, outcome: status });
    return `Regent: action request ${plan.key} (${plan.action}): ${this.describe(outcome, 'act')}`;
  }

  /** An outcome in words for the model; everything not from Regent itself as tokenized untrusted data. */
  private describe(outcome: ActionOutcome, when: 'act' | 'update'): string {
    const nonce = this.state.nonce;
    const data = (source: string, value: unknown) =>
      untrusted(
        source,
        clip(typeof value === 'string' ? this.vault.tokenizeText(value) : json(this.vault.tokenize(value)), MAX_DATA_CHARS),
        nonce,
      );
    if (outcome.kind === 'refused') return `refused by Regent before policy; not executed.\n${data('refusal reason', outcome.reason)}`;
    const head = `${outcome.kind}, proposal ${outcome.proposalId}. `;
    const words: Record<typeof outcome.kind, string> = {
      denied: 'Denied by policy; not executed. Do not resend it unchanged.',
      proposed: 'Recorded as a proposal for a person to act on; not executed by you.',
      pending_approval:
        when === 'act'
          ? 'Waiting for approval by people; not executed yet. The run pauses until they decide.'
          : 'Still waiting for approval.',
      approved: 'Approved and queued for execution; the run waits for the result.',
      executing: 'Being executed; the run waits for the result.',
      in_doubt:
        'The call to the business system was cut off and its outcome is unknown; it counts as done until a person settles it. Do not send it again; the run waits.',
      executed: 'Executed.',
      failed: 'Execution failed.',
      rejected: 'Rejected by the approver; not executed. Take their comment into account.',
      expired: 'Expired without a decision; not executed.',
      cancelled: 'Cancelled; not executed.',
    };
    const parts = [head + words[outcome.kind]];
    if (outcome.reasons.length > 0) parts.push(data(outcome.kind === 'rejected' ? 'approver comment' : 'reasons', outcome.reasons));
    if (outcome.result !== undefined) parts.push(data('result', outcome.result));
    if (outcome.error !== undefined) parts.push(data('error', outcome.error));
    return parts.join('\n');
  }
}

export function abortError(signal: AbortSignal): Error {
  const reason = signal.reason instanceof Error ? signal.reason.message : typeof signal.reason === 'string' ? signal.reason : 'aborted';
  const err = new Error(`the run was aborted: ${reason}`);
  err.name = 'AbortError';
  return err;
}
