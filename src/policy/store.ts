import { randomUUID } from 'node:crypto';
import type { PrismaClient } from '../db/prisma';
import { managedRead } from '../db/prisma';
import type { Sql, SqlTx } from '../db/sql';
import type { PolicyVersionModel } from '../generated/prisma/models';
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

/** A recorded version as Prisma Client reads it (sources left out of listings). */
const toVersion = <R extends Omit<PolicyVersionModel, 'sources'> & { sources?: PolicyVersionModel['sources'] }>(
  r: R,
): R extends { sources: unknown } ? StoredPolicyVersion : Omit<StoredPolicyVersion, 'sources'> =>
  ({
    version: r.version,
    ...(r.sources !== undefined ? { sources: r.sources as unknown as PolicySource[] } : {}),
    summary: r.summary as unknown as PolicySummary,
    loadedBy: r.loadedBy,
    createdAt: iso(r.createdAt),
  }) as never;

export function createPolicyStore(sql: Sql, prisma: PrismaClient) {
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

    /** Policy history (admin, `regent policy versions`/`diff`): Prisma Client. */
    async getVersion(version: string): Promise<StoredPolicyVersion | undefined> {
      const r = await managedRead(() => prisma.policyVersion.findUnique({ where: { version } }));
      return r ? toVersion(r) : undefined;
    },

    /** Policy history, newest first: Prisma Client. */
    async listVersions(limit = 100): Promise<Omit<StoredPolicyVersion, 'sources'>[]> {
      if (!Number.isInteger(limit) || limit < 0) throw new Error(`listVersions: limit must be a non-negative integer, not ${limit}`);
      const rows = await managedRead(() =>
        prisma.policyVersion.findMany({
          select: { version: true, summary: true, loadedBy: true, createdAt: true },
          orderBy: [{ createdAt: 'desc' }, { version: 'asc' }],
          take: limit,
        }),
      );
      return rows.map(toVersion);
    },

    /**
     * Locks the running totals for `keys` (creating missing ones at zero) in a fixed order, so
     * two decisions touching the same totals never deadlock, and returns them.
     */
    // Raw SQL from here on: running totals are locked and moved inside the decision's transaction,
    // atomic with its journal append, on the hot path of every action request.
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
