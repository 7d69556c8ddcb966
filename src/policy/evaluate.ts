/**
 * Evaluating one authority for a request: validity, revocation, forbids, the matching grants,
 * limits, hours and mode, explained in the authority's own terms. Running totals come in as
 * `spent`; the decision (decide.ts) combines the results along the chain of ancestors.
 */
import { formatAmount, parseAmount } from './amount';
import { isKeyValue, type CompiledAuthority, type CompiledGrant, type CompiledHours } from './compile';
import { localTime, periodWindow, tzOffset, type Period, type PeriodWindow } from './time';
import { OUTCOME_RANK, type MatchedRule, type Outcome, type Reason, type ReasonCode, type Spent } from './types';

const DAY_NAMES = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

const EMPTY: readonly CompiledGrant[] = [];

export function windowOf(a: CompiledAuthority, period: Period, atMs: number): PeriodWindow {
  const w = a.windows[period];
  if (w && atMs >= w.startMs && atMs < w.endMs) return w;
  return (a.windows[period] = periodWindow(period, atMs, a.tz));
}

export interface Context {
  atMs: number;
  atText: string;
  action: string;
  resource: Record<string, unknown>;
  /** `resource.currency` when given */
  currency: string | null;
  hasAmount: boolean;
}

export interface AuthorityResult {
  authority: CompiledAuthority;
  outcome: Outcome;
  reasons: Reason[];
  matched: MatchedRule[];
  grant: CompiledGrant | null;
  amount: bigint | null;
  currency: string;
}

export const reason = (code: ReasonCode, message: string, source: string, rule?: string): Reason =>
  rule === undefined ? { code, message, source } : { code, message, source, rule };

function outsideHours(h: CompiledHours, atMs: number, tz: string): boolean {
  const { weekday, minute } = localTime(atMs, tz);
  if (h.from < h.until) return !(h.days[weekday] && minute >= h.from && minute < h.until);
  // Overnight window (e.g. 22:00–06:00): the early-morning part belongs to the previous day.
  const late = h.days[weekday] && minute >= h.from;
  const early = h.days[(weekday + 6) % 7] && minute < h.until;
  return !(late || early);
}

/** "2026-11-07 22:15 Sat Europe/Berlin": the wall-clock time the hours were judged by. */
function localStamp(atMs: number, tz: string): string {
  const { weekday } = localTime(atMs, tz);
  return `${new Date(atMs + tzOffset(atMs, tz)).toISOString().slice(0, 16).replace('T', ' ')} ${DAY_NAMES[weekday]} ${tz}`;
}

const NO = 0;
const OVER_PER_ACTION = 1;
const OVER_PERIOD = 2;
const OUTSIDE_HOURS = 4;
const CURRENCY_MISMATCH = 8;
const MISSING_AMOUNT = 16;
const BAD_SPENT = 32;

function result(
  authority: CompiledAuthority,
  currency: string,
  outcome: Outcome,
  reasons: Reason[],
  matched: MatchedRule[] = [],
  grant: CompiledGrant | null = null,
  amount: bigint | null = null,
): AuthorityResult {
  return { authority, outcome, reasons, matched, grant, amount, currency };
}

export function evaluateAuthority(a: CompiledAuthority, ctx: Context, spent: Spent | undefined): AuthorityResult {
  const currency = ctx.currency ?? a.currency;
  if (ctx.atMs < a.validFrom || ctx.atMs >= a.validUntil) {
    const window = `valid from ${a.doc.valid.from} until ${a.doc.valid.until}`;
    return result(a, currency, 'deny', [reason('not_valid', `${a.label} is not in force at ${ctx.atText} (${window})`, a.validSource)]);
  }
  if (a.revokedAt !== null && ctx.atMs >= a.revokedAt) {
    const revokedAt = typeof a.doc.revoked === 'object' ? a.doc.revoked.at : undefined;
    const when = revokedAt ? ` at ${revokedAt}` : '';
    return result(a, currency, 'deny', [reason('revoked', `${a.label} was revoked${when}${a.revokedReason ? `: ${a.revokedReason}` : ''}`, a.revokedSource)]);
  }

  const entry = a.byAction.get(ctx.action);
  if (!entry) {
    return result(a, currency, 'deny', [reason('no_grant', `${a.label} grants nothing for ${ctx.action}`, a.grantsSource)]);
  }

  // Forbid wins: checked before any grant, and any match denies.
  let matched: MatchedRule[] | null = null;
  let forbidden: Reason[] | null = null;
  for (const f of entry.forbids) {
    if (f.casl.matchesConditions(ctx.resource)) {
      (matched ??= []).push({ rule: f.rule, kind: 'forbid', authority: a.id, source: f.source });
      (forbidden ??= []).push(reason('forbidden', `${ctx.action} is forbidden by ${a.label}: ${f.reason}`, f.source, f.rule));
    }
  }
  if (forbidden) return result(a, currency, 'deny', forbidden, matched!);

  // Amount in the request's currency; limits of a grant in another currency never apply to it.
  let amount: bigint | null = null;
  if (ctx.hasAmount) {
    const parsed = parseAmount(ctx.resource.amount, currency);
    if (!parsed.ok) return result(a, currency, 'deny', [reason('bad_amount', parsed.message, 'request:resource.amount')]);
    amount = parsed.minor;
  }
  const outside = a.hours !== null && outsideHours(a.hours, ctx.atMs, a.tz);

  // Among matching grants the one giving the highest outcome applies (so adding a grant never
  // lowers an outcome); ties go to the lower content rank, the lists being sorted by it.
  let best: CompiledGrant | null = null;
  let bestOutcome: Outcome = 'deny';
  let bestFlags = NO;
  let bestSpent = 0n;
  let firstFlags = NO;
  let first: CompiledGrant | null = null;
  // Candidates: grants keyed by the request's value of the index attribute plus the unkeyed
  // ones, visited in rank order (a two-list merge, no allocation). Without a usable value
  // (missing, or a list, which CASL matches element-wise) fall back as the prefilter allows.
  let keyed: readonly CompiledGrant[] = entry.grants;
  let rest: readonly CompiledGrant[] = EMPTY;
  if (entry.key !== null) {
    const v = ctx.resource[entry.key];
    if (isKeyValue(v)) {
      keyed = entry.byValue.get(v) ?? EMPTY;
      rest = entry.unkeyed;
    } else if (v === undefined || v === null) keyed = entry.unkeyed;
  }
  for (let i = 0, j = 0; i < keyed.length || j < rest.length; ) {
    const g = j >= rest.length || (i < keyed.length && keyed[i]!.rank < rest[j]!.rank) ? keyed[i++]! : rest[j++]!;
    if (!g.casl.matchesConditions(ctx.resource)) continue;
    (matched ??= []).push({ rule: g.rule, kind: 'grant', authority: a.id, source: g.source });
    let flags = NO;
    let outcome: Outcome = g.outcome;
    let spentMinor = 0n;
    if (g.currency !== currency) flags = CURRENCY_MISMATCH;
    else if (amount === null && (g.perAction || g.perPeriod)) flags = MISSING_AMOUNT;
    else {
      if (g.perAction && amount! > g.perAction.minor) flags |= OVER_PER_ACTION;
      if (g.perPeriod) {
        const text = spent?.[g.perPeriod.period] ?? '0';
        const parsed = parseAmount(text, currency);
        if (!parsed.ok) flags = BAD_SPENT;
        else {
          spentMinor = parsed.minor;
          if (spentMinor + amount! > g.perPeriod.minor) flags |= OVER_PERIOD;
        }
      }
      if (outside && flags !== BAD_SPENT) flags |= OUTSIDE_HOURS;
    }
    if (flags & (CURRENCY_MISMATCH | MISSING_AMOUNT | BAD_SPENT)) outcome = 'deny';
    else if (flags && OUTCOME_RANK[outcome] > OUTCOME_RANK.approve) outcome = 'approve';
    if (first === null) {
      first = g;
      firstFlags = flags;
    }
    if (best === null || OUTCOME_RANK[outcome] > OUTCOME_RANK[bestOutcome]) {
      best = g;
      bestOutcome = outcome;
      bestFlags = flags;
      bestSpent = spentMinor;
    }
  }

  if (first === null) {
    const n = entry.grants.length;
    return result(a, currency, 'deny', [reason('no_grant', `no grant of ${a.label} for ${ctx.action} matches these attributes (${n} grant${n === 1 ? '' : 's'} with conditions)`, entry.grants[0]?.whenSource ?? a.grantsSource)], matched ?? []);
  }
  const g = bestOutcome === 'deny' ? first : best!;
  const flags = bestOutcome === 'deny' ? firstFlags : bestFlags;
  const reasons: Reason[] = [];
  if (flags & CURRENCY_MISMATCH) {
    reasons.push(reason('currency_mismatch', `amount is in ${currency} but the grant for ${ctx.action} in ${a.label} is in ${g.currency}; amounts are never converted`, g.source, g.rule));
    return result(a, currency, 'deny', reasons, matched!, g, amount);
  }
  if (flags & MISSING_AMOUNT) {
    reasons.push(reason('bad_amount', `${ctx.action} has no amount attribute, but the grant in ${a.label} has limits`, 'request:resource.amount', g.rule));
    return result(a, currency, 'deny', reasons, matched!, g, amount);
  }
  if (flags & BAD_SPENT) {
    const period = g.perPeriod!.period;
    reasons.push(reason('bad_request', `spent.${period} ${JSON.stringify(spent?.[period])} is not an amount in ${currency}`, `request:spent.${period}`));
    return result(a, currency, 'deny', reasons, matched!, g, amount);
  }

  reasons.push(reason('granted', `${ctx.action} granted up to ${g.outcome} by ${a.label}`, g.source, g.rule));
  if (flags & OVER_PER_ACTION) {
    const l = g.perAction!;
    reasons.push(reason('over_per_action', `amount ${formatAmount(amount!, currency)} exceeds perAction ${l.text} in ${a.label}`, l.source, l.rule));
  }
  if (flags & OVER_PERIOD) {
    const l = g.perPeriod!;
    const window = windowOf(a, l.period, ctx.atMs);
    reasons.push(
      reason(
        'over_period',
        `amount ${formatAmount(amount!, currency)} with ${formatAmount(bestSpent, currency)} already spent in ${window.key} exceeds perPeriod ${l.text} per ${l.period} in ${a.label}`,
        l.source,
        l.rule,
      ),
    );
  }
  if (flags & OUTSIDE_HOURS) {
    const h = a.hours!;
    reasons.push(reason('outside_hours', `${localStamp(ctx.atMs, a.tz)} is outside hours ${h.text} of ${a.label}`, h.source, h.rule));
  }
  let outcome = bestOutcome;
  if (OUTCOME_RANK[a.mode] < OUTCOME_RANK[outcome]) {
    reasons.push(reason('capped_by_mode', `${a.label} has mode ${a.mode}, so at most ${a.mode}`, a.modeSource));
    outcome = a.mode;
  }
  return result(a, currency, outcome, reasons, matched!, g, amount);
}
