import { createHttpApp } from '../../src/http/app';
import { listen } from '../../src/http/server';
import { call } from '../support/api';
import { silentLog } from '../support/journal';
import { describeEachDatabase } from '../support/databases';
import { startRegentApi, vicAuthority, type RegentApi } from '../support/regent-api';

/** Prometheus text → series name with labels → value. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

describeEachDatabase('/metrics', (getDb) => {
  let api: RegentApi;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    api = await startRegentApi(getDb(), {
      extraPolicies: { 'authorities/metrics-twin.yaml': vicAuthority('metrics-twin') },
      http: { rateLimitPerMinute: 0 },
      start: true,
    });
    const { people, twins } = api.regent;
    keys.vic = (await people.addUser({ id: 'vic', name: 'Vic', roles: ['executive'] }, 'system')).apiKey;
    keys.sara = (await people.addUser({ id: 'sara', name: 'Sara', roles: ['approver', 'sales-director'] }, 'system')).apiKey;
    keys.twin = (await twins.create({ id: 'metrics-twin', owner: 'user:vic', authority: 'metrics-twin', mode: 'execute' }, 'system')).apiKey;
  });
  afterAll(async () => {
    await api?.close();
  });

  const scrape = async () => {
    const res = await fetch(`${api.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    return { text, series: parse(text) };
  };

  async function until(id: string, statuses: string[]) {
    for (let i = 0; i < 300; i++) {
      const p = await api.regent.proposals!.get(id);
      if (statuses.includes(p.status)) return p;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`proposal ${id} never became ${statuses.join('|')}`);
  }

  const propose = async (action: string, args: Record<string, unknown>, key: string) =>
    (await call(`${api.url}/v1/proposals`, 'POST', keys.twin!, { action, args, rationale: 'metrics', idempotencyKey: key })).body!;

  it('names every series regent_*', async () => {
    const { text } = await scrape();
    const names = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(20);
    expect(names.filter((n) => !n.startsWith('regent_'))).toEqual([]);
    for (const n of [
      'regent_decision_velocity_seconds',
      'regent_approval_latency_seconds',
      'regent_overrides_total',
      'regent_human_reviews_total',
      'regent_policy_decisions_total',
      'regent_denials_total',
      'regent_exceptions_total',
      'regent_pending_queue_size',
      'regent_journal_entries',
      'regent_journal_append_seconds',
      'regent_http_requests_total',
      'regent_process_cpu_user_seconds_total',
    ]) expect(names).toContain(n);
  });

  it('observes the pipeline: velocity, approval latency, overrides, decisions, denials, exceptions, queues, journal', async () => {
    const before = (await scrape()).series;
    const at = (s: Map<string, number>, k: string) => s.get(k) ?? 0;
    const delta = (after: Map<string, number>, k: string) => at(after, k) - at(before, k);

    // Executed at once (execute mode, no approval), and one that fails in the connector.
    const note = await propose('crm.note.create', { account: 'acme', text: 'hello' }, 'm-note');
    const broken = await propose('crm.note.create', { account: 'no-such-account', text: 'x' }, 'm-broken');
    // Waits for a person: approved by Sara, then executed.
    const approved = await propose('crm.discount.update', { account: 'acme', discountPct: 20, amount: '100.00', currency: 'EUR' }, 'm-appr');
    expect(approved.status).toBe('pending_approval');
    expect((await call(`${api.url}/v1/proposals/${approved.id}/decisions`, 'POST', keys.sara!, { decision: 'approve' })).status).toBe(200);
    // Overridden: one rejected, one edited (and left pending).
    const rejected = await propose('crm.discount.update', { account: 'globex', discountPct: 25, amount: '100.00', currency: 'EUR' }, 'm-rej');
    expect((await call(`${api.url}/v1/proposals/${rejected.id}/decisions`, 'POST', keys.sara!, { decision: 'reject', comment: 'too much' })).status).toBe(200);
    const edited = await propose('crm.discount.update', { account: 'initech', discountPct: 22, amount: '100.00', currency: 'EUR' }, 'm-edit');
    const edit = await call(`${api.url}/v1/proposals/${edited.id}/decisions`, 'POST', keys.sara!, {
      decision: 'edit',
      args: { account: 'initech', discountPct: 18, amount: '100.00', currency: 'EUR' },
    });
    expect(edit.body!.status).toBe('pending_approval');
    // Denied by policy (no grant), and refused before a decision (bad args).
    expect((await propose('crm.discount.update', { account: 'acme', discountPct: 50, amount: '1.00', currency: 'EUR' }, 'm-deny')).status).toBe('denied');
    expect((await call(`${api.url}/v1/proposals`, 'POST', keys.twin!, { action: 'crm.note.create', args: { account: 'acme' }, rationale: 'x', idempotencyKey: 'm-bad' })).status).toBe(400);
    // Refusals over HTTP.
    expect((await call(`${api.url}/v1/users`, 'GET', keys.vic!)).status).toBe(403);
    expect((await call(`${api.url}/v1/users`, 'GET', null)).status).toBe(401);

    await until(note.id, ['executed']);
    await until(approved.id, ['executed']);
    await until(broken.id, ['failed']);

    const after = (await scrape()).series;
    expect(delta(after, 'regent_decision_velocity_seconds_count{approval="none"}')).toBe(1);
    expect(delta(after, 'regent_decision_velocity_seconds_count{approval="required"}')).toBe(1);
    expect(delta(after, 'regent_approval_latency_seconds_count{decision="approved"}')).toBe(1);
    expect(delta(after, 'regent_approval_latency_seconds_count{decision="rejected"}')).toBe(1);
    expect(at(after, 'regent_approval_latency_seconds_sum{decision="approved"}')).toBeGreaterThan(0);
    expect(delta(after, 'regent_human_reviews_total{decision="approve"}')).toBe(1);
    expect(delta(after, 'regent_overrides_total{kind="reject"}')).toBe(1);
    expect(delta(after, 'regent_overrides_total{kind="edit"}')).toBe(1);
    expect(delta(after, 'regent_policy_decisions_total{outcome="deny"}')).toBe(1);
    expect(delta(after, 'regent_policy_decisions_total{outcome="execute"}')).toBe(2);
    // Three requests and one re-decision after the edit.
    expect(delta(after, 'regent_policy_decisions_total{outcome="approve"}')).toBe(4);
    expect(delta(after, 'regent_denials_total{source="policy"}')).toBe(1);
    expect(delta(after, 'regent_denials_total{source="invalid_request"}')).toBe(1);
    expect(delta(after, 'regent_exceptions_total{source="execution"}')).toBe(1);
    expect(at(after, 'regent_pending_queue_size{queue="approval"}')).toBe(1);
    expect(at(after, 'regent_pending_queue_size{queue="execution"}')).toBe(0);
    expect(at(after, 'regent_journal_entries')).toBe((await api.regent.journal.head()).size);
    expect(at(after, 'regent_journal_bytes')).toBeGreaterThan(0);
    expect(delta(after, 'regent_journal_append_seconds_count{mode="transaction"}')).toBeGreaterThanOrEqual(6);
    expect(delta(after, 'regent_http_refusals_total{status="403"}')).toBe(1);
    expect(delta(after, 'regent_http_refusals_total{status="401"}')).toBe(1);
    expect(delta(after, 'regent_http_requests_total{method="POST",route="/v1/proposals/:id/decisions",status="200"}')).toBe(3);
    expect(at(after, 'regent_metrics_collection_errors_total')).toBe(0);
  });

  it('counts requests executed with their decision, and the transactions that carried them', async () => {
    const key = (k: string) => `regent_executed_with_decision_total{count="${k}"}`;
    const before = (await scrape()).series;
    // The demo data exists by now (an earlier execution wrote it): these execute with the decision.
    const done = await Promise.all([1, 2, 3].map((i) => propose('crm.note.create', { account: 'acme', text: `note ${i}` }, `m-with-${i}`)));
    expect(done.map((p) => p.status)).toEqual(['executed', 'executed', 'executed']);
    const after = (await scrape()).series;
    expect((after.get(key('requests')) ?? 0) - (before.get(key('requests')) ?? 0)).toBe(3);
    const transactions = (after.get(key('transactions')) ?? 0) - (before.get(key('transactions')) ?? 0);
    expect(transactions).toBeGreaterThanOrEqual(1);
    expect(transactions).toBeLessThanOrEqual(3);
  });

  it('asks for the metrics token when one is configured', async () => {
    const r = api.regent;
    const app = createHttpApp({ db: r.db, journal: r.journal, people: r.people, twins: r.twins, log: silentLog, http: { metricsToken: 'a-metrics-token-0123456789' } });
    const guarded = await listen(app, '127.0.0.1', 0, silentLog);
    try {
      const none = await fetch(`${guarded.url}/metrics`);
      expect(none.status).toBe(401);
      expect(none.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(((await none.json()) as { detail: string }).detail).toMatch(/REGENT_METRICS_TOKEN/);
      expect((await fetch(`${guarded.url}/metrics`, { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status).toBe(401);
      const ok = await fetch(`${guarded.url}/metrics`, { headers: { authorization: 'Bearer a-metrics-token-0123456789' } });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toMatch(/^# HELP regent_/m);
    } finally {
      await guarded.close(500);
    }
  });
});
