/** Shared types of the policy engine: outcomes, reasons, requests and decisions. */
import type { Period } from './time';

export const OUTCOMES = ['deny', 'propose', 'approve', 'execute'] as const;
/** Ordered from least to most autonomy; decisions take the lowest that applies. */
export type Outcome = (typeof OUTCOMES)[number];
/** A ceiling set by a person: a document's mode, a grant's outcome, a twin's mode. */
export const MODES = ['propose', 'approve', 'execute'] as const;
export type Mode = (typeof MODES)[number];

export const OUTCOME_RANK: Readonly<Record<Outcome, number>> = { deny: 0, propose: 1, approve: 2, execute: 3 };

export function lowerOutcome(a: Outcome, b: Outcome): Outcome {
  return OUTCOME_RANK[a] <= OUTCOME_RANK[b] ? a : b;
}

export const REASON_CODES = [
  'granted', // the grant that allowed the action, with its ceiling
  'approval_tier', // which approval tier applies and why
  'no_authority', // no authority delegates to the principal
  'no_grant', // default deny: nothing grants this action with these attributes
  'forbidden', // a forbid rule matched (forbid wins)
  'not_valid', // outside the authority's `valid` window
  'revoked',
  'over_per_action',
  'over_period',
  'outside_hours',
  'capped_by_mode', // the document's mode is lower than the grant
  'capped_by_parent', // an ancestor authority allows less
  'capped_by_twin_mode', // the twin's current mode is lower
  'currency_mismatch', // amount in another currency than the grant's; never converted
  'bad_amount', // amount missing where a limit needs it, or not a valid amount
  'bad_request', // the request itself is malformed
] as const;
export type ReasonCode = (typeof REASON_CODES)[number];

export interface Reason {
  code: ReasonCode;
  /** In the authority's own terms, e.g. "amount 12,000.00 EUR exceeds perAction 10,000.00 EUR in vp-sales-twin v3". */
  message: string;
  /** `file:line` of the rule in the authority document, or `request:<field>` for input problems. */
  source: string;
  /** Stable rule id such as `vp-sales-twin/grants/0/limits/perAction`, used for coverage. */
  rule?: string;
}

export interface ApprovalRequirement {
  approvers: string[];
  quorum: number;
  /** RFC 3339 UTC: the decision's `at` plus the grant's `expiresAfter`. */
  expiresAt: string;
  escalateTo: string[];
  /** The authority whose requirement this is (the most senior in the chain that asks for approval). */
  authority: string;
  source: string;
  rule: string;
}

export interface MatchedRule {
  rule: string;
  kind: 'grant' | 'forbid';
  authority: string;
  source: string;
}

/**
 * What a store must reserve atomically before the action may go ahead: `amount` added to the
 * delegator's running total for the window `key` (in `tz`), which must stay ≤ `limit`.
 * One entry per authority in the chain whose applied grant has a perPeriod limit; several
 * authorities with the same delegator, window and currency share one running total.
 */
export interface Reservation {
  authority: string;
  delegator: string;
  period: Period;
  key: string;
  tz: string;
  start: string;
  end: string;
  currency: string;
  amount: string;
  /** The applied grant's perPeriod limit for this window, or null when the total is only kept
   *  for other grants' limits. For an `execute` outcome the store must not let the total pass
   *  it; when it would, the action needs approval instead (decide again with the fresh total).
   *  For an approved action the person's approval covers the excess. */
  limit: string | null;
}

interface DecisionCommon {
  reasons: Reason[];
  policyVersion: string;
  /** Id of the authority the principal acts under, or null when none applies. */
  authority: string | null;
  matched: MatchedRule[];
  /** Empty unless the outcome is approve or execute. */
  reservations: Reservation[];
}

/** The Decision JSON of DESIGN.md. `approval` is present exactly when the outcome is approve. */
export type Decision = DecisionCommon &
  ({ outcome: 'approve'; approval: ApprovalRequirement } | { outcome: 'deny' | 'propose' | 'execute'; approval: null });

export type Spent = Partial<Record<Period, string>>;

export interface DecisionRequest {
  /** The delegate acting, e.g. `twin:cfo-twin`. */
  principal: string;
  action: string;
  /** The action's risk attributes; `amount` (decimal string) and `currency` are special. */
  resource: Record<string, unknown>;
  /** RFC 3339 instant (or Date) the action would happen at. */
  at: string | Date;
  /** What the principal's delegator already spent (and reserved) in each current period. */
  spent?: Spent;
  /** Running totals of other delegators in the parent chain; when absent, `spent` is used,
   *  which is a lower bound because every reservation is booked on every ancestor too. */
  spentBy?: Record<string, Spent>;
  /** The twin's current mode; default execute. */
  twinMode?: Mode;
  /** Pin the authority by id (a twin registered with one); it must delegate to the principal. */
  authority?: string;
}
