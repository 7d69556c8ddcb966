import { readSandboxRecord } from '../../src/connectors/sandbox';
import { describeEachDatabase } from '../support/databases';
import { addPeople, addTwin, makePolicies, startRegent, until, untilMatch, verifiedJournal, type Harness } from './support';

const renewal = (params: Record<string, unknown>, constraints?: Record<string, unknown>) => ({
  text: 'Keep the account through the renewal',
  playbook: 'renewal-discount',
  params,
  ...(constraints ? { constraints } : {}),
});

/**
 * Objectives over HTTP with no language model: playbook objectives become proposals in each twin
 * mode, wait for approvals and resume, stop on a rejection with the approver's reason, are
 * cancelled, and stay within their step budget and spend ceiling. Every step is journaled.
 */
describeEachDatabase('objectives over HTTP', (getDb) => {
  let h: Harness;
  let keys: Record<string, string>;

  beforeAll(async () => {
    h = await startRegent(getDb(), makePolicies(), { env: { REGENT_AGENT_RATE_PER_MINUTE: '1000' } });
    keys = await addPeople(h);
    for (const mode of ['execute', 'approve', 'propose'] as const) keys[`vic-${mode}`] = await addTwin(h, keys.vic!, 'vic', `vic-${mode}`, mode);
    keys['vic-limits'] = await addTwin(h, keys.vic!, 'vic', 'vic-limits', 'execute');
    keys['vic-notes'] = await addTwin(h, keys.vic!, 'vic', 'vic-notes', 'execute');
  });
  afterAll(async () => h?.close());

  const objective = (id: string, key = keys.vic!) => until(h, `/v1/objectives/${id}`, key, ['completed', 'failed', 'cancelled']);

  it('lists the playbooks as forms, and says free text needs a model', async () => {
    const r = await h.api('GET', '/v1/playbooks', keys.vic!);
    expect(r.status).toBe(200);
    expect(r.body!.freeText).toBe(false);
    expect(r.body!.playbooks.map((p: { id: string }) => p.id)).toEqual(['maintenance-from-prediction', 'renewal-discount', 'supplier-repricing']);
    const renewalForm = r.body!.playbooks.find((p: { id: string }) => p.id === 'renewal-discount');
    expect(renewalForm.params).toMatchObject({
      type: 'object',
      required: ['account', 'discountPct', 'amount'],
      properties: { currency: { type: 'string', default: 'EUR' }, discountPct: { type: 'number', maximum: 100 } },
    });
    expect(renewalForm.steps.map((s: { action: string }) => s.action)).toEqual(['crm.discount.update', 'crm.note.create']);
    // Any signed-in person may read them; an unauthenticated caller may not.
    expect((await h.api('GET', '/v1/playbooks', keys.audrey!)).status).toBe(200);
    expect((await h.api('GET', '/v1/playbooks', null)).status).toBe(401);
  });

  it('runs a playbook in execute mode: both steps execute through the pipeline, with provenance', async () => {
    const created = await h.api('POST', '/v1/twins/vic-execute/objectives', keys.vic!, renewal({ account: 'acme', discountPct: 12, amount: '800.00', reason: 'competitor offer' }));
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: expect.any(String), status: 'queued', twin: 'vic-execute', owner: 'user:vic', planner: 'playbook', stepBudget: 20 });
    expect(created.body!.params).toEqual({ account: 'acme', discountPct: 12, amount: '800.00', currency: 'EUR', reason: 'competitor offer' });
    expect(created.headers.get('location')).toBe(`/v1/objectives/${created.body!.id}`);
    const done = await objective(created.body!.id);
    expect(done.status).toBe('completed');
    expect(done.summary).toMatch(/Set the renewal discount \(crm\.discount\.update\): executed.*Record it on the account \(crm\.note\.create\): executed/);
    expect(done.steps.map((s: { key: string; status: string }) => [s.key, s.status])).toEqual([
      ['discount', 'executed'],
      ['note', 'executed'],
    ]);
    expect(done.proposals).toHaveLength(2);
    expect(done.proposals[0]).toMatchObject({ action: 'crm.discount.update', status: 'executed', rationale: expect.stringContaining('competitor offer'), args: { account: 'acme', discountPct: 12 } });
    expect(done.stepsUsed).toBe(2);
    // The effect happened once, in the sandbox CRM.
    const acme = await readSandboxRecord(h.regent.db.sql, { system: 'crm', kind: 'account', key: 'acme' });
    expect(acme!.data.discountPct).toBe(12);
    // Each proposal records where it came from.
    const p = await h.regent.proposals!.get(done.proposals[0].id);
    expect(p.idempotencyKey).toBe(`${done.id}:discount`);
    expect(p.context).toMatchObject({ objective: done.id, run: done.id, step: 'discount', planner: 'playbook', playbook: 'renewal-discount', policyVersion: expect.stringMatching(/^sha256:/) });
    // The twin itself may read its objective; another executive may not.
    expect((await h.api('GET', `/v1/objectives/${done.id}`, keys['vic-execute']!)).status).toBe(200);
    expect((await h.api('GET', `/v1/objectives/${done.id}`, keys['vic-approve']!)).status).toBe(404);
    expect((await h.api('GET', `/v1/objectives/${done.id}`, keys.ivan!)).status).toBe(403);
    expect((await h.api('GET', `/v1/objectives/${done.id}`, keys.audrey!)).status).toBe(200);
    const list = await h.api('GET', '/v1/twins/vic-execute/objectives', keys.vic!);
    expect(list.body!.objectives.map((o: { id: string }) => o.id)).toContain(done.id);
  });

  it('waits for approval in approve mode, resumes after each approval, and completes', async () => {
    const created = await h.api('POST', '/v1/twins/vic-approve/objectives', keys.vic!, renewal({ account: 'globex', discountPct: 10, amount: '500.00' }));
    const id = created.body!.id as string;
    const waiting = await until(h, `/v1/objectives/${id}`, keys.vic!, ['waiting_for_approval']);
    expect(waiting.proposals).toHaveLength(1);
    expect(waiting.proposals[0]).toMatchObject({ action: 'crm.discount.update', status: 'pending_approval' });
    // Nothing ran yet: the note waits for the discount.
    const approved = await h.api('POST', `/v1/proposals/${waiting.proposals[0].id}/decisions`, keys.sara!, { decision: 'approve', comment: 'fine for a key account' });
    expect(approved.status).toBe(200);
    // The run resumes, executes the discount and asks for the note, which Vic approves (the grant names no
    // approvers, so the delegator decides, as an approver).
    const second = await untilMatch(h, `/v1/objectives/${id}`, keys.vic!, (o) => o.status === 'waiting_for_approval' && o.proposals.length === 2);
    expect(second.proposals.map((p: { status: string }) => p.status)).toEqual(['executed', 'pending_approval']);
    expect((await h.api('POST', `/v1/proposals/${second.proposals[1].id}/decisions`, keys.vic!, { decision: 'approve' })).status).toBe(200);
    const done = await objective(id);
    expect(done.status).toBe('completed');
    expect(done.proposals.map((p: { status: string }) => p.status)).toEqual(['executed', 'executed']);
  });

  it('stops when an approver rejects, with the approver’s reason in the summary and the step', async () => {
    const created = await h.api('POST', '/v1/twins/vic-approve/objectives', keys.vic!, renewal({ account: 'initech', discountPct: 18, amount: '900.00' }));
    const id = created.body!.id as string;
    const waiting = await until(h, `/v1/objectives/${id}`, keys.vic!, ['waiting_for_approval']);
    const rejected = await h.api('POST', `/v1/proposals/${waiting.proposals[0].id}/decisions`, keys.sara!, { decision: 'reject', comment: 'too deep for a standard account' });
    expect(rejected.status).toBe(200);
    const done = await objective(id);
    expect(done.status).toBe('failed');
    expect(done.summary).toContain('rejected by user:sara: too deep for a standard account');
    expect(done.steps).toEqual([expect.objectContaining({ key: 'discount', status: 'rejected', reasons: expect.arrayContaining(['rejected by user:sara: too deep for a standard account']) })]);
    // Rejected means not executed, and no note was asked for.
    expect(done.proposals).toHaveLength(1);
    const initech = await readSandboxRecord(h.regent.db.sql, { system: 'crm', kind: 'account', key: 'initech' });
    expect(initech?.data.discountPct ?? 0).toBe(0);
  });

  it('only proposes in propose mode: the objective completes and nothing executes', async () => {
    const before = await readSandboxRecord(h.regent.db.sql, { system: 'crm', kind: 'account', key: 'globex' });
    const created = await h.api('POST', '/v1/twins/vic-propose/objectives', keys.vic!, renewal({ account: 'globex', discountPct: 3, amount: '50.00' }));
    const done = await objective(created.body!.id);
    expect(done.status).toBe('completed');
    expect(done.proposals.map((p: { status: string }) => p.status)).toEqual(['proposed', 'proposed']);
    await new Promise((r) => setTimeout(r, 300));
    const after = await readSandboxRecord(h.regent.db.sql, { system: 'crm', kind: 'account', key: 'globex' });
    expect(after!.version).toBe(before!.version);
  });

  it('cancels a waiting objective and withdraws its pending request; cancelling again is a conflict', async () => {
    const created = await h.api('POST', '/v1/twins/vic-approve/objectives', keys.vic!, renewal({ account: 'acme', discountPct: 5, amount: '100.00' }));
    const id = created.body!.id as string;
    const waiting = await until(h, `/v1/objectives/${id}`, keys.vic!, ['waiting_for_approval']);
    // Only the owner (or an admin) may cancel.
    expect((await h.api('POST', `/v1/objectives/${id}/cancel`, keys.ivan!, {})).status).toBe(403);
    expect((await h.api('POST', `/v1/objectives/${id}/cancel`, keys.sara!, {})).status).toBe(403);
    const cancelled = await h.api('POST', `/v1/objectives/${id}/cancel`, keys.vic!, { reason: 'deal closed without a discount' });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ status: 'cancelled', summary: expect.stringContaining('cancelled by user:vic: deal closed without a discount') });
    const p = await h.api('GET', `/v1/proposals/${waiting.proposals[0].id}`, keys.vic!);
    expect(p.body!.status).toBe('cancelled');
    // An approval that comes too late changes nothing.
    expect((await h.api('POST', `/v1/proposals/${waiting.proposals[0].id}/decisions`, keys.sara!, { decision: 'approve' })).status).toBe(409);
    const again = await h.api('POST', `/v1/objectives/${id}/cancel`, keys.vic!, {});
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toMatch(/problem\+json/);
    expect(again.body!.detail).toMatch(/is cancelled; only an unfinished objective can be cancelled/);
    expect((await h.api('POST', `/v1/objectives/00000000-0000-4000-8000-000000000000/cancel`, keys.vic!, {})).status).toBe(404);
    // It stays cancelled: the runner does not pick it up again.
    await new Promise((r) => setTimeout(r, 400));
    expect((await h.api('GET', `/v1/objectives/${id}`, keys.vic!)).body!.status).toBe('cancelled');
  });

  it('keeps to its step budget: a request beyond it is refused and journaled, never submitted', async () => {
    const created = await h.api('POST', '/v1/twins/vic-limits/objectives', keys.vic!, renewal({ account: 'acme', discountPct: 6, amount: '60.00' }, { stepBudget: 1 }));
    const done = await objective(created.body!.id);
    // The note step may fail without stopping the playbook: the objective completes, the note refused.
    expect(done.status).toBe('completed');
    expect(done.stepsUsed).toBe(1);
    expect(done.proposals).toHaveLength(1);
    expect(done.summary).toMatch(/crm\.note\.create\): refused — step budget of 1 action requests is used up/);
    const refusals = await h.api('GET', `/v1/journal?kind=agent.refused&subject=objective:${done.id}`, keys.audrey!);
    expect(refusals.body!.entries).toEqual([
      expect.objectContaining({ actor: 'twin:vic-limits', data: expect.objectContaining({ action: 'crm.note.create', reason: 'step budget of 1 action requests is used up' }) }),
    ]);
  });

  it('keeps to its spend ceiling: a request above it is refused before it becomes a proposal', async () => {
    const created = await h.api(
      'POST',
      '/v1/twins/vic-limits/objectives',
      keys.vic!,
      renewal({ account: 'globex', discountPct: 9, amount: '800.00' }, { spendCeiling: { amount: '500.00', currency: 'EUR' } }),
    );
    const done = await objective(created.body!.id);
    expect(done.status).toBe('failed');
    expect(done.proposals).toHaveLength(0);
    expect(done.steps).toEqual([
      expect.objectContaining({
        key: 'discount',
        status: 'refused',
        proposalId: null,
        reasons: ["crm.discount.update for 800.00 EUR would bring this objective's requests to 800.00 EUR, above its spend ceiling of 500.00 EUR"],
      }),
    ]);
    const refusals = await h.api('GET', `/v1/journal?kind=agent.refused&subject=objective:${done.id}`, keys.audrey!);
    expect(refusals.body!.entries).toHaveLength(1);
  });

  it.each([
    ['free text without a model', { text: 'Get Acme to renew' }, /^playbook: no language model is configured .* must name a playbook: maintenance-from-prediction, renewal-discount, supplier-repricing/],
    ['an unknown field', { text: 'x', playbook: 'renewal-discount', params: {}, colour: 'red' }, /^body\.colour: is not a known field$/],
    ['an unknown playbook', { text: 'x', playbook: 'discount' }, /^playbook: there is no playbook "discount" \(available: maintenance-from-prediction, renewal-discount, supplier-repricing\)$/],
    ['params that do not fit', renewal({ account: 'acme', discountPct: 'twelve', amount: '1.00' }), /^params\.discountPct: /],
    ['a missing param', renewal({ account: 'acme', amount: '1.00' }), /^params\.discountPct: is required by playbook renewal-discount \(New discount in percent\)$/],
    ['params without a playbook', { text: 'x', params: { a: 1 } }, /^params: only a playbook takes params/],
    ['a deadline in the past', renewal({ account: 'acme', discountPct: 1, amount: '1.00' }, { deadline: '2020-01-01T00:00:00Z' }), /^constraints\.deadline: .* is already past$/],
    ['a ceiling in another currency', renewal({ account: 'acme', discountPct: 1, amount: '1.00' }, { spendCeiling: { amount: '10', currency: 'USD' } }), /must be in EUR, not USD/],
    ['a step budget of 0', renewal({ account: 'acme', discountPct: 1, amount: '1.00' }, { stepBudget: 0 }), /^body\.constraints\.stepBudget: /],
    ['empty text', { text: '   ', playbook: 'renewal-discount' }, /^body\.text: must say what the twin should achieve$/],
  ])('refuses %s with 400 problem+json, journaled, and creates nothing', async (_what, body, detail) => {
    const before = (await h.api('GET', '/v1/twins/vic-execute/objectives', keys.vic!)).body!.objectives.length;
    const r = await h.api('POST', '/v1/twins/vic-execute/objectives', keys.vic!, body);
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(r.body!.detail).toMatch(detail);
    const journaled = await h.api('GET', '/v1/journal?kind=objective.refused&subject=twin:vic-execute&limit=500', keys.audrey!);
    expect(journaled.body!.entries.some((e: { data: { reason: string } }) => e.data.reason === r.body!.detail)).toBe(true);
    expect((await h.api('GET', '/v1/twins/vic-execute/objectives', keys.vic!)).body!.objectives.length).toBe(before);
  });

  it('refuses a playbook whose actions the twin is not offered, naming them', async () => {
    const r = await h.api('POST', '/v1/twins/vic-notes/objectives', keys.vic!, renewal({ account: 'acme', discountPct: 1, amount: '1.00' }));
    expect(r.status).toBe(400);
    expect(r.body!.detail).toBe(
      'playbook: renewal-discount needs crm.discount.update (step discount), which twin vic-notes is not offered: its authority vic-notes does not grant it, or no connector offers it',
    );
  });

  it('lets only the twin’s owner assign objectives', async () => {
    const body = renewal({ account: 'acme', discountPct: 1, amount: '1.00' });
    expect((await h.api('POST', '/v1/twins/vic-execute/objectives', keys.ivan!, body)).status).toBe(403);
    // Admins run the installation but do not direct twins (separation of duties).
    expect((await h.api('POST', '/v1/twins/vic-execute/objectives', keys.admin!, body)).status).toBe(403);
    expect((await h.api('POST', '/v1/twins/vic-execute/objectives', keys['vic-execute']!, body)).status).toBe(403);
    expect((await h.api('POST', '/v1/twins/nobody/objectives', keys.vic!, body)).status).toBe(404);
    expect((await h.api('GET', '/v1/twins/vic-execute/objectives', keys.ivan!)).status).toBe(403);
    expect((await h.api('GET', '/v1/twins/vic-execute/objectives', keys.admin!)).status).toBe(200);
    const refused = await h.api('GET', '/v1/journal?kind=auth.refused&limit=500', keys.audrey!);
    expect(refused.body!.entries.some((e: { actor: string; data: { path: string } }) => e.actor === 'user:ivan' && e.data.path === '/v1/twins/vic-execute/objectives')).toBe(true);
  });

  it('journals every objective and every step, in a journal that verifies', async () => {
    await h.regent.objectives!.idle();
    const entries = await verifiedJournal(h.regent);
    const kinds = new Set(entries.map((e) => e.kind));
    for (const k of ['objective.created', 'objective.transitioned', 'objective.step', 'objective.refused', 'agent.refused']) expect(kinds).toContain(k);
    const created = entries.filter((e) => e.kind === 'objective.created');
    for (const c of created) {
      const id = c.subject!.slice('objective:'.length);
      const moves = entries.filter((e) => e.kind === 'objective.transitioned' && e.subject === c.subject).map((e) => `${e.data.from}>${e.data.to}`);
      // Every objective was started, and every one that finished says so exactly once.
      expect(moves[0]).toBe('queued>running');
      expect(moves.filter((m) => /(completed|failed|cancelled)$/.test(m)).length).toBe(1);
      const steps = entries.filter((e) => e.kind === 'objective.step' && e.subject === c.subject);
      for (const s of steps) expect(s.data).toMatchObject({ objective: id, proposal: expect.any(String), planner: 'playbook' });
    }
  });
});
