/**
 * The decision: checks the request, selects the authority, evaluates it and its ancestors (the
 * lowest outcome wins, capped by the twin's mode), and says what approval and reservations follow.
 * It is pure: running totals come in as `spent`, reservations go out for a store to book.
 */
import { formatAmount, toDecimal } from './amount';
import type { PolicyBundle } from './compile';
import { isCurrency } from './currencies';
import { evaluateAuthority, reason, windowOf, type AuthorityResult, type Context } from './evaluate';
import { selectAuthority } from './select';
import { addDuration, parseInstant } from './time';
import { MODES, OUTCOME_RANK, type ApprovalRequirement, type Decision, type DecisionRequest, type MatchedRule, type Outcome, type Reason, type Reservation } from './types';

function approvalFrom(r: AuthorityResult, atMs: number): { approval: ApprovalRequirement; reason: Reason } {
  const g = r.grant!;
  const a = r.authority;
  const expiresAt = new Date(addDuration(atMs, g.expiresAfter)).toISOString();
  if (g.tiers.length === 0) {
    return {
      approval: { approvers: [a.delegator], quorum: 1, expiresAt, escalateTo: g.escalateTo, authority: a.id, source: g.approvalSource, rule: g.rule },
      reason: reason('approval_tier', `approval by ${a.delegator}, the delegator, as the grant in ${a.label} names no approvers`, g.approvalSource, g.rule),
    };
  }
  // The tier with the highest `above` the amount exceeds; without an amount (or below every
  // tier) the least demanding tier, since approval is needed either way.
  let tier = g.tiers[0]!;
  let exceeded = false;
  if (r.amount !== null) {
    for (const t of g.tiers) {
      if (r.amount > t.above) {
        tier = t;
        exceeded = true;
      }
    }
  }
  const who = `${tier.approvers.join(', ')} (quorum ${tier.quorum})`;
  const why = exceeded
    ? `amount ${formatAmount(r.amount!, r.currency)} is above ${formatAmount(tier.above, r.currency)}`
    : 'the lowest tier applies';
  return {
    approval: { approvers: [...tier.approvers], quorum: tier.quorum, expiresAt, escalateTo: g.escalateTo, authority: a.id, source: tier.source, rule: tier.rule },
    reason: reason('approval_tier', `approval by ${who}: ${why} in ${a.label}`, tier.source, tier.rule),
  };
}

function deny(policyVersion: string, authority: string | null, reasons: Reason[], matched: MatchedRule[] = []): Decision {
  return { outcome: 'deny', reasons, policyVersion, authority, approval: null, matched, reservations: [] };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function badRequest(version: string, field: string, message: string): Decision {
  return deny(version, null, [reason('bad_request', message, `request:${field}`)]);
}

/** Decides one action request against a bundle. Never throws on bad input: it denies, saying why. */
export function decide(bundle: PolicyBundle, request: DecisionRequest): Decision {
  const version = bundle.version;
  if (!isRecord(request)) return badRequest(version, '', 'the request must be an object');
  const { principal, action, resource, at, twinMode } = request;
  if (typeof principal !== 'string' || principal === '') return badRequest(version, 'principal', 'principal must be a string such as twin:cfo-twin');
  if (typeof action !== 'string' || action === '') return badRequest(version, 'action', 'action must be a string such as crm.discount.update');
  if (!isRecord(resource)) return badRequest(version, 'resource', 'resource must be an object of attributes');
  const atMs = typeof at === 'string' ? parseInstant(at) : at instanceof Date ? at.getTime() : NaN;
  if (!Number.isFinite(atMs)) return badRequest(version, 'at', `at ${JSON.stringify(at)} is not an RFC 3339 timestamp with a zone`);
  if (twinMode !== undefined && !MODES.includes(twinMode)) return badRequest(version, 'twinMode', `twinMode ${JSON.stringify(twinMode)} is not propose, approve or execute`);
  if (request.spent !== undefined && !isRecord(request.spent)) return badRequest(version, 'spent', 'spent must map periods to amounts');
  if (request.spentBy !== undefined && !isRecord(request.spentBy)) return badRequest(version, 'spentBy', 'spentBy must map delegators to spent');
  const currency = resource.currency;
  if (currency !== undefined && !isCurrency(currency)) return badRequest(version, 'resource.currency', `unknown currency ${JSON.stringify(currency)}`);

  const authority = selectAuthority(bundle, principal, atMs, request.authority);
  if (!authority) {
    const pinned = request.authority !== undefined ? ` as ${request.authority}` : '';
    return deny(version, null, [reason('no_authority', `no authority delegates to ${principal}${pinned}`, 'request:principal')]);
  }

  const ctx: Context = {
    atMs,
    atText: typeof at === 'string' ? at : new Date(atMs).toISOString(),
    action,
    resource,
    currency: (currency as string | undefined) ?? null,
    hasAmount: resource.amount !== undefined,
  };
  const own = evaluateAuthority(authority, ctx, request.spent);
  if (own.outcome === 'deny') return deny(version, authority.id, own.reasons, own.matched);

  let outcome: Outcome = own.outcome;
  const reasons = own.reasons;
  const matched = own.matched;
  const results = [own];
  for (const ancestor of authority.ancestors) {
    const r = evaluateAuthority(ancestor, ctx, request.spentBy?.[ancestor.delegator] ?? request.spent);
    results.push(r);
    for (const m of r.matched) matched.push(m);
    for (const x of r.reasons) if (x.code !== 'granted') reasons.push(x);
    if (OUTCOME_RANK[r.outcome] < OUTCOME_RANK[own.outcome]) {
      const where = r.grant?.source ?? r.reasons[0]?.source ?? ancestor.grantsSource;
      reasons.push(reason('capped_by_parent', `${ancestor.label}, an ancestor of ${authority.label}, allows at most ${r.outcome}`, where));
    }
    if (OUTCOME_RANK[r.outcome] < OUTCOME_RANK[outcome]) outcome = r.outcome;
  }
  const ceiling = twinMode ?? 'execute';
  if (OUTCOME_RANK[ceiling] < OUTCOME_RANK[outcome]) {
    reasons.push(reason('capped_by_twin_mode', `the twin's mode is ${ceiling}, so at most ${ceiling}`, 'request:twinMode'));
    outcome = ceiling;
  }
  if (outcome === 'deny') return deny(version, authority.id, reasons, matched);

  const reservations = outcome === 'approve' || outcome === 'execute' ? reserve(results, atMs) : [];
  if (outcome === 'approve') {
    // The most senior authority asking for approval supplies the requirement: its approvers can
    // approve anything a junior one's could, and it is the authority being stretched.
    let source = own;
    for (const r of results) if (r.outcome === 'approve') source = r;
    const { approval, reason: why } = approvalFrom(source, atMs);
    reasons.push(why);
    return { outcome, reasons, policyVersion: version, authority: authority.id, approval, matched, reservations };
  }
  return { outcome, reasons, policyVersion: version, authority: authority.id, approval: null, matched, reservations };
}

/** Running totals to book: every period any limit of each authority relies on, so totals stay
 *  complete; `limit` is set where the applied grant itself limits that period. */
function reserve(results: AuthorityResult[], atMs: number): Reservation[] {
  const out: Reservation[] = [];
  let amount: string | null = null;
  for (const r of results) {
    if (r.amount === null || r.authority.periods.length === 0) continue;
    const a = r.authority;
    amount ??= toDecimal(r.amount, r.currency);
    for (const period of a.periods) {
      const w = windowOf(a, period, atMs);
      const limit = r.grant?.perPeriod?.period === period ? r.grant.perPeriod.decimal : null;
      out.push({ authority: a.id, delegator: a.delegator, period, key: w.key, tz: a.tz, start: w.start, end: w.end, currency: r.currency, amount, limit });
    }
  }
  return out;
}
