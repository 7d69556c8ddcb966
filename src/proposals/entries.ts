/** The journal entries the proposal pipeline writes, built from the proposal they are about. */
import type { AppendInput } from '../journal/types';
import type { Decision, DecisionRequest } from '../policy/types';
import type { Proposal, ProposalStatus } from './types';

/** The journal subject of a proposal. */
export const subject = (id: string) => `proposal:${id}`;

/** A move of `p` from its status to `to`, by `actor`, for `reason`. */
export function transitionEntry(
  p: Proposal,
  to: ProposalStatus,
  actor: string,
  reason: string,
  extra: Record<string, unknown> = {},
): AppendInput {
  return {
    kind: 'proposal.transitioned',
    actor,
    subject: subject(p.id),
    data: { twin: p.twin, action: p.action, from: p.status, to, reason, ...extra },
    policyVersion: p.policyVersion,
  };
}

/** The policy's decision on a proposal's request. */
export function decisionEntry(id: string, twin: string, actor: string, request: DecisionRequest, d: Decision): AppendInput {
  return {
    kind: 'policy.decided',
    actor,
    subject: subject(id),
    data: {
      twin,
      request: { ...request, at: typeof request.at === 'string' ? request.at : request.at.toISOString() },
      outcome: d.outcome,
      reasons: d.reasons.map((r) => ({ code: r.code, message: r.message, source: r.source })),
      authority: d.authority,
      approval: d.approval && { approvers: d.approval.approvers, quorum: d.approval.quorum, expiresAt: d.approval.expiresAt },
    },
    policyVersion: d.policyVersion,
  };
}

/** The entry of a proposal's creation, `to` its first status. */
export function createdEntry(p: Proposal, to: ProposalStatus, d: Decision): AppendInput {
  return {
    ...transitionEntry(
      { ...p, status: 'proposed' },
      to,
      `twin:${p.twin}`,
      d.reasons.find((x) => x.code !== 'granted' && x.code !== 'approval_tier')?.message ?? d.outcome,
    ),
    data: {
      twin: p.twin,
      action: p.action,
      from: null,
      to,
      rationale: p.rationale,
      ...(p.context ? { context: p.context } : {}),
    },
  };
}
