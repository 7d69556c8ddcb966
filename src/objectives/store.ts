import type { PrismaClient } from '../db/prisma';
import { managedRead } from '../db/prisma';
import type { Sql, SqlTx } from '../db/sql';
import type { ObjectiveModel, ObjectiveWhereInput } from '../generated/prisma/models';
import type { ActionOutcome } from '../agent/types';
import { proposalStatusDiffersSql } from '../proposals/store';
import type { ProposalStatus } from '../proposals/types';
import type { Constraints, ObjectiveRecord, ObjectiveStatus, ObjectiveStep, PlannerKind } from './types';

/** SQL for objectives and their steps; the same statements on PGlite and PostgreSQL. */

// Raw SQL rows have the generated model's shape (columns aliased to its field names), as do
// Prisma Client's, so toRecord maps both. claimed_until is never read back.
type Row = Omit<ObjectiveModel, 'claimedUntil'>;

interface StepRow {
  key: string;
  action: string;
  args_hash: string;
  proposal_id: string | null;
  proposal_status: ProposalStatus | null;
  outcome: ActionOutcome | null;
  amount_minor: string | number | null;
  currency: string | null;
  created_at: Date;
}

const FIELDS = {
  id: 'id',
  twinId: 'twin_id',
  owner: 'owner',
  createdBy: 'created_by',
  text: 'text',
  playbook: 'playbook',
  playbookSnapshot: 'playbook_snapshot',
  params: 'params',
  constraints: 'constraints',
  deadline: 'deadline',
  stepBudget: 'step_budget',
  planner: 'planner',
  status: 'status',
  summary: 'summary',
  plannerState: 'planner_state',
  stepsUsed: 'steps_used',
  signalId: 'signal_id',
  nextRunAt: 'next_run_at',
  claimedBy: 'claimed_by',
  failures: 'failures',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
  finishedAt: 'finished_at',
} as const satisfies { [F in keyof Row]: string };
const COLUMNS = Object.entries(FIELDS)
  .map(([field, column]) => (field === column ? column : `${column} AS "${field}"`))
  .join(', ');
const SELECT = Object.fromEntries(Object.keys(FIELDS).map((f) => [f, true])) as { [F in keyof Row]: true };
const STEP_COLUMNS = 'key, action, args_hash, proposal_id, proposal_status, outcome, amount_minor, currency, created_at';

const iso = (d: Date | string | null) => (d === null ? null : (d instanceof Date ? d : new Date(d)).toISOString());

const toRecord = (r: Row): ObjectiveRecord => ({
  id: r.id,
  twin: r.twinId,
  owner: r.owner,
  createdBy: r.createdBy,
  text: r.text,
  playbook: r.playbook,
  params: r.params as Record<string, unknown>,
  constraints: r.constraints as unknown as Constraints,
  deadline: iso(r.deadline),
  stepBudget: r.stepBudget,
  planner: r.planner as PlannerKind,
  status: r.status as ObjectiveStatus,
  summary: r.summary,
  stepsUsed: r.stepsUsed,
  signal: r.signalId,
  createdAt: iso(r.createdAt)!,
  updatedAt: iso(r.updatedAt)!,
  finishedAt: iso(r.finishedAt),
  playbookSnapshot: r.playbookSnapshot,
  plannerState: r.plannerState,
  nextRunAt: iso(r.nextRunAt),
  claimedBy: r.claimedBy,
  failures: r.failures,
});

/**
 * `created_at < $before::timestamptz` as Prisma Client's filter: PostgreSQL keeps microseconds of
 * the cursor, a JS Date milliseconds, and created_at holds milliseconds, so a cursor with a
 * sub-millisecond part includes the millisecond it falls in.
 */
function createdBefore(before: string): { lt: Date } | { lte: Date } {
  const fraction = /\.(\d+)/.exec(before)?.[1];
  const micros = fraction ? Math.round(Number(`0.${fraction}`) * 1e6) : 0;
  const ms = Date.parse(before.replace(/\.\d+/, '')) + Math.floor(micros / 1000);
  if (Number.isNaN(ms)) throw new Error(`not a timestamp: ${before}`);
  return micros % 1000 ? { lte: new Date(ms) } : { lt: new Date(ms) };
}

const toStep = (r: StepRow): ObjectiveStep => ({
  key: r.key,
  action: r.action,
  argsHash: r.args_hash.trim(),
  proposalId: r.proposal_id,
  proposalStatus: r.proposal_status,
  outcome: r.outcome,
  amountMinor: r.amount_minor === null ? null : BigInt(r.amount_minor),
  currency: r.currency === null ? null : r.currency.trim(),
  createdAt: iso(r.created_at)!,
});

export interface NewObjective {
  id: string;
  twin: string;
  owner: string;
  createdBy: string;
  text: string;
  playbook: string | null;
  playbookSnapshot: unknown;
  params: Record<string, unknown>;
  constraints: Constraints;
  deadline: string | null;
  stepBudget: number;
  planner: PlannerKind;
  signal: string | null;
}

export interface ObjectivePatch {
  status?: ObjectiveStatus;
  summary?: string | null;
  plannerState?: unknown;
  nextRunAt?: string | null;
  claimedBy?: string | null;
  claimedUntil?: string | null;
  failures?: number;
  finished?: boolean;
}

const isUuid = (id: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id);

export function createObjectiveStore(sql: Sql, prisma: PrismaClient) {
  return {
    transaction: sql.transaction.bind(sql) as Sql['transaction'],

    // Writes and claims stay raw SQL: inside transactions atomic with journal appends, or the runner's claim.
    async insert(tx: SqlTx, o: NewObjective): Promise<ObjectiveRecord> {
      const rows = await tx.query<Row>(
        `INSERT INTO objectives (id, twin_id, owner, created_by, text, playbook, playbook_snapshot, params, constraints, deadline, step_budget, planner, status, signal_id, next_run_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9::jsonb, $10::timestamptz, $11, $12, 'queued', $13, now())
         RETURNING ${COLUMNS}`,
        [
          o.id,
          o.twin,
          o.owner,
          o.createdBy,
          o.text,
          o.playbook,
          o.playbookSnapshot === null ? null : JSON.stringify(o.playbookSnapshot),
          JSON.stringify(o.params),
          JSON.stringify(o.constraints),
          o.deadline,
          o.stepBudget,
          o.planner,
          o.signal,
        ],
      );
      return toRecord(rows[0]!);
    },

    /** How many objectives signals whose ids start with `prefix` made (e.g. one run of a benchmark). */
    async countBySignalPrefix(prefix: string): Promise<number> {
      const rows = await sql.query<{ n: number }>('SELECT count(*)::int AS n FROM objectives WHERE starts_with(signal_id, $1)', [prefix]);
      return rows[0]?.n ?? 0;
    },

    async get(id: string, tx: Pick<Sql, 'query'> = sql): Promise<ObjectiveRecord | undefined> {
      if (!isUuid(id)) return undefined;
      const rows = await tx.query<Row>(`SELECT ${COLUMNS} FROM objectives WHERE id = $1`, [id]);
      return rows[0] && toRecord(rows[0]);
    },

    /** Reads and locks the row for a status change. */
    async lock(tx: SqlTx, id: string): Promise<ObjectiveRecord | undefined> {
      if (!isUuid(id)) return undefined;
      const rows = await tx.query<Row>(`SELECT ${COLUMNS} FROM objectives WHERE id = $1 FOR UPDATE`, [id]);
      return rows[0] && toRecord(rows[0]);
    },

    /** The console's listing of a twin's objectives, newest first, by created_at cursor: Prisma Client. */
    async list(q: { twin?: string; status?: ObjectiveStatus; limit?: number; before?: string }): Promise<ObjectiveRecord[]> {
      const where: ObjectiveWhereInput = {};
      if (q.twin !== undefined) where.twinId = q.twin;
      if (q.status) where.status = q.status;
      if (q.before) where.createdAt = createdBefore(q.before);
      const rows = await managedRead(() =>
        prisma.objective.findMany({ select: SELECT, where, orderBy: [{ createdAt: 'desc' }, { id: 'asc' }], take: Math.min(Math.max(q.limit ?? 50, 1), 500) }),
      );
      return rows.map(toRecord);
    },

    /**
     * Updates a row; with `runner`, only while that runner holds the claim and the objective is
     * not finished (a cancellation or a takeover wins). Undefined when the condition failed.
     */
    async update(tx: SqlTx, id: string, patch: ObjectivePatch, runner?: string): Promise<ObjectiveRecord | undefined> {
      const sets: string[] = ['updated_at = now()'];
      const params: unknown[] = [id];
      const set = (col: string, value: unknown, cast = '') => {
        params.push(value);
        sets.push(`${col} = $${params.length}${cast}`);
      };
      if (patch.status !== undefined) set('status', patch.status);
      if (patch.summary !== undefined) set('summary', patch.summary);
      if (patch.plannerState !== undefined) set('planner_state', patch.plannerState === null ? null : JSON.stringify(patch.plannerState), '::jsonb');
      if (patch.nextRunAt !== undefined) set('next_run_at', patch.nextRunAt, '::timestamptz');
      if (patch.claimedBy !== undefined) set('claimed_by', patch.claimedBy);
      if (patch.claimedUntil !== undefined) set('claimed_until', patch.claimedUntil, '::timestamptz');
      if (patch.failures !== undefined) set('failures', patch.failures);
      if (patch.finished) sets.push('finished_at = now()');
      let condition = '';
      if (runner !== undefined) {
        params.push(runner);
        condition = ` AND claimed_by = $${params.length} AND status NOT IN ('completed', 'failed', 'cancelled')`;
      }
      const rows = await tx.query<Row>(`UPDATE objectives SET ${sets.join(', ')} WHERE id = $1${condition} RETURNING ${COLUMNS}`, params);
      return rows[0] && toRecord(rows[0]);
    },

    /**
     * Claims runs that are due for this runner: queued or resumable ones whose time has come,
     * parked ones whose proposals changed since the planner last heard of them, and unfinished
     * ones past their deadline. A run another runner holds is skipped until its lease lapses, or
     * at once when that runner is dead (its liveness lock is gone). Whether a proposal changed is
     * the proposals store's condition, embedded so that claiming stays one statement.
     */
    async claim(tx: SqlTx, runner: string, leaseMs: number, limit: number): Promise<ObjectiveRecord[]> {
      const rows = await tx.query<Row>(
        // next_run_at marks the run as in progress: if this runner dies, it is due again once the lease lapses.
        `UPDATE objectives SET claimed_by = $1, claimed_until = now() + ($2::int * interval '1 millisecond'),
                next_run_at = COALESCE(next_run_at, now()), updated_at = now()
          WHERE id IN (
            SELECT o.id FROM objectives o
             WHERE (o.claimed_until IS NULL OR o.claimed_until < now() OR regent_holder_dead(o.claimed_by))
               AND (
                    (o.status IN ('queued', 'running') AND o.next_run_at IS NOT NULL AND o.next_run_at <= now())
                 OR (o.status IN ('running', 'waiting_for_approval') AND o.deadline IS NOT NULL AND o.deadline <= now())
                 OR (o.status IN ('running', 'waiting_for_approval') AND o.next_run_at IS NULL AND EXISTS (
                       SELECT 1 FROM objective_steps s
                        WHERE s.objective_id = o.id AND ${proposalStatusDiffersSql('s.proposal_id', 's.proposal_status')})))
             ORDER BY o.created_at
             LIMIT $3
             FOR UPDATE OF o SKIP LOCKED)
          RETURNING ${COLUMNS}`,
        [runner, leaseMs, limit],
      );
      return rows.map(toRecord);
    },

    /** Extends this runner's lease; the objective's status, or undefined when the claim is gone. */
    async renew(runner: string, id: string, leaseMs: number): Promise<ObjectiveStatus | undefined> {
      const rows = await sql.query<{ status: ObjectiveStatus }>(
        `UPDATE objectives SET claimed_until = now() + ($3::int * interval '1 millisecond')
          WHERE id = $1 AND claimed_by = $2 RETURNING status`,
        [id, runner, leaseMs],
      );
      return rows[0]?.status;
    },

    async status(id: string): Promise<ObjectiveStatus | undefined> {
      const rows = await sql.query<{ status: ObjectiveStatus }>('SELECT status FROM objectives WHERE id = $1', [id]);
      return rows[0]?.status;
    },

    async steps(objectiveId: string, tx: Pick<Sql, 'query'> = sql): Promise<ObjectiveStep[]> {
      const rows = await tx.query<StepRow>(`SELECT ${STEP_COLUMNS} FROM objective_steps WHERE objective_id = $1 ORDER BY created_at, key`, [objectiveId]);
      return rows.map(toStep);
    },

    async step(objectiveId: string, key: string, tx: Pick<Sql, 'query'> = sql): Promise<ObjectiveStep | undefined> {
      const rows = await tx.query<StepRow>(`SELECT ${STEP_COLUMNS} FROM objective_steps WHERE objective_id = $1 AND key = $2`, [objectiveId, key]);
      return rows[0] && toStep(rows[0]);
    },

    /** Records a step and counts it against the budget; false when the key was taken meanwhile. */
    async insertStep(
      tx: SqlTx,
      s: { objectiveId: string; key: string; twin: string; action: string; argsHash: string; outcome: ActionOutcome | null; amountMinor: bigint | null; currency: string | null },
    ): Promise<boolean> {
      const rows = await tx.query(
        `INSERT INTO objective_steps (objective_id, key, twin_id, action, args_hash, outcome, amount_minor, currency)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8) ON CONFLICT (objective_id, key) DO NOTHING RETURNING key`,
        [s.objectiveId, s.key, s.twin, s.action, s.argsHash, s.outcome === null ? null : JSON.stringify(s.outcome), s.amountMinor?.toString() ?? null, s.currency],
      );
      if (rows.length === 0) return false;
      await tx.query('UPDATE objectives SET steps_used = steps_used + 1, updated_at = now() WHERE id = $1', [s.objectiveId]);
      return true;
    },

    async updateStep(
      tx: SqlTx,
      objectiveId: string,
      key: string,
      patch: { proposalId?: string; proposalStatus?: ProposalStatus; outcome?: ActionOutcome },
    ): Promise<void> {
      await tx.query(
        `UPDATE objective_steps SET proposal_id = COALESCE($3::uuid, proposal_id), proposal_status = COALESCE($4, proposal_status),
                outcome = COALESCE($5::jsonb, outcome), updated_at = now()
          WHERE objective_id = $1 AND key = $2`,
        [objectiveId, key, patch.proposalId ?? null, patch.proposalStatus ?? null, patch.outcome === undefined ? null : JSON.stringify(patch.outcome)],
      );
    },

    /**
     * Serializes the rate check of one twin across processes (a transaction-scoped advisory lock),
     * then counts the action requests its objectives made in the last minute.
     */
    async lockRate(tx: SqlTx, twin: string): Promise<{ count: number; oldest: string | null }> {
      await tx.query(`SELECT pg_advisory_xact_lock(hashtext('regent.objectives.rate:' || $1))`, [twin]);
      const rows = await tx.query<{ n: string | number; oldest: Date | null }>(
        `SELECT count(*) AS n, min(created_at) AS oldest FROM objective_steps
          WHERE twin_id = $1 AND created_at > now() - interval '1 minute' AND (proposal_id IS NOT NULL OR outcome IS NULL)`,
        [twin],
      );
      return { count: Number(rows[0]!.n), oldest: iso(rows[0]!.oldest) };
    },
  };
}

export type ObjectiveStore = ReturnType<typeof createObjectiveStore>;
