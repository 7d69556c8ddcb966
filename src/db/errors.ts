/** Database errors that callers in any folder tell apart. */

/** PostgreSQL's unique_violation, as both pg and PGlite report it. */
export function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === '23505';
}
