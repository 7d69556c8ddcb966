import { z } from 'zod';
import type { Decision, Mode } from '../policy/types';

/** The proposal statuses of DESIGN.md: a closed union, also enforced by a CHECK constraint. */
export const PROPOSAL_STATUSES = [
  'proposed',
  'pending_approval',
  'approved',
  'executing',
  'executed',
  'failed',
  'denied',
  'rejected',
  'expired',
  'cancelled',
  'in_doubt',
] as const;
export type ProposalStatus = (typeof PROPOSAL_STATUSES)[number];

/** Every legal move; anything else is refused with 409. */
export const TRANSITIONS: Readonly<Record<ProposalStatus, readonly ProposalStatus[]>> = {
  proposed: ['cancelled'],
  pending_approval: ['approved', 'rejected', 'expired', 'cancelled', 'denied', 'proposed', 'pending_approval'],
  approved: ['executing', 'expired', 'cancelled'],
  // Back to approved only to wait for a retry after a failure that may be retried.
  executing: ['executed', 'failed', 'approved', 'in_doubt'],
  // Settled by a person or the connector's status lookup: it took effect, or it did not.
  in_doubt: ['executed', 'failed'],
  executed: [],
  failed: [],
  denied: [],
  rejected: [],
  expired: [],
  cancelled: [],
};

export const TERMINAL: ReadonlySet<ProposalStatus> = new Set(['executed', 'failed', 'denied', 'rejected', 'expired', 'cancelled']);

/** Statuses in which a proposal may still act or wait for people (in doubt: a person settles it). */
export const OPEN_STATUSES: ReadonlySet<ProposalStatus> = new Set(['pending_approval', 'approved', 'executing', 'in_doubt']);

/** Statuses that wait for a decision (pending_approval) or for their execution (approved): both expire. */
export const AWAITING_STATUSES: ReadonlySet<ProposalStatus> = new Set(['pending_approval', 'approved']);

/** Statuses that have not run and may be withdrawn (cancelled). */
export const WITHDRAWABLE: ReadonlySet<ProposalStatus> = new Set(['proposed', 'pending_approval', 'approved']);

/** Statuses whose amounts still count against an objective's spend ceiling. */
export const SPENDING_STATUSES: ReadonlySet<string> = new Set(['proposed', 'pending_approval', 'approved', 'executing', 'in_doubt', 'executed']);

export type AuditVerdict = 'pending' | 'passed' | 'flagged';

export interface ApprovalState {
  approvers: string[];
  quorum: number;
  expiresAt: string;
  escalateTo: string[];
  /** Distinct people whose approval counts now (same payload hash and policy version). */
  approvedBy: string[];
  escalated: boolean;
}

/** A twin as an action request sees it: its authority and mode, and whether a kill switch halts it. */
export interface ActingTwin {
  id: string;
  owner: string;
  authority: string;
  mode: Mode;
  killed: boolean;
  halted: boolean;
}

export interface Proposal {
  id: string;
  twin: string;
  action: string;
  args: Record<string, unknown>;
  argsHash: string;
  rationale: string;
  idempotencyKey: string;
  status: ProposalStatus;
  decision: Decision;
  policyVersion: string;
  approval: ApprovalState | null;
  expiresAt: string | null;
  attempts: number;
  result: Record<string, unknown> | null;
  error: string | null;
  audit: AuditVerdict | null;
  /**
   * Where the request came from, recorded with it: for an agent's request the objective, run,
   * model, prompt version and system prompt hash. Null for requests made directly over the API.
   */
  context: Record<string, unknown> | null;
  /** What is known of the call while the outcome is unknown (status in_doubt), kept after. */
  inDoubt: InDoubt | null;
  /** How an in-doubt call was settled; null until then. */
  reconciliation: Reconciliation | null;
  createdAt: string;
  updatedAt: string;
}

/** A call whose outcome Regent cannot know: it counts as happened until it is settled. */
export interface InDoubt {
  since: string;
  sentAt: string | null;
  /** The process (executor) that sent it. */
  executor: string | null;
  connector: string | null;
  /** Where a person looks: the system and what to look for. */
  checkIn: string;
  /** What the system last said, or how the call was cut off. */
  lastHeard: string | null;
  error: string;
}

export const RECONCILE_OUTCOMES = ['executed', 'not_executed'] as const;
export type ReconcileOutcome = (typeof RECONCILE_OUTCOMES)[number];

export interface Reconciliation {
  outcome: ReconcileOutcome;
  evidence: string;
  /** `user:<id>` for a person, `system` for the connector's status lookup or the sending executor. */
  by: string;
  at: string;
}

/** POST /v1/proposals/:id/reconcile body (DESIGN.md). */
export const ReconcileSchema = z
  .object({
    outcome: z.enum(RECONCILE_OUTCOMES, { error: 'outcome is executed or not_executed' }),
    evidence: z.string({ error: 'evidence is required: say how you know' }).trim().min(1, 'evidence is required: say how you know').max(4000),
  })
  .strict();

export interface Review {
  id: string;
  actor: string;
  decision: ReviewDecision;
  comment: string | null;
  argsHash: string;
  policyVersion: string;
  createdAt: string;
}

export const REVIEW_DECISIONS = ['approve', 'reject', 'edit', 'comment'] as const;
export type ReviewDecision = (typeof REVIEW_DECISIONS)[number];

/** POST /v1/proposals body (DESIGN.md). */
export const CreateProposalSchema = z
  .object({
    action: z.string().regex(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/, 'must look like system.object.verb, e.g. crm.discount.update'),
    args: z.record(z.string(), z.unknown()),
    rationale: z.string().trim().min(1, 'must say why').max(4000),
    idempotencyKey: z.string().min(1).max(200),
  })
  .strict();
export type CreateProposalInput = z.infer<typeof CreateProposalSchema>;

/** POST /v1/proposals/:id/decisions body (DESIGN.md). */
export const ReviewSchema = z
  .object({
    decision: z.enum(REVIEW_DECISIONS),
    comment: z.string().trim().min(1).max(4000).optional(),
    args: z.record(z.string(), z.unknown()).optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.decision === 'reject' && !v.comment) ctx.addIssue({ code: 'custom', path: ['comment'], message: 'a rejection needs a reason (it goes back to the twin)' });
    if (v.decision === 'comment' && !v.comment) ctx.addIssue({ code: 'custom', path: ['comment'], message: 'is required for a comment' });
    if (v.decision === 'edit' && !v.args) ctx.addIssue({ code: 'custom', path: ['args'], message: 'an edit needs the new args' });
    if (v.decision !== 'edit' && v.args) ctx.addIssue({ code: 'custom', path: ['args'], message: 'only an edit takes args' });
  });
export type ReviewInput = z.infer<typeof ReviewSchema>;

export const AuditSchema = z.object({ verdict: z.enum(['passed', 'flagged']), comment: z.string().trim().max(4000).optional() }).strict();
