import fs from 'node:fs';
import path from 'node:path';
import { getDMMF } from '@prisma/internals';
import type { Database } from '../../src/db/database';
import { describeEachDatabase } from '../support/databases';

/**
 * The migrated database must match prisma/schema.prisma: the same tables, columns, types,
 * nullability and indexes. Without Prisma's schema engine (not downloadable here) this stands
 * in for `prisma migrate diff`, so the SQL migrations and the schema cannot drift silently.
 */

// Prisma scalar → the PostgreSQL type Prisma maps it to when no @db attribute is given.
const DEFAULT_TYPE: Record<string, string> = {
  String: 'text',
  Int: 'integer',
  BigInt: 'bigint',
  Boolean: 'boolean',
  DateTime: 'timestamp(3) without time zone',
  Json: 'jsonb',
  Float: 'double precision',
  Decimal: 'numeric(65,30)',
  Bytes: 'bytea',
};

function nativeToPg(native: [string, string[]] | null | undefined, scalar: string): string {
  if (!native) return DEFAULT_TYPE[scalar] ?? `?${scalar}`;
  const [name, args] = native;
  switch (name) {
    case 'Timestamptz':
      return `timestamp(${args[0] ?? 3}) with time zone`;
    case 'Timestamp':
      return `timestamp(${args[0] ?? 3}) without time zone`;
    case 'Char':
      return `character(${args[0] ?? 1})`;
    case 'VarChar':
      return args[0] ? `character varying(${args[0]})` : 'character varying';
    case 'Uuid':
      return 'uuid';
    case 'Text':
      return 'text';
    case 'JsonB':
      return 'jsonb';
    case 'Decimal':
      return `numeric(${args.join(',')})`;
    default:
      return name.toLowerCase();
  }
}

interface Expected {
  columns: Map<string, { type: string; nullable: boolean }>;
  indexes: Set<string>;
}

async function expectedFromSchema(): Promise<Map<string, Expected>> {
  const datamodel = fs.readFileSync(path.resolve(__dirname, '../../prisma/schema.prisma'), 'utf8');
  const dmmf = await getDMMF({ datamodel });
  const tables = new Map<string, Expected>();
  // DMMF leaves out Unsupported("…") fields (a tsvector, say): read them from the schema's text.
  const unsupported = new Map<string, { field: string; column: string; type: string; nullable: boolean }[]>();
  for (const m of datamodel.matchAll(/^model (\w+) \{([\s\S]*?)^\}/gm)) {
    for (const f of m[2]!.matchAll(/^\s+(\w+)\s+Unsupported\("([^"]+)"\)(\?)?([^\n]*)$/gm)) {
      const column = /@map\("([^"]+)"\)/.exec(f[4]!)?.[1] ?? f[1]!;
      const list = unsupported.get(m[1]!) ?? unsupported.set(m[1]!, []).get(m[1]!)!;
      list.push({ field: f[1]!, column, type: f[2]!, nullable: f[3] === '?' });
    }
  }
  for (const model of dmmf.datamodel.models) {
    const table = model.dbName ?? model.name;
    const columns = new Map<string, { type: string; nullable: boolean }>();
    const extra = unsupported.get(model.name) ?? [];
    for (const u of extra) columns.set(u.column, { type: u.type, nullable: u.nullable });
    const colOf = (field: string) => {
      const f = model.fields.find((x) => x.name === field);
      return f ? (f.dbName ?? f.name) : extra.find((u) => u.field === field)!.column;
    };
    for (const f of model.fields) {
      if (f.kind === 'object') continue;
      let type = nativeToPg(f.nativeType as [string, string[]] | null, f.type);
      if (f.isList) type += '[]';
      // Prisma creates scalar lists as nullable columns.
      columns.set(f.dbName ?? f.name, { type, nullable: f.isList ? true : !f.isRequired });
    }
    const indexes = new Set<string>();
    for (const idx of dmmf.datamodel.indexes.filter((i) => i.model === model.name)) {
      const cols = idx.fields.map((f) => colOf(f.name));
      const kind = idx.type === 'id' ? 'pkey' : idx.type === 'unique' ? 'unique' : 'index';
      indexes.add(`${kind}(${cols.join(',')})`);
    }
    tables.set(table, { columns, indexes });
  }
  return tables;
}

async function actualFromDatabase(db: Database): Promise<Map<string, Expected>> {
  const cols = await db.sql.query<{ table_name: string; column_name: string; type: string; is_nullable: string }>(
    `SELECT c.table_name, c.column_name, format_type(a.atttypid, a.atttypmod) AS type, c.is_nullable
       FROM information_schema.columns c
       JOIN pg_attribute a ON a.attrelid = (quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))::regclass AND a.attname = c.column_name
      WHERE c.table_schema = current_schema() AND c.table_name <> '_prisma_migrations'`,
  );
  const idx = await db.sql.query<{ table_name: string; is_primary: boolean; is_unique: boolean; columns: string[] }>(
    `SELECT t.relname AS table_name, i.indisprimary AS is_primary, i.indisunique AS is_unique,
            array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                  JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.ord)::text[] AS columns
       FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = current_schema() AND t.relname <> '_prisma_migrations'`,
  );
  const tables = new Map<string, Expected>();
  const get = (t: string) => tables.get(t) ?? tables.set(t, { columns: new Map(), indexes: new Set() }).get(t)!;
  for (const c of cols) get(c.table_name).columns.set(c.column_name, { type: c.type, nullable: c.is_nullable === 'YES' });
  for (const i of idx) get(i.table_name).indexes.add(`${i.is_primary ? 'pkey' : i.is_unique ? 'unique' : 'index'}(${i.columns.join(',')})`);
  return tables;
}

const plain = (m: Map<string, Expected>) =>
  Object.fromEntries(
    [...m].sort(([a], [b]) => a.localeCompare(b)).map(([t, e]) => [
      t,
      { columns: Object.fromEntries([...e.columns].sort(([a], [b]) => a.localeCompare(b))), indexes: [...e.indexes].sort() },
    ]),
  );

describeEachDatabase('the migrated database', (getDb) => {
  let db: Database;
  beforeAll(async () => {
    db = await getDb().open();
  });
  afterAll(async () => db?.close());

  it('matches prisma/schema.prisma table by table, column by column, index by index', async () => {
    expect(plain(await actualFromDatabase(db))).toEqual(plain(await expectedFromSchema()));
  });

  it('records every migration the way prisma migrate deploy does', async () => {
    const rows = await db.sql.query<{ migration_name: string; checksum: string; finished_at: Date | null; applied_steps_count: number }>(
      'SELECT migration_name, checksum, finished_at, applied_steps_count FROM "_prisma_migrations"',
    );
    const dir = path.resolve(__dirname, '../../prisma/migrations');
    const names = fs.readdirSync(dir).filter((n) => fs.statSync(path.join(dir, n)).isDirectory()).sort();
    expect(rows.map((r) => r.migration_name).sort()).toEqual(names);
    for (const r of rows) {
      expect(r.finished_at).not.toBeNull();
      expect(r.checksum).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(await db.migrationStatus()).toEqual({ applied: names, pending: [], problems: [] });
    // Applying again is a no-op.
    expect(await db.migrate()).toEqual([]);
  });
});
