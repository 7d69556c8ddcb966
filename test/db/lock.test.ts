import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { openDatabase } from '../../src/db/database';
import { tmpDir } from '../support/databases';

const cfg = (dataDir: string) => ({ kind: 'embedded' as const, dir: path.join(dataDir, 'pg') });

/** A child process that holds the embedded database open until killed. */
function holdInChild(dataDir: string): Promise<{ pid: number; kill(signal: NodeJS.Signals): Promise<void> }> {
  const script = `
    const { openDatabase } = require(${JSON.stringify(path.resolve(__dirname, '../../dist/src/db/database.js'))});
    openDatabase(${JSON.stringify(cfg(dataDir))}, ${JSON.stringify(dataDir)}, { migrate: true, command: 'lock-test holder' })
      .then(async (db) => { await db.sql.query('SELECT 1'); process.stdout.write('ready\\n'); setInterval(() => {}, 1000); })
      .catch((e) => { process.stderr.write(e.message); process.exit(3); });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      if (String(d).includes('ready')) {
        resolve({
          pid: child.pid!,
          kill: (signal) => new Promise((done) => (child.once('exit', () => done()), child.kill(signal))),
        });
      }
    });
    child.once('exit', (code) => reject(new Error(`holder exited ${code}: ${err}`)));
  });
}

describe('the embedded database lock', () => {
  it('refuses a second process with an error naming the process that holds it', async () => {
    const dataDir = tmpDir();
    const holder = await holdInChild(dataDir);
    try {
      await expect(openDatabase(cfg(dataDir), dataDir, { command: 'second' })).rejects.toThrow(
        new RegExp(`in use by process ${holder.pid} \\(lock-test holder`),
      );
    } finally {
      await holder.kill('SIGTERM');
    }
  });

  it('recovers, without hanging, the lock and postmaster.pid left by a process killed with SIGKILL', async () => {
    const dataDir = tmpDir();
    const holder = await holdInChild(dataDir);
    await holder.kill('SIGKILL');
    expect(fs.existsSync(path.join(dataDir, 'regent.lock'))).toBe(true);
    const db = await openDatabase(cfg(dataDir), dataDir, { migrate: true, command: 'after crash' });
    try {
      expect(db.recovered).toBe(true);
      expect(await db.ready()).toEqual({ ok: true });
    } finally {
      await db.close();
    }
    expect(fs.existsSync(path.join(dataDir, 'regent.lock'))).toBe(false);
  });

  it('recovers from a postmaster.pid left behind even when no lock file remains', async () => {
    const dataDir = tmpDir();
    const first = await openDatabase(cfg(dataDir), dataDir, { migrate: true });
    await first.close();
    // What an unclean PGlite exit leaves: a pid file naming a process that is gone.
    fs.writeFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), '-42\n/tmp/pglite/base\n');
    const again = await openDatabase(cfg(dataDir), dataDir, { migrate: true });
    expect(again.recovered).toBe(true);
    await again.close();
  });

  it('takes over a lock file whose process is gone', async () => {
    const dataDir = tmpDir();
    fs.writeFileSync(path.join(dataDir, 'regent.lock'), JSON.stringify({ pid: 2 ** 22 + 7, host: require('node:os').hostname(), command: 'ghost', startedAt: 'then' }));
    const db = await openDatabase(cfg(dataDir), dataDir, { migrate: true });
    expect(db.recovered).toBe(true);
    await db.close();
  });

  it('releases the lock on close so the next process can open', async () => {
    const dataDir = tmpDir();
    const a = await openDatabase(cfg(dataDir), dataDir, { migrate: true });
    await a.close();
    const b = await openDatabase(cfg(dataDir), dataDir, { migrate: true });
    await b.close();
    // And PGlite itself opens the directory cleanly afterwards.
    const raw = await PGlite.create(path.join(dataDir, 'pg'));
    expect((await raw.query<{ n: number }>('SELECT count(*)::int AS n FROM journal_head')).rows[0]!.n).toBe(1);
    await raw.close();
  });
});
