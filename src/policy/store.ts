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

/** An amount booked on one running total, under the authority whose limit it counts against. */
export interface Booking extends TotalKey {
  authority: string;
  amountMinor: bigint;
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
      const sorted = [...new Map(keys.map((k) => [totalId(k), k])).values()].sort((a, b) => totalId(a).localeCompare(totalId(b)));
      const out = new Map<string, bigint>();
      if (sorted.length === 0) return out;
      // One statement creates missing totals at zero and locks them all, in the sorted order (an
      // INSERT … SELECT takes its rows in the order given): the no-op update takes the row lock
      // that FOR UPDATE would, and RETURNING reads it.
      const rows = await tx.query<{ delegator: string; period_key: string; currency: string; total_minor: string }>(
        `INSERT INTO spend_totals (delegator, period_key, currency, total_minor)
         SELECT k.delegator, k.period_key, k.currency, 0
           FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS k(delegator, period_key, currency, n) ORDER BY k.n
         ON CONFLICT (delegator, period_key, currency) DO UPDATE SET total_minor = spend_totals.total_minor
         RETURNING delegator, period_key, currency, total_minor`,
        [sorted.map((k) => k.delegator), sorted.map((k) => k.periodKey), sorted.map((k) => k.currency)],
      );
      for (const r of rows) out.set(totalId({ delegator: r.delegator, periodKey: r.period_key, currency: r.currency.trim() }), BigInt(r.total_minor));
      return out;
    },

    /** `committed` books the amounts as spent at once (the action executes in the same transaction). */
    async addReservations(
      tx: SqlTx,
      ref: string,
      items: readonly Booking[],
      status: 'reserved' | 'committed' = 'reserved',
    ): Promise<string[]> {
      return this.addReservationsFor(tx, [{ ref, items }], status);
    },

    /**
     * The reservations of several refs (a batch of actions decided together), inserted with their
     * running totals moved, in one statement. Returns the new reservation ids in order.
     */
    async addReservationsFor(
      tx: SqlTx,
      batch: readonly { ref: string; items: readonly Booking[] }[],
      status: 'reserved' | 'committed' = 'reserved',
    ): Promise<string[]> {
      const rows = batch.flatMap((b) =>
        b.items.map((it) => ({
          id: randomUUID(),
          ref: b.ref,
          authority: it.authority,
          delegator: it.delegator,
          period_key: it.periodKey,
          currency: it.currency,
          amount_minor: it.amountMinor.toString(),
        })),
      );
      if (rows.length === 0) return [];
      // The reservations and the running totals move together. The rows travel as one JSON
      // document; amounts as text, so no precision is lost on the way.
      await tx.query(
        `WITH r AS (
           INSERT INTO spend_reservations (id, ref, authority, delegator, period_key, currency, amount_minor, status)
           SELECT x.id, x.ref, x.authority, x.delegator, x.period_key, x.currency, x.amount_minor::bigint, $2
             FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, ref text, authority text, delegator text, period_key text, currency text, amount_minor text)
           RETURNING delegator, period_key, currency, amount_minor),
         s AS (SELECT delegator, period_key, currency, sum(amount_minor) AS amount FROM r GROUP BY delegator, period_key, currency)
         UPDATE spend_totals t SET total_minor = t.total_minor + s.amount, updated_at = now()
           FROM s WHERE t.delegator = s.delegator AND t.period_key = s.period_key AND t.currency = s.currency`,
        [JSON.stringify(rows), status],
      );
      return rows.map((r) => r.id);
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
