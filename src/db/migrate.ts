import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Sql } from './sql';

/**
 * Applies the SQL migrations in prisma/migrations/ (Prisma's layout) and records them in
 * `_prisma_migrations` exactly as `prisma migrate deploy` does, so Prisma's own `migrate status`
 * and `migrate deploy` agree with Regent on a machine that has Prisma's schema engine.
 */

/** The advisory lock id `prisma migrate` itself takes, so Regent and Prisma never migrate at once. */
const PRISMA_MIGRATE_LOCK = 72707369;

export interface MigrationFile {
  name: string;
  checksum: string;
  sql: string;
}

export interface MigrationStatus {
  applied: string[];
  pending: string[];
  /** Recorded migrations whose file changed after it was applied, or that have no file. */
  problems: string[];
}

export function findMigrationsDir(): string {
  // Works from src/ (ts-jest) and from dist/src/ (the built CLI).
  for (const candidate of [
    path.resolve(__dirname, '../../prisma/migrations'),
    path.resolve(__dirname, '../../../prisma/migrations'),
  ]) {
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new Error('prisma/migrations not found next to the Regent installation');
}

export function readMigrations(dir = findMigrationsDir()): MigrationFile[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && /^\d{14}_[a-z0-9_]+$/.test(d.name))
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const sql = fs.readFileSync(path.join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

const CREATE_PRISMA_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

interface Row {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

async function recorded(sql: Pick<Sql, 'query'>): Promise<Row[] | undefined> {
  const exists = await sql.query<{ t: string | null }>(`SELECT to_regclass('"_prisma_migrations"')::text AS t`);
  if (!exists[0]?.t) return undefined;
  return sql.query<Row>(
    `SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" ORDER BY started_at`,
  );
}

export async function migrationStatus(sql: Pick<Sql, 'query'>, files = readMigrations()): Promise<MigrationStatus> {
  const rows = ((await recorded(sql)) ?? []).filter((r) => r.rolled_back_at === null);
  const done = new Map(rows.filter((r) => r.finished_at).map((r) => [r.migration_name, r]));
  const problems: string[] = [];
  for (const r of rows) {
    const file = files.find((f) => f.name === r.migration_name);
    if (!r.finished_at) problems.push(`${r.migration_name} started but did not finish`);
    else if (!file) problems.push(`${r.migration_name} is applied but has no file in prisma/migrations`);
    else if (file.checksum !== r.checksum) problems.push(`${r.migration_name} was edited after it was applied`);
  }
  return {
    applied: files.filter((f) => done.has(f.name)).map((f) => f.name),
    pending: files.filter((f) => !done.has(f.name)).map((f) => f.name),
    problems,
  };
}

export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

/**
 * Applies pending migrations, each in its own transaction together with its record, so a crash
 * never leaves one half-applied. Safe to run from several processes at once.
 */
export async function migrate(sql: Sql, files = readMigrations()): Promise<string[]> {
  return sql.transaction(async (tx) => {
    // Transaction-scoped lock: released at commit, even if this process dies.
    await tx.query(`SELECT pg_advisory_xact_lock(${PRISMA_MIGRATE_LOCK})`);
    await tx.exec(CREATE_PRISMA_TABLE);
    const status = await migrationStatus(tx, files);
    if (status.problems.length) throw new MigrationError(`database migrations disagree with prisma/migrations: ${status.problems.join('; ')}`);
    const applied: string[] = [];
    for (const name of status.pending) {
      const file = files.find((f) => f.name === name)!;
      try {
        await tx.exec(file.sql);
      } catch (err) {
        throw new MigrationError(`migration ${name} failed: ${(err as Error).message}`);
      }
      await tx.query(
        `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
         VALUES ($1, $2, now(), $3, NULL, NULL, now(), 1)`,
        [randomUUID(), file.checksum, name],
      );
      applied.push(name);
    }
    return applied;
  });
}
