import type { Sql, SqlTx } from '../db/sql';
import type { ActionOutcome } from '../agent/types';
import { proposalStatusDiffersSql } from '../proposals/store';
import type { ProposalStatus } from '../proposals/types';
import type { Constraints, ObjectiveRecord, ObjectiveStatus, ObjectiveStep, PlannerKind } from './types';

/** SQL for objectives and their steps; the same statements on PGlite and PostgreSQL. */

interface Row {
  id: string;
  twin_id: string;
  owner: string;
  created_by: string;
  text: string;
  playbook: string | null;
  playbook_snapshot: unknown;
  params: Record<string, unknown>;
  constraints: Constraints;
  deadline: Date | null;
  step_budget: number;
  planner: PlannerKind;
  status: ObjectiveStatus;
  summary: string | null;
  planner_state: unknown;
  steps_used: number;
  signal_id: string | null;
  next_run_at: Date | null;
  claimed_by: string | null;
  failures: number;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

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

const COLUMNS =
  'id, twin_id, owner, created_by, text, playbook, playbook_snapshot, params, constraints, deadline, step_budget, planner, status, summary, planner_state, steps_used, signal_id, next_run_at, claimed_by, failures, created_at, updated_at, finished_at';
const STEP_COLUMNS = 'key, action, args_hash, proposal_id, proposal_status, outcome, amount_minor, currency, created_at';

const iso = (d: Date | string | null) => (d === null ? null : (d instanceof Date ? d : new Date(d)).toISOString());

const toRecord = (r: Row): ObjectiveRecord => ({
  id: r.id,
  twin: r.twin_id,
  owner: r.owner,
  createdBy: r.created_by,
  text: r.text,
  playbook: r.playbook,
  params: r.params,
  constraints: r.constraints,
  deadline: iso(r.deadline),
  stepBudget: r.step_budget,
  planner: r.planner,
  status: r.status,
  summary: r.summary,
  stepsUsed: r.steps_used,
  signal: r.signal_id,
  createdAt: iso(r.created_at)!,
  updatedAt: iso(r.updated_at)!,
  finishedAt: iso(r.finished_at),
  playbookSnapshot: r.playbook_snapshot,
  plannerState: r.planner_state,
  nextRunAt: iso(r.next_run_at),
  claimedBy: r.claimed_by,
  failures: r.failures,
});

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

export function createObjectiveStore(sql: Sql) {
  return {
    transaction: sql.transaction.bind(sql) as Sql['transaction'],

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

    async list(q: { twin?: string; status?: ObjectiveStatus; limit?: number; before?: string }): Promise<ObjectiveRecord[]> {
      const where: string[] = [];
      const params: unknown[] = [];
      if (q.twin !== undefined) {
        params.push(q.twin);
        where.push(`twin_id = $${params.length}`);
      }
      if (q.status) {
        params.push(q.status);
        where.push(`status = $${params.length}`);
      }
      if (q.before) {
        params.push(q.before);
        where.push(`created_at < $${params.length}::timestamptz`);
      }
      params.push(Math.min(Math.max(q.limit ?? 50, 1), 500));
      const rows = await sql.query<Row>(
        `SELECT ${COLUMNS} FROM objectives ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id LIMIT $${params.length}`,
        params,
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
