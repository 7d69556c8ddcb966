import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { openDatabase, type Database } from '../../src/db/database';
import { seedEmbedded } from './pglite-template';

/**
 * The databases every storage test runs on: PGlite always, and a PostgreSQL server when
 * TEST_DATABASE_URL is set or one answers on 127.0.0.1:5432. Each PostgreSQL run gets a database
 * of its own, dropped afterwards.
 */
import { postgresAvailable, SERVER_URL } from './postgres-probe';

export { postgresAvailable, SERVER_URL };

export interface TestDatabase {
  kind: 'embedded' | 'postgres';
  dataDir: string;
  /** The config block openDatabase takes. */
  config: { kind: 'embedded'; dir: string } | { kind: 'postgres'; url: string; poolMax: number };
  /** Environment for a child process (CLI) using this database. */
  env: Record<string, string>;
  open(opts?: { migrate?: boolean }): Promise<Database>;
  drop(): Promise<void>;
}

export function tmpDir(prefix = 'regent-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * A new data directory whose embedded database is an empty, unmigrated cluster copied from the
 * run's template (see pglite-template.ts), so its first open skips initdb. Use tmpDir() where the
 * test is about what a really empty directory does.
 */
export function dataDir(prefix = 'regent-test-'): string {
  const dir = tmpDir(prefix);
  seedEmbedded(path.join(dir, 'pg'));
  return dir;
}

export async function createTestDatabase(kind: 'embedded' | 'postgres'): Promise<TestDatabase> {
  const dataDir = tmpDir();
  if (kind === 'embedded') {
    const config = { kind: 'embedded' as const, dir: path.join(dataDir, 'pg') };
    seedEmbedded(config.dir);
    return {
      kind,
      dataDir,
      config,
      env: { REGENT_DATA_DIR: dataDir },
      open: (o) => openDatabase(config, dataDir, { migrate: o?.migrate ?? true, command: 'jest' }),
      drop: async () => fs.rmSync(dataDir, { recursive: true, force: true }),
    };
  }
  const name = `regent_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new Client({ connectionString: SERVER_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(SERVER_URL);
  u.pathname = `/${name}`;
  const config = { kind: 'postgres' as const, url: u.toString(), poolMax: 20 };
  return {
    kind,
    dataDir,
    config,
    env: { REGENT_DATA_DIR: dataDir, DATABASE_URL: config.url },
    open: (o) => openDatabase(config, dataDir, { migrate: o?.migrate ?? true }),
    drop: async () => {
      const c = new Client({ connectionString: SERVER_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Whether the PostgreSQL suites run in this jest run (decided once, in global-setup). */
export const POSTGRES_ENABLED = process.env.REGENT_TEST_POSTGRES === '1';

/**
 * Runs `suite` once per database. Where no PostgreSQL server answers, the PostgreSQL suite is
 * registered as skipped, so jest's summary counts it instead of it passing silently.
 */
export function describeEachDatabase(title: string, suite: (getDb: () => TestDatabase) => void): void {
  for (const kind of ['embedded', 'postgres'] as const) {
    const d = kind === 'postgres' && !POSTGRES_ENABLED ? describe.skip : describe;
    d(`${title} (${kind === 'embedded' ? 'PGlite' : 'PostgreSQL'})`, () => {
      let db: TestDatabase | undefined;
      beforeAll(async () => {
        db = await createTestDatabase(kind);
      });
      afterAll(async () => {
        await db?.drop();
      });
      suite(() => db!);
    });
  }
}

/** describe for suites that need a PostgreSQL server (several processes, say). */
export const describePostgres: jest.Describe = POSTGRES_ENABLED ? describe : describe.skip;
