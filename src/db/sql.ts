import { AsyncLocalStorage } from 'node:async_hooks';
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

/**
 * Marks the async context of a transaction's callback. A query through the plain handle from in
 * there is a bug: on PGlite (one connection) it waits for the very transaction that waits for
 * it, a silent hang; on PostgreSQL it runs outside the transaction. It fails loudly instead.
 */
const insideTransaction = new AsyncLocalStorage<true>();

/** True inside a transaction's callback. */
export function inTransaction(): boolean {
  return insideTransaction.getStore() === true;
}

/** Runs fn outside any transaction context (for background work started from inside one). */
export function detached<T>(fn: () => T): T {
  return insideTransaction.exit(fn);
}

/**
 * Runs a query that does not go through a transaction's handle (a plain query, or a Prisma
 * Client read), refusing to from inside a transaction's callback (see insideTransaction).
 */
export function outside<T>(what: string, run: () => Promise<T>): Promise<T> {
  if (insideTransaction.getStore()) {
    return Promise.reject(new Error(`${what} outside the open transaction, from inside it (use the transaction's handle)`));
  }
  return run();
}

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
    query: (text, params) => outside('a query', () => base.query(text, params)),
    exec: (script) => outside('a script', () => base.exec(script)),
    transaction: (fn) => outside('a transaction', () => db.transaction((tx) => insideTransaction.run(true, () => fn(wrap(tx))))),
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
  const base = wrap(pool);
  return {
    query: (text, params) => outside('a query', () => base.query(text, params)),
    exec: (script) => outside('a script', () => base.exec(script)),
    transaction: (fn) => outside('a transaction', async () => {
      const client = await pool.connect();
      let broken = false;
      try {
        await client.query('BEGIN');
        const result = await insideTransaction.run(true, () => fn(wrap(client)));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        // A client that cannot even roll back lost its server: discard it, never reuse it.
        await client.query('ROLLBACK').catch(() => (broken = true));
        throw err;
      } finally {
        client.release(broken);
      }
    }),
  };
}
