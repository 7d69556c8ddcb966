/**
 * Loads a policies directory into a bundle, all or nothing: every problem in every file is
 * reported with `file:line`, and a bundle is only returned when there are none, so a caller can
 * keep the last good bundle in force.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseYamlDocuments } from '../yaml/documents';
import { dotted, valueAt, type Path } from '../yaml/positions';
import type { z } from 'zod';
import { CompileError, compileBundle, type AuthoritySource, type PolicyBundle } from './engine';
import { AuthoritySchema, type AuthorityDoc } from './schema';
import { OUTCOME_RANK } from './types';

export interface PolicySource {
  /** Label used in messages and hashed into the version, e.g. policies/authorities/cfo-twin.yaml */
  file: string;
  text: string;
}

export interface LoadError {
  file: string;
  /** 1-based; 0 when the problem is not at a line (a missing directory). */
  line: number;
  message: string;
}

export type LoadResult = { ok: true; bundle: PolicyBundle } | { ok: false; errors: LoadError[] };

export function formatLoadError(e: LoadError): string {
  return e.line > 0 ? `${e.file}:${e.line}: ${e.message}` : `${e.file}: ${e.message}`;
}

/** `sha256:<hex>` over the sources sorted by name, so the order files are read in never matters. */
export function bundleVersion(sources: readonly PolicySource[]): string {
  const hash = createHash('sha256');
  for (const s of [...sources].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0))) {
    // Length-prefixed so that no two different sets of files hash the same.
    hash.update(`${Buffer.byteLength(s.file)}:${s.file}\n${Buffer.byteLength(s.text)}:`);
    hash.update(s.text);
    hash.update('\n');
  }
  return `sha256:${hash.digest('hex')}`;
}

/** The field names zod accepts at a path, for "did you mean" hints. */
function knownFields(path: Path): string[] {
  let s: any = AuthoritySchema;
  const unwrap = () => {
    while (s?._zod?.def && ['optional', 'nullable', 'default'].includes(s._zod.def.type)) s = s._zod.def.innerType;
    if (s?._zod?.def?.type === 'union') s = s._zod.def.options.find((o: any) => o._zod.def.type === 'object') ?? s;
  };
  unwrap();
  for (const seg of path) {
    if (typeof seg === 'number' && s?._zod?.def?.type === 'array') s = s._zod.def.element;
    else if (s?._zod?.def?.type === 'object') s = s._zod.def.shape[seg];
    else return [];
    unwrap();
  }
  return s?._zod?.def?.type === 'object' ? Object.keys(s._zod.def.shape) : [];
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

function unknownFieldMessage(key: string, path: Path): string {
  const known = knownFields(path);
  const near = known
    .filter((k) => editDistance(k, key) <= Math.max(1, Math.floor(k.length / 3)))
    .sort((a, b) => editDistance(a, key) - editDistance(b, key));
  const where = path.length ? ` in ${dotted(path)}` : '';
  const hint = near.length ? ` (did you mean ${near[0]}?)` : known.length ? ` (known fields: ${known.join(', ')})` : '';
  return `unknown field "${key}"${where}${hint}`;
}

function issueErrors(issue: z.core.$ZodIssue, data: unknown, file: string, lineOf: (p: Path) => number): LoadError[] {
  const path = issue.path as Path;
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ file, line: lineOf([...path, key]), message: unknownFieldMessage(key, path) }));
  }
  if (valueAt(data, path) === undefined && (issue.code === 'invalid_type' || issue.message === 'required')) {
    return [{ file, line: lineOf(path), message: `missing required field "${dotted(path)}"` }];
  }
  // zod's own wording ("Invalid input: …") is replaced; messages written in the schema are kept.
  const message =
    issue.code === 'invalid_type' && issue.message.startsWith('Invalid input')
      ? `expected ${issue.expected}, got ${JSON.stringify(valueAt(data, path))}`
      : issue.message;
  return [{ file, line: lineOf(path), message: path.length ? `${dotted(path)}: ${message}` : message }];
}

interface Parsed {
  sources: AuthoritySource[];
  errors: LoadError[];
  /** ids seen even in invalid documents, so a child of a broken parent is not told it has none */
  ids: Set<string>;
}

function parseSource(src: PolicySource, into: Parsed) {
  const r = parseYamlDocuments(src, 'Authority', (data, lineOf) => {
    const id = valueAt(data, ['id']);
    if (typeof id === 'string') into.ids.add(id);
    const parsed = AuthoritySchema.safeParse(data);
    if (parsed.success) return { ok: true, doc: parsed.data as AuthorityDoc };
    // A malformed amount fails both its own check and the currency check: report it once.
    const seen = new Set<string>();
    const errors: LoadError[] = [];
    for (const issue of parsed.error.issues) {
      for (const e of issueErrors(issue, data, src.file, lineOf)) {
        const key = `${e.line}\u0000${e.message}`;
        if (!seen.has(key)) errors.push(e);
        seen.add(key);
      }
    }
    return { ok: false, errors };
  });
  into.sources.push(...r.docs);
  into.errors.push(...r.errors);
}

/** Checks across documents: unique ids, existing parents, no cycles, children only narrow. */
function crossCheck(sources: AuthoritySource[], knownIds: Set<string>): LoadError[] {
  const errors: LoadError[] = [];
  const at = (s: AuthoritySource, ...path: (string | number)[]) => ({ file: s.file, line: s.lineOf(path) });
  const byId = new Map<string, AuthoritySource>();
  for (const s of sources) {
    const first = byId.get(s.doc.id);
    if (first) errors.push({ ...at(s, 'id'), message: `duplicate id "${s.doc.id}" (also in ${first.file}:${first.lineOf(['id'])})` });
    else byId.set(s.doc.id, s);
  }
  for (const s of byId.values()) {
    const parentId = s.doc.parent;
    if (!parentId) continue;
    const parent = byId.get(parentId);
    if (!parent) {
      if (!knownIds.has(parentId)) errors.push({ ...at(s, 'parent'), message: `parent "${parentId}" does not exist` });
      continue;
    }
    const trail = [s.doc.id];
    for (let p: AuthoritySource | undefined = parent; p; p = p.doc.parent ? byId.get(p.doc.parent) : undefined) {
      trail.push(p.doc.id);
      if (p.doc.id === s.doc.id) {
        errors.push({ ...at(s, 'parent'), message: `cycle in parents: ${trail.join(' → ')}` });
        break;
      }
      if (trail.length > byId.size + 1) break; // a cycle further up; reported by its members
    }
    if (OUTCOME_RANK[s.doc.mode] > OUTCOME_RANK[parent.doc.mode]) {
      errors.push({
        ...at(s, 'mode'),
        message: `mode ${s.doc.mode} widens parent ${parentId}'s mode ${parent.doc.mode}; a child can only narrow its parent`,
      });
    }
    if (s.doc.currency !== parent.doc.currency) {
      errors.push({
        ...at(s, 'currency'),
        message: `currency ${s.doc.currency} differs from parent ${parentId}'s ${parent.doc.currency}; a child uses its parent's currency`,
      });
    }
  }
  return errors;
}

const byPosition = (a: LoadError, b: LoadError) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line);

/** Validates and compiles in-memory sources (files of a directory, or a version kept elsewhere). */
export function loadBundleFromSources(sources: readonly PolicySource[]): LoadResult {
  const sorted = [...sources].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  const parsed: Parsed = { sources: [], errors: [], ids: new Set() };
  for (const src of sorted) parseSource(src, parsed);
  parsed.errors.push(...crossCheck(parsed.sources, parsed.ids));
  if (parsed.errors.length) return { ok: false, errors: parsed.errors.sort(byPosition) };
  try {
    return {
      ok: true,
      bundle: compileBundle(
        parsed.sources,
        bundleVersion(sorted),
        sorted.map((s) => s.file),
      ),
    };
  } catch (e) {
    if (e instanceof CompileError) return { ok: false, errors: [{ file: e.file, line: e.line, message: e.message }] };
    throw e;
  }
}

export type ReadResult = { ok: true; sources: PolicySource[] } | { ok: false; errors: LoadError[] };

/**
 * Reads `<dir>/authorities/*.yaml`. Files are labelled relative to the policies directory's
 * parent (`policies/authorities/cfo-twin.yaml`), so messages and the version do not depend on
 * where the directory sits on disk.
 */
export function readPolicySources(dir: string): ReadResult {
  const root = basename(resolve(dir));
  const authorities = join(dir, 'authorities');
  const label = (name: string) => `${root}/authorities/${name}`;
  if (!existsSync(authorities) || !statSync(authorities).isDirectory()) {
    return {
      ok: false,
      errors: [
        { file: `${root}/authorities`, line: 0, message: `no such directory (expected ${root}/authorities/*.yaml in ${resolve(dir)})` },
      ],
    };
  }
  const names = readdirSync(authorities)
    .filter((n) => /\.ya?ml$/.test(n))
    .sort();
  return { ok: true, sources: names.map((n) => ({ file: label(n), text: readFileSync(join(authorities, n), 'utf8') })) };
}

/** Loads and compiles a policies directory. */
export function loadPolicies(dir: string): LoadResult {
  const read = readPolicySources(dir);
  return read.ok ? loadBundleFromSources(read.sources) : read;
}
