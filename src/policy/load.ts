/**
 * Loads a policies directory into a bundle, all or nothing: every problem in every file is
 * reported with `file:line`, and a bundle is only returned when there are none, so a caller can
 * keep the last good bundle in force.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseYamlDocuments } from '../yaml/documents';
import { readYamlSources } from '../yaml/folder';
import { valueAt, type Path } from '../yaml/positions';
import { byFile, byPosition, formatProblem, issueProblems, knownFields, type YamlProblem } from '../yaml/problems';
import { CompileError, compileBundle, type AuthoritySource, type PolicyBundle } from './engine';
import { AuthoritySchema, type AuthorityDoc } from './schema';
import { OUTCOME_RANK } from './types';

export interface PolicySource {
  /** Label used in messages and hashed into the version, e.g. policies/authorities/cfo-twin.yaml */
  file: string;
  text: string;
}

/** A problem at `file:line` (line 0 when it is not at a line: a missing directory). */
export type LoadError = YamlProblem;

export type LoadResult = { ok: true; bundle: PolicyBundle } | { ok: false; errors: LoadError[] };

/** `file:line: message`, for the CLI and logs. */
export const formatLoadError = formatProblem;

/** `sha256:<hex>` over the sources sorted by name, so the order files are read in never matters. */
export function bundleVersion(sources: readonly PolicySource[]): string {
  const hash = createHash('sha256');
  for (const s of [...sources].sort(byFile)) {
    // Length-prefixed so that no two different sets of files hash the same.
    hash.update(`${Buffer.byteLength(s.file)}:${s.file}\n${Buffer.byteLength(s.text)}:`);
    hash.update(s.text);
    hash.update('\n');
  }
  return `sha256:${hash.digest('hex')}`;
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
    const ctx = { data, file: src.file, lineOf, knownFields: (path: Path) => knownFields(AuthoritySchema, path), suggest: true };
    for (const issue of parsed.error.issues) {
      for (const e of issueProblems(issue, ctx)) {
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
    const mine = s.doc.knowledge;
    if (mine) {
      const theirs = parent.doc.knowledge;
      if (!theirs) {
        errors.push({ ...at(s, 'knowledge'), message: `knowledge widens parent ${parentId}, which grants none; a child can only narrow its parent` });
      } else {
        for (const [field, values] of [['collections', mine.collections], ['classes', mine.classes]] as const) {
          const allowed = new Set<string>(theirs[field]);
          values.forEach((v, i) => {
            if (!allowed.has(v))
              errors.push({
                ...at(s, 'knowledge', field, i),
                message: `knowledge.${field} ${v} widens parent ${parentId}'s (${theirs[field].join(', ')}); a child can only narrow its parent`,
              });
          });
        }
      }
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

/** Validates and compiles in-memory sources (files of a directory, or a version kept elsewhere). */
export function loadBundleFromSources(sources: readonly PolicySource[]): LoadResult {
  const sorted = [...sources].sort(byFile);
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
  if (!existsSync(authorities) || !statSync(authorities).isDirectory()) {
    return {
      ok: false,
      errors: [
        { file: `${root}/authorities`, line: 0, message: `no such directory (expected ${root}/authorities/*.yaml in ${resolve(dir)})` },
      ],
    };
  }
  return { ok: true, sources: readYamlSources(dir, 'authorities') };
}

/** Loads and compiles a policies directory. */
export function loadPolicies(dir: string): LoadResult {
  const read = readPolicySources(dir);
  return read.ok ? loadBundleFromSources(read.sources) : read;
}
