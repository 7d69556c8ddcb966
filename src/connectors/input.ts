import type { z } from 'zod';
import type { Operation } from './types';

/** One line per problem, e.g. `to[0]: "bob" is not an email address`, so a twin can correct itself. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((i) => {
      const path = i.path.reduce<string>(
        (s, seg) => (typeof seg === 'number' ? `${s}[${seg}]` : s ? `${s}.${String(seg)}` : String(seg)),
        '',
      );
      return path ? `${path}: ${i.message}` : i.message;
    })
    .join('; ');
}

/** Validates an action's input against its operation; connectors re-check what callers validated. */
export function parseInput(op: Operation, input: unknown): { ok: true; input: Record<string, unknown> } | { ok: false; error: string } {
  const r = op.input.safeParse(input);
  return r.success ? { ok: true, input: r.data } : { ok: false, error: `invalid input for ${op.action}: ${formatIssues(r.error.issues)}` };
}
