/** Which of the authorities delegating to a principal it acts under at a given instant. */
import type { CompiledAuthority, PolicyBundle } from './compile';

/** Newest first: the latest `valid.from`, then the highest version, then the smaller id. */
export function preference(a: CompiledAuthority, b: CompiledAuthority): number {
  return b.validFrom - a.validFrom || b.version - a.version || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function inForce(a: CompiledAuthority, atMs: number): boolean {
  return atMs >= a.validFrom && atMs < a.validUntil && !(a.revokedAt !== null && atMs >= a.revokedAt);
}

/**
 * The authority a principal acts under at `atMs`. Several documents may delegate to the same
 * principal (a new version taking over from an old one): the preferred one (latest valid.from,
 * highest version, smallest id) among those in force wins. When none is in force the preferred
 * one is still returned so the decision can say why it denies (expired, revoked).
 */
export function selectAuthority(bundle: PolicyBundle, principal: string, atMs: number, pinned?: string): CompiledAuthority | null {
  if (pinned !== undefined) {
    const a = bundle.authorities.get(pinned);
    return a && a.delegate === principal ? a : null;
  }
  const list = bundle.byDelegate.get(principal);
  if (!list || list.length === 0) return null;
  for (const a of list) if (inForce(a, atMs)) return a;
  return list[0]!;
}
