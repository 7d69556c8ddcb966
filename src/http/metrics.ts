/**
 * Prometheus metrics at GET /metrics, all named regent_*.
 *
 * Where they come from, without hooks in the pipeline's code:
 *  - The journal is the record of everything that happened (in every process), so the business
 *    series are read from it: on each scrape, the entries appended since the last one are read
 *    (only the few kinds that matter, in pages) and observed. These series are installation-wide
 *    and each process reports them from its own start: with several processes, aggregate them
 *    with max(), not sum() (or scrape one process for them).
 *      regent_decision_velocity_seconds   request → executed
 *      regent_approval_latency_seconds    request → the person's decision that settled it
 *      regent_human_reviews_total, regent_overrides_total   override rate = overrides / reviews that decide
 *      regent_policy_decisions_total, regent_denials_total, regent_exceptions_total
 *  - Gauges are read with one query each per scrape: pending queues, journal size.
 *  - Per process: HTTP requests, refusals and server errors, observed in the HTTP layer, and
 *    journal append latency, timed around the journal service's append methods.
 */
import type { RequestHandler } from 'express';
import client from 'prom-client';
import { timingSafeEqual } from 'node:crypto';
import { UnauthenticatedError } from '../errors/errors';
import type { JournalKind } from '../journal/contract';
import type { JournalQueryService, TailEntry } from '../journal/query';
import type { JournalService } from '../journal/service';
import type { ProposalStore } from '../proposals/store';
import { OPEN_STATUSES } from '../proposals/types';
import type { Logger } from '../log/logger';
import { OUTCOMES } from '../policy/types';
import { endpoint, implement, type Bound } from './registry';

export interface MetricsDeps {
  /** The database-backed series, read through the folders that own the tables. */
  storage?: { journal: Pick<JournalQueryService, 'tail' | 'stats'>; proposals: Pick<ProposalStore, 'countByStatus' | 'timings'> };
  journal: Partial<Pick<JournalService, 'head' | 'onAppended'>>;
  /** Requests executed with their decision in this process: transactions run, requests carried. */
  executedWithDecision?: () => { batches: number; requests: number };
  log: Logger;
}

const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 3 * 24 * 3600];
/** The journal kinds the business series are read from (contract.ts names them all). */
const TAIL_KINDS: readonly JournalKind[] = ['policy.decided', 'proposal.transitioned', 'proposal.reviewed', 'proposal.refused', 'proposal.reconciled'];
const TAIL_PAGE = 5000;
/** At most this many journal entries are read per scrape; the rest on the next ones. */
const TAIL_MAX_PER_SCRAPE = 100_000;

const PROPOSAL_SUBJECT = /^proposal:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

const seconds = (a: Date | string, b: Date | string) => Math.max(0, (new Date(a).getTime() - new Date(b).getTime()) / 1000);

export function createMetrics(deps: MetricsDeps) {
  const { storage, log } = deps;
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'regent_' });
  const r = [registry];

  const m = {
    httpRequests: new client.Counter({
      name: 'regent_http_requests_total',
      help: 'HTTP requests answered by this process, by route template and status',
      labelNames: ['method', 'route', 'status'],
      registers: r,
    }),
    httpDuration: new client.Histogram({
      name: 'regent_http_request_duration_seconds',
      help: 'HTTP request duration in this process, by route template',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: r,
    }),
    httpRefusals: new client.Counter({
      name: 'regent_http_refusals_total',
      help: 'Requests this process refused: 401 (no valid credentials), 403 (not allowed), 429 (rate limited)',
      labelNames: ['status'],
      registers: r,
    }),
    httpServerErrors: new client.Counter({
      name: 'regent_http_server_errors_total',
      help: 'Requests this process answered with a 5xx status (exceptions and unavailable dependencies)',
      labelNames: ['status'],
      registers: r,
    }),
    velocity: new client.Histogram({
      name: 'regent_decision_velocity_seconds',
      help: 'Time from a twin’s action request to its execution (installation-wide, from the journal); approval="required" when people approved it',
      labelNames: ['approval'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    }),
    approvalLatency: new client.Histogram({
      name: 'regent_approval_latency_seconds',
      help: 'Time from an action request to the human decision that settled it (approved: quorum reached; rejected), installation-wide',
      labelNames: ['decision'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    }),
    reviews: new client.Counter({
      name: 'regent_human_reviews_total',
      help: 'Human reviews of twin proposals by decision (approve, reject, edit, comment), installation-wide',
      labelNames: ['decision'],
      registers: r,
    }),
    overrides: new client.Counter({
      name: 'regent_overrides_total',
      help: 'Human overrides of twin proposals (edit, reject); override rate = overrides / reviews with decision approve|reject|edit',
      labelNames: ['kind'],
      registers: r,
    }),
    decisions: new client.Counter({
      name: 'regent_policy_decisions_total',
      help: 'Policy decisions on action requests by outcome (deny, propose, approve, execute), installation-wide',
      labelNames: ['outcome'],
      registers: r,
    }),
    denials: new client.Counter({
      name: 'regent_denials_total',
      help: 'Action requests denied: source="policy" (outcome deny) or "invalid_request" (refused before a decision), installation-wide',
      labelNames: ['source'],
      registers: r,
    }),
    exceptions: new client.Counter({
      name: 'regent_exceptions_total',
      help: 'Actions whose execution failed for good (connector errors after retries), installation-wide',
      labelNames: ['source'],
      registers: r,
    }),
    pending: new client.Gauge({
      name: 'regent_pending_queue_size',
      help: 'Open proposals by queue: approval (pending_approval), execution (approved or executing), proposed (for a person to act on)',
      labelNames: ['queue'],
      registers: r,
    }),
    inDoubt: new client.Gauge({
      name: 'regent_in_doubt',
      help: 'Actions in doubt: a call cut off after it was sent, outcome unknown, amount still reserved until a person settles it',
      registers: r,
    }),
    reconciliations: new client.Counter({
      name: 'regent_reconciliations_total',
      help: 'In-doubt actions settled, by outcome (executed, not_executed) and by whom (person, system: the connector’s status lookup), installation-wide',
      labelNames: ['outcome', 'by'],
      registers: r,
    }),
    journalEntries: new client.Gauge({ name: 'regent_journal_entries', help: 'Entries in the journal', registers: r }),
    journalCheckpoint: new client.Gauge({
      name: 'regent_journal_checkpoint_size',
      help: 'Size of the latest signed checkpoint',
      registers: r,
    }),
    journalBytes: new client.Gauge({
      name: 'regent_journal_bytes',
      help: 'Storage used by the journal table and its indexes',
      registers: r,
    }),
    appendLatency: new client.Histogram({
      name: 'regent_journal_append_seconds',
      help: 'Journal append latency in this process until committed: append (group-committed), batch, transaction (inside a state change)',
      labelNames: ['mode'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: r,
    }),
    withDecision: new client.Counter({
      name: 'regent_executed_with_decision_total',
      help: 'Requests executed together with their decision in this process (execute mode, in-database connector), counted as the transactions run and the requests they carried; requests / transactions is the batch size',
      labelNames: ['count'],
      registers: r,
      collect() {
        const s = deps.executedWithDecision?.();
        if (!s) return;
        this.reset();
        this.inc({ count: 'transactions' }, s.batches);
        this.inc({ count: 'requests' }, s.requests);
      },
    }),
    collectionErrors: new client.Counter({
      name: 'regent_metrics_collection_errors_total',
      help: 'Scrapes whose database-backed series could not be read (they keep their last values)',
      registers: r,
    }),
  };

  // Every label value known up front, so rates start at 0 rather than appearing late.
  for (const o of OUTCOMES) m.decisions.inc({ outcome: o }, 0);
  for (const d of ['approve', 'reject', 'edit', 'comment']) m.reviews.inc({ decision: d }, 0);
  for (const k of ['edit', 'reject']) m.overrides.inc({ kind: k }, 0);
  for (const s of ['policy', 'invalid_request']) m.denials.inc({ source: s }, 0);
  m.exceptions.inc({ source: 'execution' }, 0);
  for (const a of ['required', 'none']) m.velocity.zero({ approval: a });
  for (const d of ['approved', 'rejected']) m.approvalLatency.zero({ decision: d });
  for (const q of ['approval', 'execution', 'proposed']) m.pending.set({ queue: q }, 0);
  for (const outcome of ['executed', 'not_executed']) for (const by of ['person', 'system']) m.reconciliations.inc({ outcome, by }, 0);

  const stopTiming = deps.journal.onAppended?.((mode, s) => m.appendLatency.observe({ mode }, s)) ?? (() => undefined);

  // The journal is read from where it stood when this process started.
  let cursor: number | undefined;
  const baseline: Promise<number | undefined> = deps.journal.head
    ? deps.journal
        .head()
        .then((h) => h.size)
        .catch(() => undefined)
    : Promise.resolve(undefined);

  function observe(row: TailEntry, proposed: { createdAt: string; hadApproval: boolean } | undefined): void {
    // Read defensively: entries written before a kind's data gained a field lack it.
    const data = row.data;
    switch (row.kind as (typeof TAIL_KINDS)[number]) {
      case 'policy.decided':
        if (typeof data.outcome === 'string') {
          m.decisions.inc({ outcome: data.outcome });
          if (data.outcome === 'deny') m.denials.inc({ source: 'policy' });
        }
        break;
      case 'proposal.refused':
        m.denials.inc({ source: 'invalid_request' });
        break;
      case 'proposal.reconciled':
        if (data.outcome === 'executed' || data.outcome === 'not_executed')
          m.reconciliations.inc({ outcome: data.outcome, by: row.actor.startsWith('user:') ? 'person' : 'system' });
        break;
      case 'proposal.reviewed':
        if (typeof data.decision === 'string') {
          m.reviews.inc({ decision: data.decision });
          if (data.decision === 'edit' || data.decision === 'reject') m.overrides.inc({ kind: data.decision });
        }
        break;
      case 'proposal.transitioned': {
        const to = data.to;
        if (to === 'failed') m.exceptions.inc({ source: 'execution' });
        if (!proposed) break;
        if (to === 'executed') m.velocity.observe({ approval: proposed.hadApproval ? 'required' : 'none' }, seconds(row.ts, proposed.createdAt));
        if ((to === 'approved' || to === 'rejected') && data.from === 'pending_approval' && row.actor.startsWith('user:')) {
          m.approvalLatency.observe({ decision: to }, seconds(row.ts, proposed.createdAt));
        }
        break;
      }
    }
  }

  async function readJournal(store: NonNullable<MetricsDeps['storage']>): Promise<number> {
    const { size, checkpoint, bytes } = await store.journal.stats();
    if (cursor === undefined) cursor = (await baseline) ?? size;
    let read = 0;
    while (cursor < size && read < TAIL_MAX_PER_SCRAPE) {
      const rows = await store.journal.tail(cursor, size, TAIL_KINDS, TAIL_PAGE);
      // The proposals' creation times and approval flags, for the latency series, in one read a page.
      const ids = [...new Set(rows.flatMap((r) => (r.kind === 'proposal.transitioned' ? [PROPOSAL_SUBJECT.exec(r.subject ?? '')?.[1]] : [])).filter((x): x is string => !!x))];
      const timings = await store.proposals.timings(ids);
      for (const row of rows) observe(row, timings.get(PROPOSAL_SUBJECT.exec(row.subject ?? '')?.[1] ?? ''));
      read += rows.length;
      cursor = rows.length < TAIL_PAGE ? size : rows[rows.length - 1]!.seq;
    }
    m.journalEntries.set(size);
    m.journalCheckpoint.set(checkpoint);
    m.journalBytes.set(bytes);
    return size;
  }

  async function readGauges(store: NonNullable<MetricsDeps['storage']>): Promise<void> {
    const count = await store.proposals.countByStatus([...OPEN_STATUSES, 'proposed']);
    m.pending.set({ queue: 'approval' }, count.pending_approval!);
    m.pending.set({ queue: 'execution' }, count.approved! + count.executing!);
    m.pending.set({ queue: 'proposed' }, count.proposed!);
    m.inDoubt.set(count.in_doubt!);
  }

  let refreshing: Promise<void> | undefined;
  /** Brings the database-backed series up to date (one refresh at a time; concurrent scrapes share it). */
  function refresh(): Promise<void> {
    if (!storage) return Promise.resolve();
    refreshing ??= (async () => {
      try {
        await readJournal(storage);
        await readGauges(storage);
      } catch (err) {
        m.collectionErrors.inc();
        log.warn('metrics: could not read the database-backed series', { error: err });
      } finally {
        refreshing = undefined;
      }
    })();
    return refreshing;
  }

  /** Observes every answered request (route template, not the raw path, to keep labels bounded). */
  const middleware: RequestHandler = (req, res, next) => {
    const end = m.httpDuration.startTimer();
    res.on('finish', () => {
      const route = req.route?.path ? String(req.route.path) : res.statusCode === 404 ? 'unmatched' : 'other';
      const labels = { method: req.method, route };
      end(labels);
      const status = res.statusCode;
      m.httpRequests.inc({ ...labels, status: String(status) });
      if (status === 401 || status === 403 || status === 429) m.httpRefusals.inc({ status: String(status) });
      if (status >= 500) m.httpServerErrors.inc({ status: String(status) });
    });
    next();
  };

  return {
    registry,
    middleware,
    refresh,
    async text(): Promise<string> {
      await refresh();
      return registry.metrics();
    },
    contentType: registry.contentType,
    /** Stops timing journal appends for this registry. */
    stop: stopTiming,
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

export const metricsEndpoint = endpoint({
  id: 'metrics',
  method: 'GET',
  path: '/metrics',
  tag: 'System',
  summary: 'Prometheus metrics (text exposition format), all named regent_*',
  description:
    'Open like /healthz unless REGENT_METRICS_TOKEN is set; then send `Authorization: Bearer <that token>`. Business series come from the journal and are installation-wide (aggregate with max() across processes); HTTP and append-latency series are per process.',
  access: { public: true, note: 'a bearer token when REGENT_METRICS_TOKEN is set' },
  responses: { 200: { description: 'The metrics', media: { 'text/plain': { description: 'Prometheus text format 0.0.4' } } } },
  errors: { 401: 'REGENT_METRICS_TOKEN is set and the request does not carry it' },
});

function tokenMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function metricsRoute(metrics: Metrics, token: string | undefined): Bound {
  return implement(metricsEndpoint, async (_input, req, res) => {
    if (token) {
      const given = /^Bearer +(\S+) *$/i.exec(req.get('authorization') ?? '')?.[1];
      if (!given || !tokenMatches(given, token)) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="regent-metrics"');
        throw new UnauthenticatedError('/metrics needs the metrics token (REGENT_METRICS_TOKEN): send Authorization: Bearer <token>');
      }
    }
    const body = await metrics.text();
    res.setHeader('Content-Type', metrics.contentType);
    res.send(body);
    return undefined;
  });
}
