import { hostname } from 'node:os';
import type { Logger } from '../log/logger';
import type { Database, DedicatedSession } from './database';

/**
 * Liveness of claim holders (executors, objective runners, webhook senders) across processes.
 *
 * A holder registers once: a row in `claim_holders` and a session-level advisory lock
 * (LOCK_CLASS, hashtext(id)) on a connection of its own. PostgreSQL releases the lock the moment
 * that connection drops, as it does when the process is SIGKILLed or its host is lost, so the
 * claim queries' `regent_holder_dead(claimed_by)` sees a dead holder at once and another process
 * takes its work over within a poll, not after the lease. The lease stays the fallback for a
 * holder that is alive but stuck, or one that never registered.
 *
 * Embedded, the lock lives in the one connection there is: a restarted process has none of the
 * previous one's locks, so it takes that process's claims over at start.
 */

/** The advisory lock class of claim holders ("RGNT"); the SQL function regent_holder_dead reads it. */
export const LOCK_CLASS = 1380404820;

export interface Liveness {
  /** Registers a holder id and takes its lock; resolves once others can see it alive. */
  register(id: string): Promise<void>;
  /** False while the lock connection is lost: others may be taking this process's claims over. */
  alive(): boolean;
  close(): Promise<void>;
}

const RECONNECT_MS = 1000;

export async function createLiveness(db: Pick<Database, 'session'>, log: Logger): Promise<Liveness> {
  const ids = new Set<string>();
  let session: DedicatedSession | undefined = await db.session();
  let up = true;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  async function lock(s: DedicatedSession, id: string): Promise<void> {
    // try: a lock still held by a previous session of ours (a half-open connection) must not hang us.
    const [r] = await s.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [LOCK_CLASS, id]);
    if (!r?.ok) throw new Error(`the liveness lock of ${id} is held elsewhere`);
  }

  function watch(s: DedicatedSession): void {
    s.onLost((err) => {
      if (closed) return;
      up = false;
      session = undefined;
      log.warn('liveness connection lost: claiming nothing until it is back', { error: err.message });
      schedule();
    });
  }

  function schedule(): void {
    if (closed || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      void reconnect();
    }, RECONNECT_MS);
    retry.unref();
  }

  async function reconnect(): Promise<void> {
    let s: DedicatedSession | undefined;
    try {
      s = await db.session();
      for (const id of ids) await lock(s, id);
      if (closed) return void (await s.close());
      session = s;
      watch(s);
      up = true;
      log.info('liveness connection restored', { holders: ids.size });
    } catch (err) {
      await s?.close();
      log.warn('liveness connection not restored yet', { error: (err as Error).message });
      schedule();
    }
  }

  watch(session);
  return {
    async register(id) {
      if (!session) throw new Error('liveness connection is down');
      await lock(session, id);
      await session.query(
        `INSERT INTO claim_holders (id, host, pid) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING`,
        [id, hostname(), process.pid],
      );
      ids.add(id);
    },
    alive: () => up,
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      const s = session;
      session = undefined;
      if (!s) return;
      // A clean stop leaves no holder behind; its claims were given back by then.
      await s.query('DELETE FROM claim_holders WHERE id = ANY($1::text[])', [[...ids]]).catch(() => undefined);
      await s.query('SELECT pg_advisory_unlock($1, hashtext(id)) FROM unnest($2::text[]) AS id', [LOCK_CLASS, [...ids]]).catch(() => undefined);
      await s.close();
    },
  };
}
