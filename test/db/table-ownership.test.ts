/**
 * Each table belongs to one folder under src: only that folder's code names it in SQL. Others
 * ask the owner's service or store, or embed a SQL fragment the owner exports (a hot query that
 * must not take another round trip). The tables come from the migrations; the owners are listed
 * here and in README.md ("Who owns which table"), which must agree.
 *
 * Only string and template literals are read (TypeScript's parser), so prose in comments does
 * not count; a fragment interpolated from the owner's module is not seen in the borrower's text.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.join(__dirname, '..', '..');
const SRC = path.join(ROOT, 'src');
const MIGRATIONS = path.join(ROOT, 'prisma', 'migrations');

/** Table → the folder under src that owns it (writes it, and alone names it in SQL). */
const OWNERS: Record<string, string> = {
  journal_entries: 'journal',
  journal_head: 'journal',
  journal_checkpoints: 'journal',
  policy_versions: 'policy',
  spend_totals: 'policy',
  spend_reservations: 'policy',
  users: 'people',
  api_keys: 'people',
  twins: 'twins',
  switches: 'twins',
  proposals: 'proposals',
  proposal_decisions: 'proposals',
  connector_calls: 'connectors',
  connector_pins: 'connectors',
  sandbox_records: 'connectors',
  webhook_deliveries: 'notify',
  objectives: 'objectives',
  objective_steps: 'objectives',
  signals: 'signals',
  claim_holders: 'db',
  knowledge_collections: 'knowledge',
  knowledge_documents: 'knowledge',
  knowledge_versions: 'knowledge',
  knowledge_passages: 'knowledge',
  knowledge_grants: 'knowledge',
};

/**
 * Files allowed to name a table they do not own, each with the reason. Empty: owners export
 * fragments instead (joinTwinNotHaltedSql, leftJoinTwinOwnerSql, proposalStatusDiffersSql).
 */
const ALLOWED: { file: string; table: string; why: string }[] = [];

function migratedTables(): string[] {
  const out = new Set<string>();
  for (const dir of fs.readdirSync(MIGRATIONS)) {
    const file = path.join(MIGRATIONS, dir, 'migration.sql');
    if (!fs.existsSync(file)) continue;
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/CREATE TABLE (?:IF NOT EXISTS )?"?([a-z_][a-z0-9_]*)"?/gi))
      out.add(m[1]!.toLowerCase());
  }
  return [...out].sort();
}

const IDENT = String.raw`"?([a-z_][a-z0-9_]*)"?`;
// A keyword that introduces a table, optionally with modifiers, then the name (quoted or not).
const TABLE_REF = new RegExp(
  String.raw`\b(?:FROM|JOIN|INTO|UPDATE|TABLE|TRUNCATE|REFERENCES)\s+(?:ONLY\s+)?(?:IF\s+(?:NOT\s+)?EXISTS\s+)?` + IDENT,
  'g',
);
// The rest of a list: `FROM a x, b y` and `TRUNCATE a, b` name b too.
const FROM_LIST = new RegExp(
  String.raw`\b(?:FROM|TRUNCATE)\s+((?:"?[a-z_][a-z0-9_]*"?(?:\s+(?:AS\s+)?[a-z_][a-z0-9_]*)?\s*,\s*)+"?[a-z_][a-z0-9_]*"?)`,
  'g',
);
// A table named as a string inside SQL: pg_total_relation_size('t'), 't'::regclass.
const QUOTED_RELATION = /(?:relation_size|table_size|indexes_size)\(\s*'([a-z_][a-z0-9_]*)'|'([a-z_][a-z0-9_]*)'::regclass/g;

/** The tables (of `known`) that a piece of SQL text names. */
function tablesNamed(text: string, known: ReadonlySet<string>): string[] {
  const found = new Set<string>();
  const add = (name: string | undefined) => {
    if (name && known.has(name)) found.add(name);
  };
  for (const m of text.matchAll(TABLE_REF)) add(m[1]);
  for (const m of text.matchAll(FROM_LIST)) {
    for (const part of m[1]!.split(',')) add(/"?([a-z_][a-z0-9_]*)"?/.exec(part.trim())?.[1]);
  }
  for (const m of text.matchAll(QUOTED_RELATION)) add(m[1] ?? m[2]);
  return [...found];
}

/** The text of every string and template literal in a TypeScript source (each substitution as ` ? `). */
function literals(file: string, source: string): string[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) out.push(node.text);
    else if (ts.isTemplateExpression(node)) out.push([node.head.text, ...node.templateSpans.map((s) => s.literal.text)].join(' ? '));
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (full === path.join(SRC, 'generated')) continue;
      out.push(...sourceFiles(full));
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts')) out.push(full);
  }
  return out.sort();
}

/** The folder directly under src a file belongs to ('' for src/app.ts and the like). */
const folderOf = (file: string) => {
  const rel = path.relative(SRC, file).split(path.sep);
  return rel.length > 1 ? rel[0]! : '';
};

interface Violation {
  file: string;
  table: string;
  owner: string;
}

/** Every source file's tables: those named by another folder, and those its owner names. */
function scan(known: ReadonlySet<string>): { violations: Violation[]; namedByOwner: Set<string> } {
  const violations: Violation[] = [];
  const namedByOwner = new Set<string>();
  for (const file of sourceFiles(SRC)) {
    const rel = path.relative(ROOT, file).split(path.sep).join('/');
    const folder = folderOf(file);
    const named = new Set(literals(file, fs.readFileSync(file, 'utf8')).flatMap((t) => tablesNamed(t, known)));
    for (const table of [...named].sort()) {
      const owner = OWNERS[table]!;
      if (owner !== folder) violations.push({ file: rel, table, owner });
      else namedByOwner.add(table);
    }
  }
  return { violations, namedByOwner };
}

describe('each table belongs to one folder', () => {
  const tables = migratedTables();
  const known = new Set(tables);

  it('reads the tables from the migrations, and every one has an owner that exists', () => {
    expect(tables.length).toBeGreaterThan(10);
    expect(Object.keys(OWNERS).sort()).toEqual(tables);
    for (const folder of new Set(Object.values(OWNERS))) expect(fs.statSync(path.join(SRC, folder)).isDirectory()).toBe(true);
  });

  it('finds the tables a piece of SQL names (the matcher itself)', () => {
    const names = (sql: string) => tablesNamed(sql, known).sort();
    expect(names(`SELECT p.id FROM proposals p JOIN twins t ON t.id = p.twin_id`)).toEqual(['proposals', 'twins']);
    expect(names(`AND NOT EXISTS (SELECT 1 FROM switches s WHERE s.name = 'kill')`)).toEqual(['switches']);
    expect(names(`INSERT INTO "users" (id) VALUES ($1)`)).toEqual(['users']);
    expect(names(`UPDATE objectives SET status = $2`)).toEqual(['objectives']);
    expect(names(`DELETE FROM webhook_deliveries WHERE id = $1`)).toEqual(['webhook_deliveries']);
    expect(names(`SELECT count(*) FROM journal_entries e, journal_head h`)).toEqual(['journal_entries', 'journal_head']);
    expect(names(`SELECT * FROM\n  signals`)).toEqual(['signals']);
    expect(names(`ALTER TABLE IF EXISTS api_keys ADD COLUMN x text`)).toEqual(['api_keys']);
    expect(names(`TRUNCATE connector_calls, sandbox_records`)).toEqual(['connector_calls', 'sandbox_records']);
    expect(names(`SELECT pg_total_relation_size('journal_entries')`)).toEqual(['journal_entries']);
    // Prose and other words are not SQL.
    expect(names('Returns the proposals from twins the caller owns')).toEqual([]);
    expect(names('SELECT 1 FROM twin_owners')).toEqual([]);
  });

  it('reads only literals: the SQL in a file, not its comments', () => {
    const src = "// UPDATE proposals here is prose\nconst q = `SELECT ${cols} FROM twins WHERE id = $1`;\nconst r = 'JOIN switches s';";
    expect(
      literals('x.ts', src)
        .flatMap((t) => tablesNamed(t, known))
        .sort(),
    ).toEqual(['switches', 'twins']);
  });

  it('no file names in SQL a table another folder owns', () => {
    const allowed = new Set(ALLOWED.map((a) => `${a.file} ${a.table}`));
    const { violations: found, namedByOwner } = scan(known);
    // The scan does read the sources: every table shows up in its owner's SQL.
    expect([...namedByOwner].sort()).toEqual(tables);
    const unexpected = found.filter((v) => !allowed.has(`${v.file} ${v.table}`));
    expect(
      unexpected.map((v) => `${v.file} names ${v.table}, owned by src/${v.owner} (ask its service or store, or use a fragment it exports)`),
    ).toEqual([]);
    // An allowance no longer needed goes too.
    const used = new Set(found.map((v) => `${v.file} ${v.table}`));
    expect(ALLOWED.filter((a) => !used.has(`${a.file} ${a.table}`))).toEqual([]);
  });

  it('only the owning folder uses a table through Prisma Client (prisma.<model>)', () => {
    const schema = fs.readFileSync(path.join(ROOT, 'prisma', 'schema.prisma'), 'utf8');
    const delegates = new Map<string, string>();
    for (const m of schema.matchAll(/^model (\w+) \{[\s\S]*?@@map\("([a-z_]+)"\)/gm)) delegates.set(m[1]![0]!.toLowerCase() + m[1]!.slice(1), m[2]!);
    expect([...delegates.values()].sort()).toEqual(tables);
    const found: string[] = [];
    const uses: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const rel = path.relative(ROOT, file).split(path.sep).join('/');
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/\bprisma\s*\.\s*([a-z][A-Za-z]*)\b/g)) {
        const table = delegates.get(m[1]!);
        if (!table) continue;
        uses.push(`${rel} ${m[1]}`);
        if (OWNERS[table] !== folderOf(file)) found.push(`${rel} uses prisma.${m[1]} (${table}), owned by src/${OWNERS[table]}`);
      }
    }
    // The scan does find the listings' uses.
    expect(uses).toEqual(expect.arrayContaining(['src/people/store.ts user', 'src/twins/store.ts twin', 'src/policy/store.ts policyVersion']));
    expect(found).toEqual([]);
  });

  it('README.md lists the same owners', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = /## Who owns which table\n([\s\S]*?)(?=\n## |$)/.exec(readme)?.[1];
    expect(section).toBeDefined();
    const rows = Object.fromEntries(
      [...section!.matchAll(/^\|\s*`([a-z_][a-z0-9_]*)`\s*\|\s*`src\/([a-z]+)`\s*\|/gm)].map((m) => [m[1]!, m[2]!]),
    );
    expect(rows).toEqual(OWNERS);
  });
});
