import fs from 'node:fs';
import path from 'node:path';
import type { Harness } from '../objectives/support';

/** Writes policies/signals/sources/<id>.yaml. */
export function writeSource(policies: string, id: string, yaml: string): void {
  const dir = path.join(policies, 'signals', 'sources');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${id}.yaml`), `kind: SignalSource\nid: ${id}\n${yaml}`);
}

export const ce = (id: string, over: Record<string, unknown> = {}) => ({
  specversion: '1.0',
  id,
  type: 'plant.reading_taken',
  source: '/plant/berlin',
  time: '2026-11-20T06:00:00Z',
  datacontenttype: 'application/json',
  data: { asset: 'press-7', reading: 42 },
  ...over,
});

/** A predicted failure the shipped rules turn into the urgent maintenance playbook on ops-twin. */
export const failure = (id: string) =>
  ce(id, { type: 'machine.failure_predicted', data: { asset: 'press-7', probability: 0.95, window: 'tomorrow 06:00-10:00', estimatedCost: '4800.00' } });

export async function journalOf(h: Harness, kind: string): Promise<Array<{ seq: number; subject: string | null; actor: string; data: Record<string, any> }>> {
  return h.regent.db.sql.query(`SELECT seq::int AS seq, subject, actor, data FROM journal_entries WHERE kind = $1 ORDER BY seq`, [kind]);
}

export async function receivedCount(h: Harness, id: string): Promise<number> {
  const rows = await h.regent.db.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM journal_entries WHERE kind = 'signal.received' AND subject = $1`, [`signal:${id}`]);
  return rows[0]!.n;
}

export async function signalRow(h: Harness, id: string): Promise<{ id: string; source: string; type: string; payload: any; result: any } | undefined> {
  return (await h.regent.db.sql.query<any>(`SELECT id, source, type, payload, result FROM signals WHERE id = $1`, [id]))[0];
}

export async function readyz(h: Harness): Promise<Record<string, any>> {
  const r = await fetch(`${h.server.url}/readyz`);
  return { httpStatus: r.status, ...((await r.json()) as Record<string, any>) };
}
