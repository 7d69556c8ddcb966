import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { openDatabase, type Database } from './database';

/**
 * A migrated throw-away database for benchmarks: PGlite in a temporary directory, or a fresh
 * database on the PostgreSQL server at `postgresUrl`. Never the configured one: benchmark entries
 * in a real, immutable journal could never be removed.
 */
export async function openScratchDatabase(o: { postgresUrl?: string; poolMax: number; command: string }): Promise<{
  db: Database;
  dir: string;
  /** The scratch database's URL (PostgreSQL only), for other processes to open. */
  url?: string;
  dispose(): Promise<void>;
}> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regent-scratch-'));
  let drop: (() => Promise<void>) | undefined;
  let url: string | undefined;
  let db: Database | undefined;
  const dispose = async () => {
    await db?.close().catch(() => undefined);
    await drop?.().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    if (o.postgresUrl) {
      const name = `regent_scratch_${process.pid}_${Date.now()}`;
      const admin = new Client({ connectionString: o.postgresUrl });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      drop = async () => {
        const c = new Client({ connectionString: o.postgresUrl });
        await c.connect();
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await c.end();
      };
      const u = new URL(o.postgresUrl);
      u.pathname = `/${name}`;
      url = u.toString();
      db = await openDatabase({ kind: 'postgres', url, poolMax: o.poolMax }, dir, { migrate: true });
    } else {
      db = await openDatabase({ kind: 'embedded', dir: path.join(dir, 'pg') }, dir, { migrate: true, command: o.command });
    }
    return url ? { db, dir, url, dispose } : { db, dir, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}
