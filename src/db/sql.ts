import type { PGlite, Transaction } from '@electric-sql/pglite';
import type { Pool, PoolClient } from 'pg';

/**
 * The few SQL operations Regent needs below Prisma: migrations (multi-statement scripts,
 * advisory locks) and the journal's append path, where the ORM's per-query overhead would cost
 * most of the throughput. The same SQL runs on PGlite and on a PostgreSQL server.
 */
export interface Sql {
  query<T = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs a script of several statements (no parameters). */
  exec(script: string): Promise<void>;
  /** Runs fn in one transaction: committed when fn resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T>;
}

export type SqlTx = Pick<Sql, 'query' | 'exec'>;

export function pgliteSql(db: PGlite): Sql {
  const wrap = (q: PGlite | Transaction): SqlTx => ({
    async query<T>(text: string, params?: readonly unknown[]) {
      const r = await q.query<T>(text, params as unknown[] | undefined);
      return r.rows;
    },
    async exec(script: string) {
      await q.exec(script);
    },
  });
  const base = wrap(db);
  return {
    ...base,
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
  };
}

export function pgPoolSql(pool: Pool): Sql {
  const wrap = (c: Pool | PoolClient): SqlTx => ({
    async query<T>(text: string, params?: readonly unknown[]) {
      const r = await c.query(text, params as unknown[] | undefined);
      return r.rows as T[];
    },
    async exec(script: string) {
      await c.query(script);
    },
  });
  return {
    ...wrap(pool),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(wrap(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
  };
}
