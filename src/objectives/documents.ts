/**
 * Reading YAML documents of one kind from a folder of the policies directory (playbooks, signal
 * rules) with every problem reported as `file:line`, and noticing when the folder changed so a
 * running server picks up edits without a restart. All or nothing: a caller keeps the last good
 * set when a new one has errors.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { z } from 'zod';
import type { LoadError } from '../policy/load';
import { parseYamlDocuments, type Located } from '../yaml/documents';
import { dotted, valueAt, type Path } from '../yaml/positions';

export type { LoadError };

export interface DocumentSource {
  /** Label used in messages, e.g. policies/playbooks/renewal-discount.yaml */
  file: string;
  text: string;
}

export type { Located };

/** `<dir>/<folder>/*.yaml`, labelled relative to the policies directory's parent. */
export function readDocumentSources(dir: string, folder: string): DocumentSource[] {
  const root = basename(resolve(dir));
  const where = join(dir, folder);
  if (!existsSync(where) || !statSync(where).isDirectory()) return [];
  return readdirSync(where)
    .filter((n) => /\.ya?ml$/.test(n))
    .sort()
    .map((n) => ({ file: `${root}/${folder}/${n}`, text: readFileSync(join(where, n), 'utf8') }));
}

/** A cheap identity of a folder's contents (names, sizes, modification times). */
export function folderFingerprint(dir: string, folder: string): string {
  const where = join(dir, folder);
  if (!existsSync(where)) return 'absent';
  const h = createHash('sha256');
  for (const n of readdirSync(where).sort()) {
    if (!/\.ya?ml$/.test(n)) continue;
    const s = statSync(join(where, n));
    h.update(`${n}\0${s.size}\0${s.mtimeMs}\n`);
  }
  return h.digest('hex');
}

/** The field names an object schema accepts at `path`, for "known fields" hints. */
function knownFields(schema: z.ZodType, path: Path): string[] {
  let s: any = schema;
  const unwrap = () => {
    for (;;) {
      const def = s?._zod?.def;
      if (def && ['optional', 'nullable', 'default', 'pipe'].includes(def.type)) s = def.type === 'pipe' ? def.in : def.innerType;
      else if (def?.type === 'lazy') s = def.getter();
      else return;
    }
  };
  unwrap();
  for (const seg of path) {
    const def = s?._zod?.def;
    if (typeof seg === 'number' && def?.type === 'array') s = def.element;
    else if (def?.type === 'object') s = def.shape[seg];
    else if (def?.type === 'record') s = def.valueType;
    else return [];
    unwrap();
  }
  return s?._zod?.def?.type === 'object' ? Object.keys(s._zod.def.shape) : [];
}

function issueErrors(schema: z.ZodType, issue: z.core.$ZodIssue, data: unknown, file: string, lineOf: (p: Path) => number): LoadError[] {
  const path = issue.path as Path;
  if (issue.code === 'unrecognized_keys') {
    const known = knownFields(schema, path);
    const where = path.length ? ` in ${dotted(path)}` : '';
    return issue.keys.map((key) => ({
      file,
      line: lineOf([...path, key]),
      message: `unknown field "${key}"${where}${known.length ? ` (known fields: ${known.join(', ')})` : ''}`,
    }));
  }
  if (valueAt(data, path) === undefined && (issue.code === 'invalid_type' || issue.message === 'required')) {
    return [{ file, line: lineOf(path), message: `missing required field "${dotted(path)}"` }];
  }
  const message =
    issue.code === 'invalid_type' && issue.message.startsWith('Invalid input')
      ? `expected ${issue.expected}, got ${JSON.stringify(valueAt(data, path))}`
      : issue.message;
  return [{ file, line: lineOf(path), message: path.length ? `${dotted(path)}: ${message}` : message }];
}

/** Parses every document of every source against `schema`; `kind` names the document type in messages. */
export function parseDocuments<T>(
  sources: readonly DocumentSource[],
  schema: z.ZodType<T>,
  kind: string,
): { docs: Located<T>[]; errors: LoadError[] } {
  const docs: Located<T>[] = [];
  const errors: LoadError[] = [];
  for (const src of sources) {
    const r = parseYamlDocuments(src, kind, (data, lineOf) => {
      const checked = schema.safeParse(data);
      return checked.success
        ? { ok: true, doc: checked.data }
        : { ok: false, errors: checked.error.issues.flatMap((issue) => issueErrors(schema, issue, data, src.file, lineOf)) };
    });
    docs.push(...r.docs);
    errors.push(...r.errors);
  }
  return { docs, errors };
}

export const byPosition = (a: LoadError, b: LoadError) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line);
