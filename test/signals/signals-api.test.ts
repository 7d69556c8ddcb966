import { describeEachDatabase } from '../support/databases';
import { addPeople, addTwin, makePolicies, startRegent, until, verifiedJournal, type Harness } from '../objectives/support';

const failure = (id: string, payload: Record<string, unknown>) => ({
  id,
  type: 'machine.failure_predicted',
  source: 'plant-berlin-digital-twin',
  occurredAt: '2026-11-20T06:00:00Z',
  payload,
});

/**
 * Signals over HTTP with the shipped standing rules: a predicted failure becomes the maintenance
 * playbook on ops-twin, runs end to end, and a repeated signal id starts nothing new.
 */
describeEachDatabase('signals over HTTP', (getDb) => {
  let h: Harness;
  let keys: Record<string, string>;

  beforeAll(async () => {
    h = await startRegent(getDb(), makePolicies(), { env: { REGENT_AGENT_RATE_PER_MINUTE: '1000' } });
    keys = await addPeople(h);
    keys['ops-twin'] = await addTwin(h, keys.olga!, 'olga', 'ops-twin', 'execute');
  });
  afterAll(async () => h?.close());

  const objectivesOf = async (twin: string) => (await h.api('GET', `/v1/twins/${twin}/objectives`, keys.olga!)).body!.objectives as Array<Record<string, any>>;

  it('turns a predicted failure into the maintenance playbook, which runs to completion', async () => {
    const r = await h.api('POST', '/v1/signals', keys.admin!, failure('pred-1', { asset: 'press-7', probability: 0.95, window: '2026-11-21T06:00Z/2026-11-21T10:00Z', predictedFailureAt: 'within 48 h', estimatedCost: '4800.00' }));
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      id: 'pred-1',
      type: 'machine.failure_predicted',
      objectives: [{ id: expect.any(String), twin: 'ops-twin', playbook: 'maintenance-from-prediction', rule: 'failure-prediction-urgent', status: 'queued' }],
      skipped: [{ rule: 'failure-prediction-maintenance', reason: expect.stringMatching(/conditions not met/) }],
      note: null,
    });
    const id = r.body!.objectives[0].id as string;
    const done = await until(h, `/v1/objectives/${id}`, keys.olga!, ['completed', 'failed']);
    expect(done).toMatchObject({
      status: 'completed',
      signal: 'pred-1',
      createdBy: 'user:admin',
      owner: 'user:olga',
      stepBudget: 4,
      params: { asset: 'press-7', priority: 'urgent', probability: 0.95, estimatedCost: '4800.00', window: '2026-11-21T06:00Z/2026-11-21T10:00Z', currency: 'EUR' },
    });
    expect(Date.parse(done.deadline) - Date.parse(done.createdAt)).toBeGreaterThan(23 * 3600_000);
    expect(done.proposals.map((p: { action: string; status: string }) => `${p.action}:${p.status}`)).toEqual([
      'maintenance.workorder.create:executed',
      'sandbox.email.send:executed',
    ]);
    expect(done.proposals[0].args).toEqual({ asset: 'press-7', window: '2026-11-21T06:00Z/2026-11-21T10:00Z', priority: 'urgent', amount: '4800.00', currency: 'EUR' });
    expect(done.proposals[1].args).toMatchObject({ to: ['maintenance@example.com'], dataClass: 'internal', body: expect.stringContaining('Schedule urgent maintenance of press-7') });
  });

  it('answers a repeated id with the first result and starts nothing new; different content is a conflict', async () => {
    const before = (await objectivesOf('ops-twin')).length;
    const body = failure('pred-1', { asset: 'press-7', probability: 0.95, window: '2026-11-21T06:00Z/2026-11-21T10:00Z', predictedFailureAt: 'within 48 h', estimatedCost: '4800.00' });
    const again = await h.api('POST', '/v1/signals', keys.admin!, body);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const first = await h.api('GET', '/v1/signals/pred-1', keys.admin!);
    expect(again.body).toEqual(first.body);
    const changed = await h.api('POST', '/v1/signals', keys.admin!, { ...body, payload: { ...body.payload, probability: 0.99 } });
    expect(changed.status).toBe(409);
    expect(changed.body!.detail).toBe('signal pred-1 was already received with different content; a new event needs a new id');
    // Concurrent repeats of a new id also start exactly one objective.
    const burst = await Promise.all(
      [1, 2, 3].map(() => h.api('POST', '/v1/signals', keys.admin!, failure('pred-2', { asset: 'pump-3', probability: 0.6, window: 'tomorrow 06:00-10:00', estimatedCost: '900.00' }))),
    );
    expect(burst.map((b) => b.status).sort()).toEqual([200, 200, 201]);
    expect(new Set(burst.map((b) => b.body!.objectives[0].id)).size).toBe(1);
    expect((await objectivesOf('ops-twin')).length).toBe(before + 1);
  });

  it('records a signal whose conditions no rule meets, or which no rule answers, without starting anything', async () => {
    const before = (await objectivesOf('ops-twin')).length;
    const low = await h.api('POST', '/v1/signals', keys.admin!, failure('pred-3', { asset: 'chiller-2', probability: 0.2, window: 'next week', estimatedCost: '100.00' }));
    expect(low.status).toBe(201);
    expect(low.body).toMatchObject({ objectives: [], skipped: [{ rule: 'failure-prediction-maintenance' }, { rule: 'failure-prediction-urgent' }] });
    const unknown = await h.api('POST', '/v1/signals', keys.admin!, { id: 'hr-1', type: 'hr.employee_joined', source: 'hris', payload: { name: 'x' } });
    expect(unknown.status).toBe(201);
    expect(unknown.body).toMatchObject({ objectives: [], note: 'no standing rule answers signals of type hr.employee_joined (policies/signals)' });
    expect((await objectivesOf('ops-twin')).length).toBe(before);
  });

  it.each([
    ['a payload that does not fit the rule', failure('bad-1', { probability: 0.9, window: 'x', estimatedCost: '1.00' }), 400, /^payload\.asset: .*\(signal rule failure-prediction-maintenance, .*failure-prediction\.yaml:\d+, expects it for machine\.failure_predicted\)$/],
    ['an unknown field', { ...failure('bad-2', {}), priority: 'high' }, 400, /^body\.priority: is not a known field$/],
    ['a malformed type', { id: 'bad-3', type: 'Failure!', source: 'x', payload: {} }, 400, /^body\.type: must be a dotted lower-case name/],
    ['a bad id', { id: ' spaces ', type: 'machine.failure_predicted', source: 'x', payload: {} }, 400, /^body\.id: /],
    ['a rule whose twin does not exist', { id: 'churn-1', type: 'crm.churn_risk', source: 'crm', payload: { account: 'acme', riskScore: 0.9, suggestedDiscountPct: 10, discountValue: '900.00' } }, 409, /^signal rule churn-risk-renewal \(.*churn-risk\.yaml:\d+\): no twin vp-sales-twin$/],
  ])('refuses %s, journals the refusal and records nothing', async (_what, body, status, detail) => {
    const r = await h.api('POST', '/v1/signals', keys.admin!, body);
    expect(r.status).toBe(status);
    expect(r.headers.get('content-type')).toMatch(/problem\+json/);
    expect(r.body!.detail).toMatch(detail);
    const id = (body as { id: string }).id;
    expect((await h.api('GET', `/v1/signals/${encodeURIComponent(id)}`, keys.admin!)).status).toBe(404);
    const refused = await h.api('GET', '/v1/journal?kind=signal.refused&limit=500', keys.audrey!);
    expect(refused.body!.entries.some((e: { data: { reason: string } }) => e.data.reason === r.body!.detail)).toBe(true);
  });

  it('takes signals only from keys that hold signal.submit', async () => {
    const body = failure('auth-1', { asset: 'press-7', probability: 0.7, window: 'x' });
    expect((await h.api('POST', '/v1/signals', keys.olga!, body)).status).toBe(403);
    expect((await h.api('POST', '/v1/signals', keys['ops-twin']!, body)).status).toBe(403);
    expect((await h.api('POST', '/v1/signals', null, body)).status).toBe(401);
    expect((await h.api('GET', '/v1/signals/auth-1', keys.admin!)).status).toBe(404);
  });

  it('journals every signal, and the journal verifies', async () => {
    await h.regent.objectives!.idle();
    const entries = await verifiedJournal(h.regent);
    const received = entries.filter((e) => e.kind === 'signal.received').map((e) => e.subject);
    expect(received).toEqual(['signal:pred-1', 'signal:pred-2', 'signal:pred-3', 'signal:hr-1']);
    const created = entries.filter((e) => e.kind === 'objective.created' && e.data.signal === 'pred-1');
    expect(created).toHaveLength(1);
  });
});
