/**
 * The sandbox's simulated systems as rows of `sandbox_records`: reading them (one, a list, or a
 * locked batch), writing a batch's final states in one statement, and the demo seed.
 */
import type { Sql, SqlTx } from '../db/sql';

export interface SandboxRecord {
  system: string;
  kind: string;
  key: string;
  data: Record<string, unknown>;
  version: number;
  updatedAt: string;
}

export type Ref = { system: string; kind: string; key: string };
export const refText = (r: Ref) => `${r.system}/${r.kind}/${r.key}`;

interface RecordRow {
  system: string;
  kind: string;
  key: string;
  data: Record<string, unknown>;
  version: number;
  updated_at: Date | string;
}

const toRecord = (r: RecordRow): SandboxRecord => ({
  system: r.system,
  kind: r.kind,
  key: r.key,
  data: r.data,
  version: r.version,
  updatedAt: new Date(r.updated_at).toISOString(),
});

export async function readSandboxRecord(
  sql: Pick<Sql, 'query'>,
  ref: Ref,
  opts: { lock?: boolean } = {},
): Promise<SandboxRecord | undefined> {
  const rows = await sql.query<RecordRow>(
    `SELECT system, kind, key, data, version, updated_at FROM sandbox_records WHERE system = $1 AND kind = $2 AND key = $3${opts.lock ? ' FOR UPDATE' : ''}`,
    [ref.system, ref.kind, ref.key],
  );
  return rows[0] && toRecord(rows[0]);
}

export async function listSandboxRecords(
  sql: Pick<Sql, 'query'>,
  filter: { system?: string; kind?: string } = {},
): Promise<SandboxRecord[]> {
  const rows = await sql.query<RecordRow>(
    `SELECT system, kind, key, data, version, updated_at FROM sandbox_records
      WHERE ($1::text IS NULL OR system = $1) AND ($2::text IS NULL OR kind = $2) ORDER BY system, kind, key`,
    [filter.system ?? null, filter.kind ?? null],
  );
  return rows.map(toRecord);
}

/** Several records in one statement, locked (in key order, as every writer locks them) when asked. */
export async function readSandboxRecords(tx: SqlTx, refs: readonly Ref[], opts: { lock?: boolean } = {}): Promise<SandboxRecord[]> {
  if (refs.length === 0) return [];
  const rows = await tx.query<RecordRow>(
    `SELECT system, kind, key, data, version, updated_at FROM sandbox_records
      WHERE (system, kind, key) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))
      ORDER BY system, kind, key${opts.lock ? ' FOR UPDATE' : ''}`,
    [refs.map((r) => r.system), refs.map((r) => r.kind), refs.map((r) => r.key)],
  );
  return rows.map(toRecord);
}

/**
 * Writes each record's final state of a batch with the version it reached, in one statement.
 * The versions were counted from rows this transaction holds locked; a record created by
 * another writer since it was found missing makes the batch fail, and the caller rolls back.
 */
export async function writeRecords(tx: SqlTx, writes: readonly { ref: Ref; data: Record<string, unknown>; version: number; created: boolean }[]): Promise<void> {
  if (writes.length === 0) return;
  const rows = await tx.query<{ system: string; kind: string; key: string; created: boolean }>(
    `INSERT INTO sandbox_records (system, kind, key, data, version)
     SELECT x.system, x.kind, x.key, x.data, x.version FROM jsonb_to_recordset($1::jsonb) AS x(system text, kind text, key text, data jsonb, version int)
     ON CONFLICT (system, kind, key) DO UPDATE SET data = EXCLUDED.data, version = EXCLUDED.version, updated_at = now()
     RETURNING system, kind, key, (xmax = 0) AS created`,
    [JSON.stringify(writes.map((w) => ({ ...w.ref, data: w.data, version: w.version })))],
  );
  const created = new Map(rows.map((r) => [refText(r), r.created]));
  for (const w of writes) {
    if (created.get(refText(w.ref)) !== w.created) throw new Error(`sandbox record ${refText(w.ref)} was created by another writer during the batch`);
  }
}

// ---------------------------------------------------------------------------------------------
// Seed data

const SEED: (Ref & { data: Record<string, unknown> })[] = [
  {
    system: 'crm',
    kind: 'account',
    key: 'acme',
    data: { name: 'Acme Corporation', tier: 'key', currency: 'EUR', discountPct: 5, discountHistory: [] },
  },
  {
    system: 'crm',
    kind: 'account',
    key: 'globex',
    data: { name: 'Globex', tier: 'key', currency: 'EUR', discountPct: 8, discountHistory: [] },
  },
  {
    system: 'crm',
    kind: 'account',
    key: 'initech',
    data: { name: 'Initech', tier: 'standard', currency: 'EUR', discountPct: 0, discountHistory: [] },
  },
  {
    system: 'crm',
    kind: 'account',
    key: 'umbrella',
    data: { name: 'Umbrella Corporation', tier: 'standard', currency: 'EUR', discountPct: 3, discountHistory: [] },
  },
  {
    system: 'erp',
    kind: 'supplier',
    key: 'northwind',
    data: {
      name: 'Northwind Traders',
      country: 'DE',
      currency: 'EUR',
      items: { 'steel-coil': { price: '812.50', currency: 'EUR' }, 'bearing-6204': { price: '3.20', currency: 'EUR' } },
      priceHistory: [],
    },
  },
  {
    system: 'erp',
    kind: 'supplier',
    key: 'contoso',
    data: {
      name: 'Contoso Components',
      country: 'NL',
      currency: 'EUR',
      items: { 'pcb-a7': { price: '14.90', currency: 'EUR' } },
      priceHistory: [],
    },
  },
  {
    system: 'maintenance',
    kind: 'asset',
    key: 'press-7',
    data: { name: 'Hydraulic press 7', site: 'plant-berlin', status: 'running', workOrders: [] },
  },
  {
    system: 'maintenance',
    kind: 'asset',
    key: 'pump-3',
    data: { name: 'Coolant pump 3', site: 'plant-berlin', status: 'running', workOrders: [] },
  },
  {
    system: 'maintenance',
    kind: 'asset',
    key: 'chiller-2',
    data: { name: 'Chiller 2', site: 'plant-lyon', status: 'running', workOrders: [] },
  },
];

/** A seed record as it will be once written, for previews before the first execution. */
export function seedRecord(ref: Ref): SandboxRecord | undefined {
  const r = SEED.find((s) => s.system === ref.system && s.kind === ref.kind && s.key === ref.key);
  return r && { ...r, data: structuredClone(r.data), version: 0, updatedAt: new Date(0).toISOString() };
}

/** Creates the demo accounts, suppliers and assets that are absent; never overwrites a record. */
export async function seedSandbox(sql: Pick<Sql, 'query'>): Promise<number> {
  let created = 0;
  for (const r of SEED) {
    const rows = await sql.query(
      'INSERT INTO sandbox_records (system, kind, key, data) VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (system, kind, key) DO NOTHING RETURNING key',
      [r.system, r.kind, r.key, JSON.stringify(r.data)],
    );
    created += rows.length;
  }
  return created;
}
