import type { Database } from '../db/database';
import { createPolicyStore, type PolicyStore, type StoredPolicyVersion } from './store';

/**
 * The policy versions that have been in force, as recorded: readable without loading any policy
 * files (the admin views, `regent policy versions` and `diff`). The policy service offers the same.
 */
export interface PolicyHistory {
  /** Newest first, without their sources. */
  versions(limit?: number): Promise<Omit<StoredPolicyVersion, 'sources'>[]>;
  /** The recorded version with its sources, or undefined when there is none. */
  findVersion(version: string): Promise<StoredPolicyVersion | undefined>;
}

export function policyHistoryOf(store: Pick<PolicyStore, 'listVersions' | 'getVersion'>): PolicyHistory {
  return {
    versions: (limit) => store.listVersions(limit),
    findVersion: (version) => store.getVersion(version),
  };
}

export const createPolicyHistory = (db: Pick<Database, 'sql' | 'prisma'>): PolicyHistory => policyHistoryOf(createPolicyStore(db.sql, db.prisma));
