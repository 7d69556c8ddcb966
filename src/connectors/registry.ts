import type { Connector, ConnectorRegistry, Operation } from './types';

export class DuplicateActionError extends Error {
  override readonly name = 'DuplicateActionError';
}

/** Indexes connectors by action; an action belongs to exactly one connector, or none (denied). */
export function createRegistry(connectors: readonly Connector[]): ConnectorRegistry {
  const byId = new Map<string, Connector>();
  const byAction = new Map<string, { connector: Connector; operation: Operation }>();
  for (const c of connectors) {
    if (byId.has(c.id)) throw new DuplicateActionError(`two connectors have id ${c.id}`);
    byId.set(c.id, c);
    for (const [action, operation] of c.operations) {
      const other = byAction.get(action);
      if (other) throw new DuplicateActionError(`action ${action} is declared by both ${other.connector.id} and ${c.id}`);
      byAction.set(action, { connector: c, operation });
    }
  }
  return {
    connectors: byId,
    resolve: (action) => byAction.get(action),
    async start() {
      await Promise.all([...byId.values()].map((c) => c.start?.()));
    },
    async close() {
      await Promise.all([...byId.values()].map((c) => c.close?.()));
    },
  };
}
