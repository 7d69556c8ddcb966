/**
 * Who may approve (or reject) a proposal that waits for approval: separation of duties as a pure
 * rule over what the approval asks for, who asks to decide, the twin's owner and the approver's
 * own authority. The proposals pipeline reads those and calls it; nothing here reads a store.
 */
import type { Decision, ReasonCode } from './types';

/** Who asks to decide: `user:<id>` for a person (a twin's principal is `twin:<id>`), with the roles they hold. */
export interface Approver {
  principal: string;
  roles: readonly string[];
}

/** What a pending approval asks for and who gave it so far (a proposal's approval state). */
export interface ApprovalAsk {
  /** `user:<id>` or `role:<name>`, as the approval tier names them. */
  approvers: readonly string[];
  quorum: number;
  /** Added to the approvers once the approval is escalated. */
  escalateTo: readonly string[];
  escalated: boolean;
  /** Distinct people whose approval counts now. */
  approvedBy: readonly string[];
}

export interface EligibilityInput {
  /** The proposal's approval; null where it does not wait for one. */
  approval: ApprovalAsk | null;
  approver: Approver;
  /** The twin's owner, `user:<id>`. */
  owner: string;
  /**
   * The approver's own decision for the same action and attributes, where an authority delegates
   * to them; null where none does (then no limits of their own apply).
   */
  own: Pick<Decision, 'outcome' | 'reasons'> | null;
  /** An approval counts toward the quorum, once per person; a rejection needs only eligibility. */
  decision: 'approve' | 'reject';
}

export const APPROVER_REFUSALS = [
  'not_a_person',
  'not_waiting',
  'not_named',
  'owner_not_named',
  'beyond_own_authority',
  'already_approved',
] as const;
export type ApproverRefusal = (typeof APPROVER_REFUSALS)[number];

export type Eligibility =
  /** For an approval, approvedBy with the approver added and whether that reaches the quorum; for a rejection, as it was. */
  { eligible: true; approvedBy: string[]; reached: boolean } | { eligible: false; refusal: ApproverRefusal; reason: string };

/** Reasons in the approver's own decision that put the action beyond their own authority. */
export const BEYOND_OWN_AUTHORITY: readonly ReasonCode[] = [
  'over_per_action',
  'over_period',
  'no_grant',
  'forbidden',
  'not_valid',
  'revoked',
  'currency_mismatch',
];

/** Who is asked: the tier's approvers, and once escalated its escalation targets too. */
export function namedApprovers(approval: ApprovalAsk): string[] {
  return [...approval.approvers, ...(approval.escalated ? approval.escalateTo : [])];
}

/**
 * Whether `approver` may decide on a pending approval, in this order: a twin never approves;
 * the approval must name the approver (as `user:<id>` or by a role they hold); the twin's owner
 * only where named as a person; an authority delegated to the approver must allow the action
 * itself; and an approval counts once per person (quorum counts distinct people).
 */
export function approverEligibility(input: EligibilityInput): Eligibility {
  const { approval, approver, owner, own } = input;
  const me = approver.principal;
  const refuse = (refusal: ApproverRefusal, reason: string): Eligibility => ({ eligible: false, refusal, reason });
  if (!me.startsWith('user:')) return refuse('not_a_person', `${me} is not a person: twins never approve`);
  if (!approval) return refuse('not_waiting', 'this proposal does not wait for approval');
  const named = namedApprovers(approval);
  const matches = named.some((a) => a === me || (a.startsWith('role:') && approver.roles.includes(a.slice(5))));
  if (!matches) return refuse('not_named', `approval needs one of ${named.join(', ')}`);
  // The twin's owner approves their own twin's request only where the tier names them.
  if (owner === me && !named.includes(me)) return refuse('owner_not_named', `${me} owns this twin and is not named by the approval tier`);
  // Where an authority delegates to the approver, the amount must be within their own limits.
  if (own) {
    const over = own.reasons.find((r) => BEYOND_OWN_AUTHORITY.includes(r.code));
    if (own.outcome === 'deny' || over)
      return refuse('beyond_own_authority', `beyond ${me}'s own authority: ${over?.message ?? own.reasons[0]?.message ?? 'denied'}`);
  }
  if (input.decision === 'reject') return { eligible: true, approvedBy: [...approval.approvedBy], reached: false };
  if (approval.approvedBy.includes(me)) return refuse('already_approved', `${me} already approved; quorum counts distinct people`);
  const approvedBy = [...approval.approvedBy, me];
  return { eligible: true, approvedBy, reached: approvedBy.length >= approval.quorum };
}
