import { LineCounter, parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { lineFinder, type Path } from './positions';
import { issueProblems, knownFields, type YamlProblem } from './problems';

export type { YamlProblem };

/** One YAML file: its label in messages (e.g. policies/playbooks/renewal-discount.yaml) and its text. */
export interface YamlSource {
  file: string;
  text: string;
}

/** A checked document with where it came from, so later checks can still say `file:line`. */
export interface Located<T> {
  doc: T;
  file: string;
  lineOf(path: Path): number;
}

/**
 * Every YAML document in one file, each checked by `check` (the caller's schema), with every
 * problem reported as `file:line`: syntax errors, aliases that expand too far, schema issues, and
 * a file with no `kind` document at all. Shared by the loaders of authorities, connectors,
 * playbooks and signal rules.
 */
export function parseYamlDocuments<T>(
  src: YamlSource,
  kind: string,
  check: (data: unknown, lineOf: (path: Path) => number) => { ok: true; doc: T } | { ok: false; errors: YamlProblem[] },
): { docs: Located<T>[]; errors: YamlProblem[] } {
  const docs: Located<T>[] = [];
  const errors: YamlProblem[] = [];
  const lines = new LineCounter();
  const parsed = parseAllDocuments(src.text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  let found = 0;
  for (const doc of Array.isArray(parsed) ? parsed : []) {
    if (doc.errors.length) {
      // yaml appends " at line L, column C:" and a code excerpt; the line is reported separately.
      for (const e of doc.errors)
        errors.push({
          file: src.file,
          line: e.linePos?.[0]?.line ?? 1,
          message: `YAML syntax error: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`,
        });
      continue;
    }
    if (doc.contents === null) continue; // an empty document between "---" lines, or only comments
    found++;
    const lineOf = lineFinder(doc, lines);
    let data: unknown;
    try {
      data = doc.toJS({ maxAliasCount: 1000 });
    } catch (e) {
      errors.push({ file: src.file, line: 1, message: `YAML error: ${(e as Error).message}` });
      continue;
    }
    const r = check(data, lineOf);
    if (r.ok) docs.push({ doc: r.doc, file: src.file, lineOf });
    else errors.push(...r.errors);
  }
  if (found === 0 && errors.length === 0) errors.push({ file: src.file, line: 1, message: `no ${kind} document in this file` });
  return { docs, errors };
}

/**
 * Parses every document of every source against `schema`; `kind` names the document type in
 * messages. An unknown field's message lists the fields of `fieldsOf(data)` (default: `schema`),
 * for a union whose options a document's own field tells apart.
 */
export function parseDocuments<T>(
  sources: readonly YamlSource[],
  schema: z.ZodType<T>,
  kind: string,
  fieldsOf: (data: unknown) => z.ZodType | undefined = () => schema,
): { docs: Located<T>[]; errors: YamlProblem[] } {
  const docs: Located<T>[] = [];
  const errors: YamlProblem[] = [];
  for (const src of sources) {
    const r = parseYamlDocuments(src, kind, (data, lineOf) => {
      const checked = schema.safeParse(data);
      if (checked.success) return { ok: true, doc: checked.data };
      const fields = fieldsOf(data);
      const ctx = { data, file: src.file, lineOf, knownFields: (path: Path) => knownFields(fields, path) };
      return { ok: false, errors: checked.error.issues.flatMap((issue) => issueProblems(issue, ctx)) };
    });
    docs.push(...r.docs);
    errors.push(...r.errors);
  }
  return { docs, errors };
}
