import type { z } from 'zod';
import { dotted, valueAt, type Path } from './positions';

/**
 * Problems in YAML files of the policies directory as `file:line: message`, shared by the loaders
 * of authorities, connectors, playbooks and signal rules.
 */

/** A problem in a YAML file, at a line (1-based; 0 when the problem is not at a line, such as a missing directory). */
export interface YamlProblem {
  file: string;
  line: number;
  message: string;
}

/** `file:line: message`, or `file: message` when the problem is not at a line. */
export function formatProblem(e: YamlProblem): string {
  return e.line > 0 ? `${e.file}:${e.line}: ${e.message}` : `${e.file}: ${e.message}`;
}

/** Orders by file name. */
export const byFile = (a: { file: string }, b: { file: string }) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0);

/** Orders problems by file, then line. */
export const byPosition = (a: YamlProblem, b: YamlProblem) => byFile(a, b) || a.line - b.line;

/**
 * The field names `schema` accepts at `path`, for "known fields" hints: through optional,
 * nullable, default, pipe (its input) and lazy; into arrays, records and objects; at a union, its
 * object option. None where the path leads to no object.
 */
export function knownFields(schema: z.ZodType | undefined, path: Path): string[] {
  let s: any = schema;
  const unwrap = () => {
    for (;;) {
      const def = s?._zod?.def;
      if (def && ['optional', 'nullable', 'default', 'pipe'].includes(def.type)) s = def.type === 'pipe' ? def.in : def.innerType;
      else if (def?.type === 'lazy') s = def.getter();
      else if (def?.type === 'union') {
        const object = def.options.find((o: any) => o._zod.def.type === 'object');
        if (!object) return;
        s = object;
      } else return;
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

/** Where a document's problems are, and which field names to offer for an unknown one. */
export interface IssueContext {
  /** The document as parsed, before the schema. */
  data: unknown;
  file: string;
  lineOf(path: Path): number;
  /** The field names accepted at a path (see knownFields). */
  knownFields(path: Path): string[];
  /** Offer the nearest known field ("did you mean …?") before listing them all. */
  suggest?: boolean;
}

function unknownFieldMessage(key: string, path: Path, ctx: IssueContext): string {
  const known = ctx.knownFields(path);
  const near = ctx.suggest
    ? known
        .filter((k) => editDistance(k, key) <= Math.max(1, Math.floor(k.length / 3)))
        .sort((a, b) => editDistance(a, key) - editDistance(b, key))
    : [];
  const where = path.length ? ` in ${dotted(path)}` : '';
  const hint = near.length ? ` (did you mean ${near[0]}?)` : known.length ? ` (known fields: ${known.join(', ')})` : '';
  return `unknown field "${key}"${where}${hint}`;
}

/** One zod issue of a document as problems at its lines: unknown fields (one each), a missing field, a wrong value. */
export function issueProblems(issue: z.core.$ZodIssue, ctx: IssueContext): YamlProblem[] {
  const { data, file, lineOf } = ctx;
  const path = issue.path as Path;
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ file, line: lineOf([...path, key]), message: unknownFieldMessage(key, path, ctx) }));
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
