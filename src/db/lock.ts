import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The embedded database serves one process at a time. A lock file in the data directory names
 * the holder; a lock whose process is gone (a crash, a SIGKILL) is taken over, and with it the
 * `postmaster.pid` PGlite leaves behind, which would otherwise make the next open hang.
 */
export interface LockHolder {
  pid: number;
  host: string;
  command: string;
  startedAt: string;
}

export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError';
  constructor(
    readonly dir: string,
    readonly holder: LockHolder,
  ) {
    super(
      `data directory ${dir} is in use by process ${holder.pid} (${holder.command}, started ${holder.startedAt}` +
        `${holder.host !== os.hostname() ? ` on ${holder.host}` : ''}); stop it first, ` +
        `or run several processes on PostgreSQL with DATABASE_URL`,
    );
  }
}

export interface DataDirLock {
  readonly file: string;
  /** True when a previous holder had died and its lock was recovered. */
  readonly recovered: boolean;
  release(): void;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A recycled pid that is not a Node process cannot be our holder.
  try {
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return /node|regent|jest/.test(cmd);
  } catch {
    return true; // no /proc (macOS): trust kill(0)
  }
}

function readHolder(file: string): LockHolder | undefined {
  try {
    const h = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockHolder>;
    if (typeof h.pid === 'number') {
      return { pid: h.pid, host: h.host ?? '?', command: h.command ?? '?', startedAt: h.startedAt ?? '?' };
    }
  } catch {
    // unreadable or half-written (a crash while writing it): treat as stale
  }
  return undefined;
}

export function acquireDataDirLock(dataDir: string, pgDir: string, command: string): DataDirLock {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, 'regent.lock');
  const me: LockHolder = { pid: process.pid, host: os.hostname(), command, startedAt: new Date().toISOString() };
  let recovered = false;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(me) + '\n', { flag: 'wx', mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = readHolder(file);
      if (holder && holder.pid === process.pid && holder.host === me.host) {
        throw new DataDirLockedError(dataDir, holder); // opened twice in one process
      }
      if (holder && (holder.host !== me.host || processAlive(holder.pid))) {
        throw new DataDirLockedError(dataDir, holder);
      }
      fs.rmSync(file, { force: true });
      recovered = true;
      if (attempt === 2) throw err;
    }
  }
  // We hold the lock, so no live process owns the embedded server: its pid file is stale.
  const pidFile = path.join(pgDir, 'postmaster.pid');
  if (fs.existsSync(pidFile)) {
    fs.rmSync(pidFile, { force: true });
    recovered = true;
  }
  let released = false;
  return {
    file,
    recovered,
    release() {
      if (released) return;
      released = true;
      const holder = readHolder(file);
      if (holder?.pid === process.pid) fs.rmSync(file, { force: true });
    },
  };
}
