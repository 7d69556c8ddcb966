import type { PrismaClient } from '../db/prisma';
import { managedRead } from '../db/prisma';
import type { Sql, SqlTx } from '../db/sql';
import type { TwinModel } from '../generated/prisma/models';
import type { Mode } from '../policy/types';
import type { Twin } from './types';

// Raw SQL rows have the generated model's shape (columns aliased to its field names), as do
// Prisma Client's, so toTwin maps both.
type TwinRow = TwinModel;

const COLUMNS = 'id, owner, authority, mode, killed, created_at AS "createdAt", updated_at AS "updatedAt"';

/**
 * The halted rule, defined once: a twin may not act while its own kill switch or the global one
 * is engaged. Fail closed: no row for the global switch, or no such twin, reads as halted.
 */
const GLOBAL_KILL_ENGAGED = `COALESCE((SELECT engaged FROM switches WHERE name = 'kill'), true)`;
const haltedWhen = (killed: string) => `(${GLOBAL_KILL_ENGAGED} OR COALESCE(${killed}, true))`;

/** SQL: the twin whose id is the SQL expression `twinId` is halted (unknown: halted). */
const haltedById = (twinId: string) => haltedWhen(`(SELECT killed FROM twins WHERE id = ${twinId})`);

/**
 * A JOIN clause for another folder's hot query (the executor's claim): keeps the rows whose twin,
 * by the SQL expression `twinId` (a column, never user input), exists and is not halted. A join
 * rather than a lookup per row, so that the planner can hash it over a large backlog.
 */
export const joinTwinNotHaltedSql = (twinId: string, alias = 'twin_not_halted'): string =>
  `JOIN twins ${alias} ON ${alias}.id = ${twinId} AND NOT ${haltedWhen(`${alias}.killed`)}`;

/**
 * A LEFT JOIN for another folder's per-request query (people's API key lookup): `<alias>.id` and
 * `<alias>.owner` of the twin whose id is the SQL expression `twinId` (NULLs when there is none).
 * Joined in place so that authenticating a request stays one round trip.
 */
export const leftJoinTwinOwnerSql = (twinId: string, alias: string): string =>
  `LEFT JOIN (SELECT id, owner FROM twins) ${alias} ON ${alias}.id = ${twinId}`;

const toTwin = (r: TwinRow): Twin => ({
  id: r.id,
  owner: r.owner,
  authority: r.authority,
  mode: r.mode as Mode,
  killed: r.killed,
  createdAt: r.createdAt.toISOString(),
  updatedAt: r.updatedAt.toISOString(),
});

export function createTwinStore(sql: Sql, prisma: PrismaClient) {
  return {
    transaction: sql.transaction.bind(sql),

    // Inside the caller's raw transaction (atomic with its journal append): raw SQL, never Prisma.
    async insert(tx: SqlTx, t: { id: string; owner: string; authority: string; mode: Mode }): Promise<Twin> {
      const [row] = await tx.query<TwinRow>(`INSERT INTO twins (id, owner, authority, mode) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`, [
        t.id,
        t.owner,
        t.authority,
        t.mode,
      ]);
      return toTwin(row!);
    },

    async get(id: string): Promise<Twin | undefined> {
      const [row] = await sql.query<TwinRow>(`SELECT ${COLUMNS} FROM twins WHERE id = $1`, [id]);
      return row && toTwin(row);
    },

    /**
     * The twin and whether it may act now (no global or own kill switch), in one round trip.
     * Raw SQL: read per action request and by the executor, where Prisma Client's overhead would show.
     */
    async getForAction(id: string): Promise<(Twin & { halted: boolean }) | undefined> {
      return (await this.getManyForAction([id])).get(id);
    },

    /** getForAction for several twins in one statement, optionally inside a transaction. */
    async getManyForAction(ids: readonly string[], q: Pick<Sql, 'query'> = sql): Promise<Map<string, Twin & { halted: boolean }>> {
      const rows = await q.query<TwinRow & { halted: boolean }>(
        `SELECT ${COLUMNS}, ${haltedWhen('killed')} AS halted FROM twins WHERE id = ANY($1::text[])`,
        [ids],
      );
      return new Map(rows.map((row) => [row.id, { ...toTwin(row), halted: row.halted !== false }]));
    },

    /** Management listing (GET /v1/twins, the kill-switch view, an owner's twins): Prisma Client. */
    async list(owner?: string): Promise<Twin[]> {
      const rows = await managedRead(() => prisma.twin.findMany({ ...(owner ? { where: { owner } } : {}), orderBy: { id: 'asc' } }));
      return rows.map(toTwin);
    },

    /** Sets one column under a row lock, so the value it replaced is reported exactly. */
    async update<K extends 'mode' | 'killed'>(id: string, column: K, value: Twin[K]): Promise<{ before: Twin; after: Twin } | undefined> {
      return sql.transaction(async (tx) => {
        const [row] = await tx.query<TwinRow>(`SELECT ${COLUMNS} FROM twins WHERE id = $1 FOR UPDATE`, [id]);
        if (!row) return undefined;
        const [after] = await tx.query<TwinRow>(`UPDATE twins SET ${column} = $2, updated_at = now() WHERE id = $1 RETURNING ${COLUMNS}`, [
          id,
          value,
        ]);
        return { before: toTwin(row), after: toTwin(after!) };
      });
    },

    async globalSwitch(): Promise<{ engaged: boolean; updatedBy: string; updatedAt: string } | undefined> {
      const [row] = await sql.query<{ engaged: boolean; updated_by: string; updated_at: Date }>(
        `SELECT engaged, updated_by, updated_at FROM switches WHERE name = 'kill'`,
      );
      return row && { engaged: row.engaged, updatedBy: row.updated_by, updatedAt: row.updated_at.toISOString() };
    },

    /** Sets the global switch; returns whether it was engaged before. */
    async setGlobalSwitch(engaged: boolean, by: string): Promise<boolean> {
      return sql.transaction(async (tx) => {
        const [row] = await tx.query<{ engaged: boolean }>(`SELECT engaged FROM switches WHERE name = 'kill' FOR UPDATE`);
        await tx.query(
          `INSERT INTO switches (name, engaged, updated_by, updated_at) VALUES ('kill', $1, $2, now())
           ON CONFLICT (name) DO UPDATE SET engaged = EXCLUDED.engaged, updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at`,
          [engaged, by],
        );
        // A missing row is read as engaged everywhere else (fail closed), so it was "engaged" before.
        return row?.engaged ?? true;
      });
    },

    /**
     * Raw SQL (checked right before acting). One round trip, no cache: a switch engaged by any process is seen by the next check.
     * An unknown twin, or a missing switch row, reads as halted.
     */
    async isHalted(twinId: string): Promise<boolean> {
      const [row] = await sql.query<{ halted: boolean }>(`SELECT ${haltedById('$1')} AS halted`, [twinId]);
      return row?.halted !== false;
    },
  };
}

export type TwinStore = ReturnType<typeof createTwinStore>;
