import { randomUUID } from 'node:crypto';
import type { Sql, SqlTx } from '../db/sql';
import type { Decision } from '../policy/types';
import { joinTwinNotHaltedSql } from '../twins/store';
import type { ApprovalState, AuditVerdict, InDoubt, Proposal, ProposalStatus, Reconciliation, Review, ReviewDecision } from './types';

/** SQL for proposals and their reviews; the same statements on PGlite and PostgreSQL. */

interface Row {
  id: string;
  twin_id: string;
  action: string;
  args: Record<string, unknown>;
  args_hash: string;
  rationale: string;
  idempotency_key: string;
  status: ProposalStatus;
  decision: Decision;
  policy_version: string;
  approval: ApprovalState | null;
  expires_at: Date | null;
  attempts: number;
  result: Record<string, unknown> | null;
  error: string | null;
  audit: AuditVerdict | null;
  context: Record<string, unknown> | null;
  in_doubt: InDoubt | null;
  reconciliation: Reconciliation | null;
  created_at: Date;
  updated_at: Date;
}

const iso = (d: Date | string | null) => (d === null ? null : (d instanceof Date ? d : new Date(d)).toISOString());

const toProposal = (r: Row): Proposal => ({
  id: r.id,
  twin: r.twin_id,
  action: r.action,
  args: r.args,
  argsHash: r.args_hash.trim(),
  rationale: r.rationale,
  idempotencyKey: r.idempotency_key,
  status: r.status,
  decision: r.decision,
  policyVersion: r.policy_version,
  approval: r.approval,
  expiresAt: iso(r.expires_at),
  attempts: r.attempts,
  result: r.result,
  error: r.error,
  audit: r.audit,
  context: r.context,
  inDoubt: r.in_doubt,
  reconciliation: r.reconciliation,
  createdAt: iso(r.created_at)!,
  updatedAt: iso(r.updated_at)!,
});

const COLUMNS =
  'id, twin_id, action, args, args_hash, rationale, idempotency_key, status, decision, policy_version, approval, expires_at, attempts, result, error, audit, context, in_doubt, reconciliation, created_at, updated_at';

export interface NewProposal {
  twin: string;
  action: string;
  args: Record<string, unknown>;
  argsHash: string;
  rationale: string;
  idempotencyKey: string;
  status: ProposalStatus;
  decision: Decision;
  approval: ApprovalState | null;
  expiresAt: string | null;
  audit: AuditVerdict | null;
  context: Record<string, unknown> | null;
  /** Set when the proposal is recorded already executed (executed together with its decision). */
  result?: Record<string, unknown> | null;
  attempts?: number;
}

export type ProposalPatch = Partial<
  Pick<Proposal, 'status' | 'args' | 'argsHash' | 'decision' | 'policyVersion' | 'approval' | 'expiresAt' | 'result' | 'error' | 'audit' | 'inDoubt' | 'reconciliation'>
> & {
  nextAttemptAt?: string | null;
  claimedBy?: string | null;
  claimedUntil?: string | null;
};

const PATCH_COLUMNS: Record<keyof ProposalPatch, [string, string]> = {
  status: ['status', ''],
  args: ['args', '::jsonb'],
  argsHash: ['args_hash', ''],
  decision: ['decision', '::jsonb'],
  policyVersion: ['policy_version', ''],
  approval: ['approval', '::jsonb'],
  expiresAt: ['expires_at', '::timestamptz'],
  result: ['result', '::jsonb'],
  error: ['error', ''],
  audit: ['audit', ''],
  inDoubt: ['in_doubt', '::jsonb'],
  reconciliation: ['reconciliation', '::jsonb'],
  nextAttemptAt: ['next_attempt_at', '::timestamptz'],
  claimedBy: ['claimed_by', ''],
  claimedUntil: ['claimed_until', '::timestamptz'],
};

const JSON_FIELDS = new Set(['args', 'decision', 'approval', 'result', 'inDoubt', 'reconciliation']);

/**
 * A SQL condition for another folder's hot query (the objective runner's claim): the proposal
 * whose id is the SQL expression `id` exists and its status is not `status` (a SQL expression
 * too: columns, never user input). An EXISTS the planner can turn into a join.
 */
export const proposalStatusDiffersSql = (id: string, status: string): string =>
  `EXISTS (SELECT 1 FROM proposals WHERE proposals.id = ${id} AND proposals.status IS DISTINCT FROM ${status})`;

export function createProposalStore(sql: Sql) {
  return {
    transaction: sql.transaction.bind(sql) as Sql['transaction'],

    /** Inserts, or returns the existing proposal with the same (twin, idempotency key). */
    async insert(p: NewProposal & { id?: string }, tx: Pick<Sql, 'query'> = sql): Promise<{ proposal: Proposal; created: boolean }> {
      const [inserted] = await this.insertMany(tx, [{ ...p, id: p.id ?? randomUUID() }]);
      if (inserted) return { proposal: inserted, created: true };
      const existing = await this.byIdempotencyKey(p.twin, p.idempotencyKey, tx);
      if (!existing) throw new Error('proposal vanished after an idempotency conflict');
      return { proposal: existing, created: false };
    },

    /**
     * Inserts several new proposals in one statement. Returns those inserted, in order; one whose
     * (twin, idempotency key) is taken is left out (the caller compares the counts).
     */
    async insertMany(tx: Pick<Sql, 'query'>, ps: readonly (NewProposal & { id: string })[]): Promise<Proposal[]> {
      if (ps.length === 0) return [];
      const rows = await tx.query<Pick<Row, 'id' | 'expires_at' | 'created_at' | 'updated_at'>>(
        `INSERT INTO proposals (id, twin_id, action, args, args_hash, rationale, idempotency_key, status, decision, policy_version, approval, expires_at, audit, context, result, attempts)
         SELECT x.id, x.twin_id, x.action, x.args, x.args_hash, x.rationale, x.idempotency_key, x.status, x.decision, x.policy_version, x.approval, x.expires_at, x.audit, x.context, x.result, x.attempts
           FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, twin_id text, action text, args jsonb, args_hash text, rationale text, idempotency_key text, status text, decision jsonb, policy_version text, approval jsonb, expires_at timestamptz, audit text, context jsonb, result jsonb, attempts int)
         ON CONFLICT (twin_id, idempotency_key) DO NOTHING
         RETURNING id, expires_at, created_at, updated_at`,
        [
          JSON.stringify(
            ps.map((p) => ({
              id: p.id,
              twin_id: p.twin,
              action: p.action,
              args: p.args,
              args_hash: p.argsHash,
              rationale: p.rationale,
              idempotency_key: p.idempotencyKey,
              status: p.status,
              decision: p.decision,
              policy_version: p.decision.policyVersion,
              approval: p.approval,
              expires_at: p.expiresAt,
              audit: p.audit,
              context: p.context,
              result: p.result ?? null,
              attempts: p.attempts ?? 0,
            })),
          ),
        ],
      );
      // Only what the database adds comes back: the rest is what was sent (not parsed again).
      const byId = new Map(rows.map((r) => [r.id, r]));
      return ps.flatMap((p): Proposal[] => {
        const r = byId.get(p.id);
        if (!r) return [];
        return [
          {
            id: p.id,
            twin: p.twin,
            action: p.action,
            args: p.args,
            argsHash: p.argsHash,
            rationale: p.rationale,
            idempotencyKey: p.idempotencyKey,
            status: p.status,
            decision: p.decision,
            policyVersion: p.decision.policyVersion,
            approval: p.approval,
            expiresAt: iso(r.expires_at),
            attempts: p.attempts ?? 0,
            result: p.result ?? null,
            error: null,
            audit: p.audit,
            context: p.context,
            inDoubt: null,
            reconciliation: null,
            createdAt: iso(r.created_at)!,
            updatedAt: iso(r.updated_at)!,
          },
        ];
      });
    },

    async byIdempotencyKey(twin: string, key: string, tx: Pick<Sql, 'query'> = sql): Promise<Proposal | undefined> {
      const rows = await tx.query<Row>(`SELECT ${COLUMNS} FROM proposals WHERE twin_id = $1 AND idempotency_key = $2`, [twin, key]);
      return rows[0] && toProposal(rows[0]);
    },

    /** The idempotency keys starting with `prefix` of proposals made since `since`, with when (e.g. the keys /mcp derived). */
    async keysSince(prefix: string, since: Date): Promise<{ key: string; createdAt: number }[]> {
      const rows = await sql.query<{ key: string; created_at: Date | string }>(
        'SELECT idempotency_key AS key, created_at FROM proposals WHERE created_at > $1 AND starts_with(idempotency_key, $2)',
        [since.toISOString(), prefix],
      );
      return rows.map((r) => ({ key: r.key, createdAt: new Date(r.created_at).getTime() }));
    },

    async get(id: string, tx: Pick<Sql, 'query'> = sql): Promise<Proposal | undefined> {
      if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
      const rows = await tx.query<Row>(`SELECT ${COLUMNS} FROM proposals WHERE id = $1`, [id]);
      return rows[0] && toProposal(rows[0]);
    },

    /** Reads and locks the row for a status change: concurrent changes wait, then see the result. */
    async lock(tx: SqlTx, id: string): Promise<(Proposal & { claimedBy: string | null }) | undefined> {
      if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
      const rows = await tx.query<Row & { claimed_by: string | null }>(`SELECT ${COLUMNS}, claimed_by FROM proposals WHERE id = $1 FOR UPDATE`, [id]);
      return rows[0] && { ...toProposal(rows[0]), claimedBy: rows[0].claimed_by };
    },

    async update(tx: SqlTx, id: string, patch: ProposalPatch): Promise<Proposal> {
      return (await this.updateWhere(tx, id, patch, ''))!;
    },

    /** Updates an executing proposal only while `executor` holds its claim; undefined otherwise. */
    updateClaimed(tx: SqlTx, id: string, executor: string, patch: ProposalPatch): Promise<Proposal | undefined> {
      return this.updateWhere(tx, id, patch, ` AND status = 'executing' AND claimed_by = $${Object.values(patch).filter((v) => v !== undefined).length + 2}`, [executor]);
    },

    async updateWhere(tx: SqlTx, id: string, patch: ProposalPatch, condition: string, extra: unknown[] = []): Promise<Proposal | undefined> {
      const sets: string[] = ['updated_at = now()'];
      const params: unknown[] = [id];
      for (const [k, v] of Object.entries(patch) as [keyof ProposalPatch, unknown][]) {
        if (v === undefined) continue;
        const [col, cast] = PATCH_COLUMNS[k];
        params.push(JSON_FIELDS.has(k) && v !== null ? JSON.stringify(v) : v);
        sets.push(`${col} = $${params.length}${cast}`);
      }
      const rows = await tx.query<Row>(`UPDATE proposals SET ${sets.join(', ')} WHERE id = $1${condition} RETURNING ${COLUMNS}`, [...params, ...extra]);
      return rows[0] && toProposal(rows[0]);
    },

    async list(q: { status?: ProposalStatus; twins?: readonly string[]; limit?: number; before?: string }): Promise<Proposal[]> {
      const where: string[] = [];
      const params: unknown[] = [];
      if (q.status) {
        params.push(q.status);
        where.push(`status = $${params.length}`);
      }
      if (q.twins) {
        params.push(q.twins);
        where.push(`twin_id = ANY($${params.length}::text[])`);
      }
      if (q.before) {
        params.push(q.before);
        where.push(`created_at < $${params.length}::timestamptz`);
      }
      params.push(Math.min(Math.max(q.limit ?? 50, 1), 500));
      const rows = await sql.query<Row>(
        `SELECT ${COLUMNS} FROM proposals ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id LIMIT $${params.length}`,
        params,
      );
      return rows.map(toProposal);
    },

    async addReview(tx: SqlTx, r: { proposalId: string; actor: string; decision: ReviewDecision; comment: string | null; args: Record<string, unknown> | null; argsHash: string; policyVersion: string }): Promise<void> {
      await tx.query(
        `INSERT INTO proposal_decisions (id, proposal_id, actor, decision, comment, args, args_hash, policy_version) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)`,
        [randomUUID(), r.proposalId, r.actor, r.decision, r.comment, r.args === null ? null : JSON.stringify(r.args), r.argsHash, r.policyVersion],
      );
    },

    async reviews(proposalId: string, tx: Pick<Sql, 'query'> = sql): Promise<Review[]> {
      const rows = await tx.query<{ id: string; actor: string; decision: ReviewDecision; comment: string | null; args_hash: string; policy_version: string; created_at: Date }>(
        'SELECT id, actor, decision, comment, args_hash, policy_version, created_at FROM proposal_decisions WHERE proposal_id = $1 ORDER BY created_at, id',
        [proposalId],
      );
      return rows.map((r) => ({ id: r.id, actor: r.actor, decision: r.decision, comment: r.comment, argsHash: r.args_hash.trim(), policyVersion: r.policy_version, createdAt: iso(r.created_at)! }));
    },

    /** Pending approvals (and approved work) whose time ran out, locked for this sweep. */
    async lockExpired(tx: SqlTx, limit: number): Promise<Proposal[]> {
      const rows = await tx.query<Row>(
        `SELECT ${COLUMNS} FROM proposals WHERE status IN ('pending_approval', 'approved') AND expires_at <= now()
         ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [limit],
      );
      return rows.map(toProposal);
    },

    /**
     * Claims due work for this executor: approved proposals whose retry time has come, and
     * executing ones whose executor died (its liveness lock is gone: at once) or whose claim
     * lapsed (an executor alive but stuck, or one that never registered). Skips what another
     * executor holds, what expired, and everything while the twin is halted (twins' rule, joined
     * in this statement so that claiming stays one round trip).
     */
    async claim(tx: SqlTx, executor: string, leaseMs: number, limit: number): Promise<Proposal[]> {
      const rows = await tx.query<Row>(
        `UPDATE proposals SET status = 'executing', claimed_by = $1, claimed_until = now() + ($2::int * interval '1 millisecond'),
                attempts = attempts + 1, updated_at = now()
          WHERE id IN (
            SELECT p.id FROM proposals p ${joinTwinNotHaltedSql('p.twin_id')}
             WHERE ((p.status = 'approved' AND (p.next_attempt_at IS NULL OR p.next_attempt_at <= now()))
                 OR (p.status = 'executing' AND (p.claimed_until < now() OR regent_holder_dead(p.claimed_by))))
               AND (p.expires_at IS NULL OR p.expires_at > now())
             ORDER BY p.created_at
             LIMIT $3
             FOR UPDATE OF p SKIP LOCKED)
          RETURNING ${COLUMNS}`,
        [executor, leaseMs, limit],
      );
      return rows.map(toProposal);
    },

    /**
     * In-doubt proposals due for another status lookup, pushed `intervalMs` forward so that one
     * process asks at a time; the caller asks the connector outside any transaction.
     */
    async dueForLookup(intervalMs: number, limit: number): Promise<Proposal[]> {
      const rows = await sql.query<Row>(
        `UPDATE proposals SET next_attempt_at = now() + ($1::int * interval '1 millisecond')
          WHERE id IN (SELECT id FROM proposals WHERE status = 'in_doubt' AND (next_attempt_at IS NULL OR next_attempt_at <= now())
                        ORDER BY next_attempt_at NULLS FIRST LIMIT $2 FOR UPDATE SKIP LOCKED)
          RETURNING ${COLUMNS}`,
        [intervalMs, limit],
      );
      return rows.map(toProposal);
    },

    /**
     * How many proposals are in each of `statuses` (absent ones count 0); with `exceptKeyPrefix`,
     * leaving out those whose idempotency key starts with it (a benchmark's warm-up).
     */
    async countByStatus(statuses: readonly ProposalStatus[], o: { exceptKeyPrefix?: string } = {}): Promise<Record<string, number>> {
      const rows =
        o.exceptKeyPrefix === undefined
          ? await sql.query<{ status: string; n: string | number }>(
              'SELECT status, count(*) AS n FROM proposals WHERE status = ANY($1::text[]) GROUP BY status',
              [statuses],
            )
          : await sql.query<{ status: string; n: string | number }>(
              'SELECT status, count(*) AS n FROM proposals WHERE status = ANY($1::text[]) AND NOT starts_with(idempotency_key, $2) GROUP BY status',
              [statuses, o.exceptKeyPrefix],
            );
      return Object.fromEntries(statuses.map((s) => [s, Number(rows.find((r) => r.status === s)?.n ?? 0)]));
    },

    /** When each proposal was made and whether it needed people's approval (for latency metrics). */
    async timings(ids: readonly string[]): Promise<Map<string, { createdAt: string; hadApproval: boolean }>> {
      if (ids.length === 0) return new Map();
      const rows = await sql.query<{ id: string; created_at: Date; had_approval: boolean }>(
        'SELECT id, created_at, (approval IS NOT NULL) AS had_approval FROM proposals WHERE id = ANY($1::uuid[])',
        [ids],
      );
      return new Map(rows.map((r) => [r.id, { createdAt: iso(r.created_at)!, hadApproval: r.had_approval }]));
    },

    async pendingCount(): Promise<number> {
      const rows = await sql.query<{ n: string }>(`SELECT count(*) AS n FROM proposals WHERE status = 'pending_approval'`);
      return Number(rows[0]!.n);
    },
  };
}

export type ProposalStore = ReturnType<typeof createProposalStore>;
