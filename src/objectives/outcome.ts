import type { ActionOutcome } from '../agent/types';
import type { Proposal, Review } from '../proposals/types';

/**
 * What a proposal became, as the planner (and a model) is told: the status, the policy's reasons,
 * a rejecting approver's words, the connector's result or the error.
 */
export function outcomeOf(p: Proposal, reviews: readonly Review[] = []): ActionOutcome {
  const policyReasons = p.decision.reasons.filter((r) => r.code !== 'granted').map((r) => r.message);
  const rejections = reviews.filter((r) => r.decision === 'reject' && r.comment).map((r) => `rejected by ${r.actor}: ${r.comment}`);
  const comments = reviews.filter((r) => (r.decision === 'approve' || r.decision === 'edit') && r.comment).map((r) => `${r.actor} (${r.decision}): ${r.comment}`);
  // As the contract says: the policy's reasons, or for a rejection the approver's words.
  const reasons = p.status === 'rejected' ? rejections : p.status === 'executed' ? comments : [...policyReasons, ...comments];
  return {
    kind: p.status,
    proposalId: p.id,
    reasons,
    ...(p.status === 'executed' && p.result ? { result: p.result } : {}),
    ...(p.error && p.status !== 'executed' && p.status !== 'rejected' ? { error: p.error } : {}),
  };
}

/** A refusal that never became a proposal. */
export const refused = (reason: string): ActionOutcome => ({ kind: 'refused', reason });
