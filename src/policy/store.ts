import { randomUUID } from 'node:crypto';
import type { Sql, SqlTx } from '../db/sql';
import type { PolicySource } from './load';

/** SQL for policy versions and running totals; the same statements on PGlite and PostgreSQL. */

export interface StoredPolicyVersion {
  version: string;
  sources: PolicySource[];
  summary: PolicySummary;
  loadedBy: string;
  createdAt: string;
}

export interface PolicySummary {
  authorities: string[];
  files: string[];
  previous: string | null;
  added: string[];
  removed: string[];
  changed: string[];
}

/** One running total a decision reserves against: (delegator, window@tz, currency). */
export interface TotalKey {
  delegator: string;
  periodKey: string;
  currency: string;
}

export interface ReservationRow extends TotalKey {
  id: string;
  ref: string;
  authority: string;
  amountMinor: bigint;
  status: 'reserved' | 'committed' | 'released';
}

const iso = (d: Date | string) => (d instanceof Date ? d : new Date(d)).toISOString();

export function createPolicyStore(sql: Sql) {
  return {
    transaction: sql.transaction.bind(sql) as Sql['transaction'],

    async saveVersion(v: Omit<StoredPolicyVersion, 'createdAt'>): Promise<boolean> {
      const rows = await sql.query(
        `INSERT INTO policy_versions (version, sources, summary, loaded_by) VALUES ($1, $2::jsonb, $3::jsonb, $4)
         ON CONFLICT (version) DO NOTHING RETURNING version`,
        [v.version, JSON.stringify(v.sources), JSON.stringify(v.summary), v.loadedBy],
      );
      return rows.length > 0;
    },

    async getVersion(version: string): Promise<StoredPolicyVersion | undefined> {
      const rows = await sql.query<{ version: string; sources: PolicySource[]; summary: PolicySummary; loaded_by: string; created_at: Date }>(
        'SELECT version, sources, summary, loaded_by, created_at FROM policy_versions WHERE version = $1',
        [version],
      );
      const r = rows[0];
      return r && { version: r.version, sources: r.sources, summary: r.summary, loadedBy: r.loaded_by, createdAt: iso(r.created_at) };
    },

    async listVersions(limit = 100): Promise<Omit<StoredPolicyVersion, 'sources'>[]> {
      const rows = await sql.query<{ version: string; summary: PolicySummary; loaded_by: string; created_at: Date }>(
        'SELECT version, summary, loaded_by, created_at FROM policy_versions ORDER BY created_at DESC, version LIMIT $1',
        [limit],
      );
      return rows.map((r) => ({ version: r.version, summary: r.summary, loadedBy: r.loaded_by, createdAt: iso(r.created_at) }));
    },

    /**
     * Locks the running totals for `keys` (creating missing ones at zero) in a fixed order, so
     * two decisions touching the same totals never deadlock, and returns them.
     */
    async lockTotals(tx: SqlTx, keys: readonly TotalKey[]): Promise<Map<string, bigint>> {
      const sorted = [...keys].sort((a, b) => totalId(a).localeCompare(totalId(b)));
      const out = new Map<string, bigint>();
      for (const k of sorted) {
        // One statement creates the total at zero if needed and locks it: the no-op update takes
        // the row lock that FOR UPDATE would, and RETURNING reads it.
        const rows = await tx.query<{ total_minor: string }>(
          `INSERT INTO spend_totals (delegator, period_key, currency, total_minor) VALUES ($1, $2, $3, 0)
           ON CONFLICT (delegator, period_key, currency) DO UPDATE SET total_minor = spend_totals.total_minor
           RETURNING total_minor`,
          [k.delegator, k.periodKey, k.currency],
        );
        out.set(totalId(k), BigInt(rows[0]!.total_minor));
      }
      return out;
    },

    /** `committed` books the amounts as spent at once (the action executes in the same transaction). */
    async addReservations(
      tx: SqlTx,
      ref: string,
      items: readonly (TotalKey & { authority: string; amountMinor: bigint })[],
      status: 'reserved' | 'committed' = 'reserved',
    ): Promise<string[]> {
      const ids: string[] = [];
      for (const it of items) {
        const id = randomUUID();
        ids.push(id);
        // The reservation and the running total move together, in one statement.
        await tx.query(
          `WITH r AS (
             INSERT INTO spend_reservations (id, ref, authority, delegator, period_key, currency, amount_minor, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING delegator, period_key, currency, amount_minor)
           UPDATE spend_totals t SET total_minor = t.total_minor + r.amount_minor, updated_at = now()
             FROM r WHERE t.delegator = r.delegator AND t.period_key = r.period_key AND t.currency = r.currency`,
          [id, ref, it.authority, it.delegator, it.periodKey, it.currency, it.amountMinor.toString(), status],
        );
      }
      return ids;
    },

    async hasReservations(tx: SqlTx, ref: string): Promise<boolean> {
      const rows = await tx.query(`SELECT 1 FROM spend_reservations WHERE ref = $1 AND status <> 'released' LIMIT 1`, [ref]);
      return rows.length > 0;
    },

    /** reserved → released, giving the amount back to the running total. Returns rows changed. */
    async release(ref: string, within?: SqlTx): Promise<number> {
      const run = async (tx: SqlTx) => {
        const rows = await tx.query<{ delegator: string; period_key: string; currency: string; amount_minor: string }>(
          `UPDATE spend_reservations SET status = 'released', updated_at = now() WHERE ref = $1 AND status = 'reserved'
           RETURNING delegator, period_key, currency, amount_minor`,
          [ref],
        );
        for (const r of rows) {
          await tx.query(
            `UPDATE spend_totals SET total_minor = total_minor - $4, updated_at = now() WHERE delegator = $1 AND period_key = $2 AND currency = $3`,
            [r.delegator, r.period_key, r.currency, r.amount_minor],
          );
        }
        return rows.length;
      };
      return within ? run(within) : sql.transaction(run);
    },

    /** reserved → committed once the action executed; the running total keeps the amount. */
    async commit(ref: string, within?: SqlTx): Promise<number> {
      const rows = await (within ?? sql).query(
        `UPDATE spend_reservations SET status = 'committed', updated_at = now() WHERE ref = $1 AND status = 'reserved' RETURNING id`,
        [ref],
      );
      return rows.length;
    },

    async reservations(ref: string): Promise<ReservationRow[]> {
      const rows = await sql.query<{ id: string; ref: string; authority: string; delegator: string; period_key: string; currency: string; amount_minor: string; status: ReservationRow['status'] }>(
        'SELECT id, ref, authority, delegator, period_key, currency, amount_minor, status FROM spend_reservations WHERE ref = $1 ORDER BY created_at, id',
        [ref],
      );
      return rows.map((r) => ({
        id: r.id,
        ref: r.ref,
        authority: r.authority,
        delegator: r.delegator,
        periodKey: r.period_key,
        currency: r.currency.trim(),
        amountMinor: BigInt(r.amount_minor),
        status: r.status,
      }));
    },

    async total(k: TotalKey): Promise<bigint> {
      const rows = await sql.query<{ total_minor: string }>(
        'SELECT total_minor FROM spend_totals WHERE delegator = $1 AND period_key = $2 AND currency = $3',
        [k.delegator, k.periodKey, k.currency],
      );
      return rows[0] ? BigInt(rows[0].total_minor) : 0n;
    },
  };
}

export type PolicyStore = ReturnType<typeof createPolicyStore>;

export const totalId = (k: TotalKey) => `${k.delegator}\u0000${k.periodKey}\u0000${k.currency}`;
