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
  const issue = r.error.issues[0]!;
  const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
  const path = [...issue.path, ...keys.slice(0, 1)].map(String);
  const field = path.length ? `${what}.${path.join('.')}` : what;
  const message = issue.code === 'unrecognized_keys' ? 'is not a known field' : issue.message;
  throw new InputError(`${field}: ${message}`, { field });
}
