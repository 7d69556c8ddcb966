/**
 * Shadow evaluation: decide the same requests under two bundles and list what would change,
 * for `regent policy diff OLD NEW` over the journal's past requests.
 */
import { decide, type PolicyBundle } from './engine';
import type { Decision, DecisionRequest } from './types';

export type DecisionAspect = 'outcome' | 'reasons' | 'approval' | 'authority';

export interface DecisionChange {
  index: number;
  request: DecisionRequest;
  before: Decision;
  after: Decision;
  changed: DecisionAspect[];
}

export interface BundleDiff {
  from: string;
  to: string;
  total: number;
  changes: DecisionChange[];
  /** e.g. { "execute→approve": 3 } */
  outcomes: Record<string, number>;
}

const codes = (d: Decision) => d.reasons.map((r) => r.code).join(',');
const approval = (d: Decision) => (d.approval ? `${[...d.approval.approvers].sort().join(',')}/${d.approval.quorum}/${d.approval.expiresAt}` : '');

/** What differs between two decisions, ignoring the policy version and rule positions (lines
 *  move whenever a file is edited; what matters is what is decided and why). */
export function compareDecisions(before: Decision, after: Decision): DecisionAspect[] {
  const changed: DecisionAspect[] = [];
  if (before.outcome !== after.outcome) changed.push('outcome');
  if (codes(before) !== codes(after)) changed.push('reasons');
  if (approval(before) !== approval(after)) changed.push('approval');
  if (before.authority !== after.authority) changed.push('authority');
  return changed;
}

export function diffBundles(oldBundle: PolicyBundle, newBundle: PolicyBundle, requests: readonly DecisionRequest[]): BundleDiff {
  const changes: DecisionChange[] = [];
  const outcomes: Record<string, number> = {};
  requests.forEach((request, index) => {
    const before = decide(oldBundle, request);
    const after = decide(newBundle, request);
    const changed = compareDecisions(before, after);
    if (changed.length === 0) return;
    changes.push({ index, request, before, after, changed });
    if (before.outcome !== after.outcome) {
      const key = `${before.outcome}→${after.outcome}`;
      outcomes[key] = (outcomes[key] ?? 0) + 1;
    }
  });
  return { from: oldBundle.version, to: newBundle.version, total: requests.length, changes, outcomes };
}
