/**
 * One event bus across processes for "what a twin is offered may have changed" (a policy
 * reload, a mode change, a kill switch): MCP clients listening on `subscriptions/listen` hear it
 * from whichever process they are connected to. In-process listeners hear a publish at once; on
 * PostgreSQL the event also goes out as NOTIFY and every other process delivers it to its own
 * listeners. The embedded database has one process, so in-process delivery is all there is.
 */
import { InMemoryServerEventBus, type ServerEvent, type ServerEventBus } from '@modelcontextprotocol/server';
import { randomUUID } from 'node:crypto';
import type { Database, DedicatedSession } from '../db/database';
import type { Logger } from '../log/logger';

const CHANNEL = 'regent_mcp_events';

export interface ToolsBus extends ServerEventBus {
  /** Announces that offered tools may have changed, here and (PostgreSQL) in every other process. */
  toolsChanged(why: string): void;
  close(): Promise<void>;
}

export async function createToolsBus(db: Pick<Database, 'kind' | 'sql' | 'session'>, log: Logger): Promise<ToolsBus> {
  const local = new InMemoryServerEventBus((err) => log.warn('an MCP change listener failed', { error: err.message }));
  const me = randomUUID();
  let session: DedicatedSession | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  async function listen(delayMs: number): Promise<void> {
    if (closed || db.kind !== 'postgres') return;
    try {
      const s = await db.session();
      s.onNotification?.((channel, payload) => {
        if (channel !== CHANNEL) return;
        try {
          const m = JSON.parse(payload) as { from?: string; kind?: string };
          if (m.from === me || m.kind !== 'tools_list_changed') return;
          local.publish({ kind: 'tools_list_changed' });
        } catch {
          // Not ours: ignored.
        }
      });
      s.onLost((err) => {
        if (closed) return;
        log.warn('lost the connection that hears MCP change events from other processes; reconnecting', { error: err.message });
        session = undefined;
        // A change missed while reconnecting: listeners re-list on the next event; tell them now.
        local.publish({ kind: 'tools_list_changed' });
        retry = setTimeout(() => void listen(Math.min(delayMs * 2, 30_000)), delayMs);
        retry.unref();
      });
      await s.query(`LISTEN ${CHANNEL}`);
      if (closed) {
        await s.close();
        return;
      }
      session = s;
    } catch (err) {
      log.warn('cannot listen for MCP change events from other processes; retrying', { error: (err as Error).message, retryInMs: delayMs });
      retry = setTimeout(() => void listen(Math.min(delayMs * 2, 30_000)), delayMs);
      retry.unref();
    }
  }
  await listen(500);

  return {
    publish(event: ServerEvent) {
      local.publish(event);
    },
    subscribe: (listener) => local.subscribe(listener),
    toolsChanged(why: string) {
      local.publish({ kind: 'tools_list_changed' });
      if (db.kind === 'postgres') {
        db.sql
          .query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify({ from: me, kind: 'tools_list_changed', why })])
          .catch((err) => log.warn('could not tell other processes that MCP tools changed', { error: (err as Error).message }));
      }
    },
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      await session?.close().catch(() => undefined);
      session = undefined;
    },
  };
}
