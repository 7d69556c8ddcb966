import type { ToolSpec } from '../agent/types';
import type { ConnectorRegistry } from '../connectors/types';
import type { CompiledAuthority, PolicyBundle } from '../policy/engine';

/** Why an authority offers no tools right now, or null while it is in force. */
export function notInForce(a: CompiledAuthority, atMs: number): string | null {
  if (a.revokedAt !== null && atMs >= a.revokedAt) return `${a.label} is revoked${a.revokedReason ? ` (${a.revokedReason})` : ''}`;
  if (atMs < a.validFrom) return `${a.label} is not valid before ${new Date(a.validFrom).toISOString()}`;
  if (atMs >= a.validUntil) return `${a.label} expired at ${new Date(a.validUntil).toISOString()}`;
  return null;
}

/**
 * The tools a twin is offered: exactly the connector operations its authority grants (and every
 * ancestor in the parent chain grants too, since a child only narrows), minus actions a forbid
 * without conditions rules out, and only those a connector actually offers. Least privilege:
 * nothing else is ever shown to a planner. Conditions and limits are not predicted here; policy
 * decides each request when it is made.
 */
export function toolsFor(
  bundle: PolicyBundle,
  registry: ConnectorRegistry,
  authorityId: string,
  at = Date.now(),
): { tools: ToolSpec[]; unavailable: string | null } {
  const authority = bundle.authorities.get(authorityId);
  if (!authority) return { tools: [], unavailable: `no authority "${authorityId}" in the policy bundle in force` };
  const chain = [authority, ...authority.ancestors];
  for (const a of chain) {
    const why = notInForce(a, at);
    if (why) return { tools: [], unavailable: why };
  }
  const granted = new Set(authority.grants.map((g) => g.action));
  const tools: ToolSpec[] = [];
  for (const action of [...granted].sort()) {
    if (!chain.every((a) => a.grants.some((g) => g.action === action))) continue;
    if (chain.some((a) => (a.doc.forbid ?? []).some((f) => f.action === action && (!f.when || Object.keys(f.when).length === 0)))) continue;
    const resolved = registry.resolve(action);
    if (!resolved) continue;
    const op = resolved.operation;
    // Not callable now (an MCP server not reached, an upstream change waiting for an admin).
    if (op.unavailable?.()) continue;
    tools.push({
      action,
      description: op.description ?? `${action.split('.').join(' ')} (connector ${resolved.connector.id})`,
      inputSchema: op.inputJsonSchema,
      annotations: op.annotations,
    });
  }
  return { tools, unavailable: null };
}
