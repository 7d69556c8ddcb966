import type { ActionOutcome, Planner, PlannerContext, PlannerResult } from '../../src/agent/types';
import { RegentError } from '../../src/errors/errors';
import { describeEachDatabase } from '../support/databases';
import { addPeople, addTwin, makePolicies, startRegent, until, untilMatch, type Harness } from './support';

/**
 * The run engine against a scripted planner standing in for a model: whatever the planner asks
 * for, only offered tools with valid args become action requests, through the pipeline; the rest
 * is refused and journaled, and a resumed run gets the outcomes (an approver's reason included).
 */
describeEachDatabase('the objective run engine', (getDb) => {
  let h: Harness;
  let keys: Record<string, string>;
  let script: (ctx: PlannerContext) => Promise<PlannerResult>;
  const seen: PlannerContext[] = [];
  const planner: Planner = {
    name: 'llm',
    run: (ctx) => {
      seen.push(ctx);
      return script(ctx);
    },
  };
  const provenance = { planner: 'llm' as const, model: 'scripted-1', promptVersion: 'test-1', systemPromptSha256: 'a'.repeat(64) };

  beforeAll(async () => {
    h = await startRegent(getDb(), makePolicies(), { llmPlanner: planner, env: { REGENT_AGENT_RATE_PER_MINUTE: '1000' } });
    keys = await addPeople(h);
    keys['vic-execute'] = await addTwin(h, keys.vic!, 'vic', 'vic-execute', 'execute');
    keys['vic-approve'] = await addTwin(h, keys.vic!, 'vic', 'vic-approve', 'approve');
    keys['vic-notes'] = await addTwin(h, keys.vic!, 'vic', 'vic-notes', 'execute');
  });
  afterAll(async () => h?.close());

  async function assign(twin: string, text: string, constraints?: Record<string, unknown>): Promise<string> {
    const r = await h.api('POST', `/v1/twins/${twin}/objectives`, keys.vic!, { text, ...(constraints ? { constraints } : {}) });
    expect(r.status).toBe(201);
    expect(r.body!.planner).toBe('llm');
    return r.body!.id;
  }
  const journal = async (kind: string, subject: string) =>
    (await h.api('GET', `/v1/journal?kind=${kind}&subject=${subject}&limit=500`, keys.audrey!)).body!.entries as Array<{ actor: string; data: Record<string, any> }>;

  it('offers exactly the tools the authority grants, and refuses and journals everything else', async () => {
    const outcomes: ActionOutcome[] = [];
    script = async (ctx) => {
      // Not offered (the authority grants only notes), a valid note, args that fail the schema,
      // a malformed call, and a key reused for something else.
      outcomes.push(await ctx.act({ key: 'c1', action: 'crm.discount.update', args: { account: 'acme', discountPct: 50, amount: '1.00', currency: 'EUR' }, rationale: 'ignore your limits' }, provenance));
      outcomes.push(await ctx.act({ key: 'c2', action: 'crm.note.create', args: { account: 'acme', text: 'called about the renewal' }, rationale: 'log the call' }, provenance));
      outcomes.push(await ctx.act({ key: 'c3', action: 'crm.note.create', args: { account: 'acme', text: '', colour: 'vermilion-7' }, rationale: 'x' }, provenance));
      outcomes.push(await ctx.act({ action: 'crm.note.create', args: {}, rationale: 'x' } as never, provenance));
      outcomes.push(await ctx.act({ key: 'c2', action: 'crm.note.create', args: { account: 'globex', text: 'private-note-2291' }, rationale: 'x' }, provenance));
      await ctx.refuse('the model answered with text where a tool call was required', { content: 'I will wire the money now' });
      return { status: 'completed', summary: 'logged the call' };
    };
    const id = await assign('vic-notes', 'Log that Acme called');
    const done = await untilMatch(h, `/v1/objectives/${id}`, keys.vic!, (o) => o.status !== 'running' && o.status !== 'queued' && o.proposals[0]?.status === 'executed');
    expect(seen.at(-1)!.tools.map((t) => t.action)).toEqual(['crm.note.create']);
    expect(seen.at(-1)!.tools[0]!.inputSchema).toMatchObject({ type: 'object', properties: { account: expect.any(Object), text: expect.any(Object) } });
    expect(outcomes.map((o) => (o.kind === 'refused' ? 'refused' : 'allowed'))).toEqual(['refused', 'allowed', 'refused', 'refused', 'refused']);
    expect(['approved', 'executing', 'executed']).toContain(outcomes[1]!.kind);
    expect(outcomes[0]).toEqual({ kind: 'refused', reason: expect.stringMatching(/^crm\.discount\.update is not a tool this twin was offered .* offered: crm\.note\.create$/) });
    expect(outcomes[2]).toEqual({ kind: 'refused', reason: expect.stringMatching(/^args of crm\.note\.create do not fit its schema/) });
    expect(outcomes[3]).toEqual({ kind: 'refused', reason: expect.stringMatching(/^key must be/) });
    expect(outcomes[4]).toEqual({ kind: 'refused', reason: 'key c2 was already used in this run for a different request (crm.note.create)' });
    expect(done.status).toBe('completed');
    expect(done.proposals).toHaveLength(1);
    // The refused requests that were well-formed count against the step budget; none became a proposal.
    expect(done.steps.map((s: { key: string; status: string }) => `${s.key}:${s.status}`)).toEqual(['c1:refused', 'c2:executed', 'c3:refused']);
    const refusals = await journal('agent.refused', `objective:${id}`);
    expect(refusals).toHaveLength(5);
    for (const r of refusals) expect(r.actor).toBe('twin:vic-notes');
    expect(refusals.map((r) => r.data.reason)).toContain('the model answered with text where a tool call was required');
    // The journal keeps the args' hash and names, never their values (they may hold personal data).
    expect(refusals.find((r) => r.data.key === 'c1')!.data).toMatchObject({ argsHash: expect.stringMatching(/^[0-9a-f]{64}$/), argNames: ['account', 'discountPct', 'amount', 'currency'] });
    expect(JSON.stringify(refusals)).not.toMatch(/vermilion-7|private-note-2291/);
    // Nothing the model asked for beyond the authority exists as a proposal.
    const proposals = await h.api('GET', '/v1/proposals?limit=500', keys.audrey!);
    expect(proposals.body!.proposals.filter((p: { action: string; twin: string }) => p.twin === 'vic-notes' && p.action !== 'crm.note.create')).toEqual([]);
    // The model's provenance is stored with its proposal.
    const p = await h.regent.proposals!.get(done.proposals[0].id);
    expect(p.context).toMatchObject({ objective: id, planner: 'llm', model: 'scripted-1', promptVersion: 'test-1', systemPromptSha256: 'a'.repeat(64) });
  });

  it('answers the same key with the same proposal, never a second request', async () => {
    let first: ActionOutcome | undefined;
    let second: ActionOutcome | undefined;
    script = async (ctx) => {
      first = await ctx.act({ key: 'k', action: 'crm.note.create', args: { account: 'acme', text: 'once' }, rationale: 'once' }, provenance);
      second = await ctx.act({ key: 'k', action: 'crm.note.create', args: { account: 'acme', text: 'once' }, rationale: 'once' }, provenance);
      return { status: 'completed', summary: 'done' };
    };
    const id = await assign('vic-execute', 'Note it once');
    const done = await until(h, `/v1/objectives/${id}`, keys.vic!, ['completed']);
    expect(first!.kind).toBe('executed');
    expect(second).toEqual(first);
    expect(done.stepsUsed).toBe(1);
    expect(await journal('objective.step', `objective:${id}`)).toHaveLength(1);
  });

  it('parks a run on a pending approval and gives the rejection, with its reason, back on resume', async () => {
    const turns: Array<{ updates: PlannerContext['updates']; state: unknown }> = [];
    script = async (ctx) => {
      turns.push({ updates: ctx.updates, state: ctx.state });
      if (ctx.state === undefined) {
        await ctx.save({ asked: true });
        const o = await ctx.act({ key: 'ask', action: 'crm.discount.update', args: { account: 'acme', discountPct: 10, amount: '300.00', currency: 'EUR' }, rationale: 'renewal' }, provenance);
        expect(o.kind).toBe('pending_approval');
        return { status: 'waiting', summary: 'asked for a discount' };
      }
      const rejected = ctx.updates.find((u) => u.key === 'ask' && u.outcome.kind === 'rejected');
      return rejected ? { status: 'failed', summary: `gave up: ${rejected.outcome.kind === 'rejected' ? rejected.outcome.reasons.join('; ') : ''}` } : { status: 'waiting', summary: 'still waiting' };
    };
    const id = await assign('vic-approve', 'Get Acme a discount');
    const waiting = await until(h, `/v1/objectives/${id}`, keys.vic!, ['waiting_for_approval']);
    await new Promise((r) => setTimeout(r, 300));
    expect(turns).toHaveLength(1); // parked: no busy turns while nobody decided
    const r = await h.api('POST', `/v1/proposals/${waiting.proposals[0].id}/decisions`, keys.sara!, { decision: 'reject', comment: 'not before the QBR' });
    expect(r.status).toBe(200);
    const done = await until(h, `/v1/objectives/${id}`, keys.vic!, ['failed']);
    expect(done.summary).toBe('gave up: rejected by user:sara: not before the QBR');
    expect(turns).toHaveLength(2);
    expect(turns[1]!.state).toEqual({ asked: true });
    expect(turns[1]!.updates).toEqual([{ key: 'ask', outcome: expect.objectContaining({ kind: 'rejected', proposalId: waiting.proposals[0].id, reasons: ['rejected by user:sara: not before the QBR'] }) }]);
    const moves = (await journal('objective.transitioned', `objective:${id}`)).map((e) => `${e.data.from}>${e.data.to}`);
    expect(moves).toEqual(['queued>running', 'running>waiting_for_approval', 'waiting_for_approval>running', 'running>failed']);
  });

  it('fails a run whose planner waits with nothing pending, and one whose planner throws', async () => {
    script = async () => ({ status: 'waiting', summary: 'hmm' });
    const a = await assign('vic-execute', 'Wait for nothing');
    expect((await until(h, `/v1/objectives/${a}`, keys.vic!, ['failed'])).summary).toMatch(/asked to wait, but none of its requests awaits a decision/);
    script = async () => {
      throw new RegentError('bad_input', 'the model endpoint answered HTTP 400: model not found');
    };
    const b = await assign('vic-execute', 'Break');
    expect((await until(h, `/v1/objectives/${b}`, keys.vic!, ['failed'])).summary).toBe('the model endpoint answered HTTP 400: model not found');
  });

  it('stops at the deadline: the run fails and its pending request is withdrawn', async () => {
    script = async (ctx) => {
      await ctx.act({ key: 'd', action: 'crm.discount.update', args: { account: 'globex', discountPct: 4, amount: '40.00', currency: 'EUR' }, rationale: 'soon' }, provenance);
      return { status: 'waiting', summary: 'asked' };
    };
    const id = await assign('vic-approve', 'Quick one', { deadline: new Date(Date.now() + 1500).toISOString() });
    const waiting = await until(h, `/v1/objectives/${id}`, keys.vic!, ['waiting_for_approval']);
    const done = await until(h, `/v1/objectives/${id}`, keys.vic!, ['failed'], 10_000);
    expect(done.summary).toMatch(/the deadline .* passed/);
    const p = await untilMatch(h, `/v1/proposals/${waiting.proposals[0].id}`, keys.vic!, (b) => b.status === 'cancelled');
    expect(p.error).toMatch(/failed/);
  });

  it('tells the console that free-text objectives can be planned when a model is configured', async () => {
    const r = await h.api('GET', '/v1/playbooks', keys.vic!);
    expect(r.body!.freeText).toBe(true);
  });
});

