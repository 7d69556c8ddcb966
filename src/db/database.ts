import fs from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import { Client, Pool } from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { redactUrl, type Config } from '../config/config';
import { PrismaClient } from '../generated/prisma/client';
import { acquireDataDirLock, type DataDirLock } from './lock';
import { migrate, migrationStatus, readMigrations, type MigrationStatus } from './migrate';
import { pgliteSql, pgPoolSql, type Sql } from './sql';

export type DatabaseConfig = Config['database'] & { dataDir?: string };

export interface Database {
  readonly kind: 'embedded' | 'postgres';
  /** Where the data lives, safe to print (no password). */
  readonly location: string;
  readonly prisma: PrismaClient;
  readonly sql: Sql;
  /** True when the embedded database recovered from a crashed previous run. */
  readonly recovered: boolean;
  migrate(): Promise<string[]>;
  /**
   * Runs one cheap Prisma Client query, so that loading its query compiler and adapter paths
   * (about half a second, once per process) happens at start rather than on someone's first
   * click on a management listing. Once per Database; openDatabase does it after migrating.
   */
  warm(): Promise<void>;
  /** True once warm() has run. */
  readonly warmed: boolean;
  migrationStatus(): Promise<MigrationStatus>;
  /** Database reachable and every migration applied. */
  ready(): Promise<{ ok: true } | { ok: false; reason: string }>;
  /**
   * A connection of its own, outside the pool, for session state that must live exactly as long
   * as the connection (advisory locks). Embedded: the one connection there is.
   */
  session(): Promise<DedicatedSession>;
  close(): Promise<void>;
}

export interface DedicatedSession {
  query<T = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<T[]>;
  /** Called once if the connection is lost (never for the embedded database). */
  onLost(fn: (err: Error) => void): void;
  /** NOTIFY payloads on channels this connection LISTENs to (PostgreSQL; the embedded database has one process). */
  onNotification?(fn: (channel: string, payload: string) => void): void;
  close(): Promise<void>;
}

export class DatabaseOpenError extends Error {
  override readonly name = 'DatabaseOpenError';
}

export interface OpenOptions {
  /** Apply pending migrations on open (the server does; `regent db status` does not). */
  migrate?: boolean;
  /** Names the holder in the embedded lock, e.g. "regent serve". */
  command?: string;
  /** Warm Prisma Client up after migrating (default: when migrating, i.e. the server and the app's commands). */
  warm?: boolean;
}

export async function openDatabase(db: Config['database'], dataDir: string, opts: OpenOptions = {}): Promise<Database> {
  const database =
    db.kind === 'embedded' ? await openEmbedded(db.dir, dataDir, opts) : await openPostgres(db.url, db.poolMax, db.statementTimeoutMs);
  if (opts.migrate || opts.warm) {
    try {
      if (opts.migrate) await database.migrate();
      if (opts.warm ?? opts.migrate) await database.warm();
    } catch (err) {
      await database.close();
      throw err;
    }
  }
  return database;
}

function common(
  kind: Database['kind'],
  location: string,
  sql: Sql,
  prisma: PrismaClient,
  recovered: boolean,
  close: () => Promise<void>,
  session: () => Promise<DedicatedSession>,
): Database {
  const files = readMigrations();
  let closed: Promise<void> | undefined;
  let warming: Promise<void> | undefined;
  let warmed = false;
  return {
    kind,
    location,
    prisma,
    sql,
    recovered,
    migrate: () => migrate(sql, files),
    warm() {
      // A model query (not $queryRaw), on the table this folder owns: it goes through the query
      // compiler and the adapter's result mapping, as the listings do.
      warming ??= prisma.claimHolder.findFirst({ select: { id: true } }).then(
        () => {
          warmed = true;
        },
        (err: unknown) => {
          warming = undefined;
          throw err;
        },
      );
      return warming;
    },
    get warmed() {
      return warmed;
    },
    migrationStatus: () => migrationStatus(sql, files),
    session,
    async ready() {
      try {
        const s = await migrationStatus(sql, files);
        if (s.problems.length) return { ok: false, reason: s.problems.join('; ') };
        if (s.pending.length) return { ok: false, reason: `migrations pending: ${s.pending.join(', ')}` };
        return { ok: true };
      } catch (err) {
        return { ok: false, reason: `database unreachable: ${(err as Error).message}` };
      }
    },
    close() {
      closed ??= close();
      return closed;
    },
  };
}

async function openEmbedded(dir: string, dataDir: string, opts: OpenOptions): Promise<Database> {
  let lock: DataDirLock;
  try {
    lock = acquireDataDirLock(dataDir, dir, opts.command ?? `regent (pid ${process.pid})`);
  } catch (err) {
    throw new DatabaseOpenError((err as Error).message);
  }
  let pg: PGlite;
  try {
    fs.mkdirSync(dir, { recursive: true });
    pg = await PGlite.create(dir);
  } catch (err) {
    lock.release();
    throw new DatabaseOpenError(`cannot open the embedded database in ${dir}: ${(err as Error).message}`);
  }
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pg) });
  const sql = pgliteSql(pg);
  const session = async (): Promise<DedicatedSession> => ({
    query: (text, params) => sql.query(text, params),
    onLost: () => undefined,
    close: async () => undefined,
  });
  return common(
    'embedded',
    dir,
    sql,
    prisma,
    lock.recovered,
    async () => {
      try {
        await prisma.$disconnect();
        await pg.close();
      } finally {
        lock.release();
      }
    },
    session,
  );
}

async function openPostgres(url: string, poolMax: number, statementTimeoutMs = 15_000): Promise<Database> {
  // A statement (or a transaction left idle) that runs past the limit is cancelled by the server
  // and fails cleanly, rather than holding row locks (running totals, the journal head) forever.
  const pool = new Pool({
    connectionString: url,
    max: poolMax,
    connectionTimeoutMillis: 5000,
    statement_timeout: statementTimeoutMs,
    idle_in_transaction_session_timeout: Math.max(statementTimeoutMs, 60_000),
  });
  // An idle client losing its server (a restart) must not crash the process; the next query fails cleanly.
  pool.on('error', () => undefined);
  // Nor may a checked-out client (a transaction in flight when the server goes away): its query
  // rejects, the transaction fails cleanly (503), and the broken client is discarded.
  pool.on('connect', (client) => client.on('error', () => undefined));
  try {
    const c = await pool.connect();
    c.release();
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new DatabaseOpenError(`cannot connect to PostgreSQL at ${redactUrl(url)}: ${(err as Error).message}`);
  }
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  const session = async (): Promise<DedicatedSession> => {
    const client = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    let lost: ((err: Error) => void) | undefined;
    let ended = false;
    const fire = (err: Error) => {
      if (ended) return;
      ended = true;
      lost?.(err);
    };
    client.on('error', fire);
    client.on('end', () => fire(new Error('connection ended')));
    await client.connect();
    return {
      async query<T>(text: string, params?: readonly unknown[]) {
        return (await client.query(text, params as unknown[] | undefined)).rows as T[];
      },
      onLost(fn) {
        lost = fn;
      },
      onNotification(fn) {
        client.on('notification', (m) => fn(m.channel, m.payload ?? ''));
      },
      async close() {
        ended = true;
        await client.end().catch(() => undefined);
      },
    };
  };
  return common(
    'postgres',
    redactUrl(url),
    pgPoolSql(pool),
    prisma,
    false,
    async () => {
      await prisma.$disconnect();
      await pool.end();
    },
    session,
  );
}
