import type { z } from 'zod';
import { InputError } from './errors';

/**
 * Parses `value` with `schema` or throws an InputError naming the first offending field (also
 * as `details.field`, so a problem+json response names it). `what` prefixes the field, e.g. "body".
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  if (value === undefined) throw new InputError(`${what}: expected a JSON object (send Content-Type: application/json)`, { field: what });
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const { field, message } = firstIssueAt(r.error, what);
  throw new InputError(message, { field });
}

/** The first issue of a failed parse of `what`: the field it names and `field: problem`. */
export function firstIssueAt(err: z.ZodError, what: string): { field: string; message: string } {
  const issue = err.issues[0]!;
  const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
  const path = [...issue.path, ...keys.slice(0, 1)].map(String);
  const field = path.length ? `${what}.${path.join('.')}` : what;
  return { field, message: `${field}: ${issue.code === 'unrecognized_keys' ? 'is not a known field' : issue.message}` };
}

/** The first issue of a failed parse as `prefix` + `path: problem` (or just the problem at the top). */
export function firstIssue(err: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }, prefix = ''): string {
  const i = err.issues[0]!;
  return `${prefix}${i.path.length ? i.path.map(String).join('.') + ': ' : ''}${i.message}`;
}
