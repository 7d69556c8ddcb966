/**
 * The decision engine. Authorities are compiled once per bundle version into CASL abilities whose
 * rules are indexed by action; `decide` then only matches the few rules of the requested action,
 * applies limits, hours and the capping chain, and explains itself in the authority's own terms.
 * It is pure: running totals come in as `spent`, reservations go out for a store to book.
 */
import { createMongoAbility, type MongoAbility, type Rule } from '@casl/ability';
import { formatAmount, parseAmount, toDecimal, toMinor } from './amount';
import { isCurrency } from './currencies';
import type { AuthorityDoc } from './schema';
import { addDuration, localTime, parseClock, parseDuration, parseInstant, periodWindow, tzOffset, WEEKDAYS, type Duration, type Period, type PeriodWindow } from './time';
import {
  MODES,
  OUTCOME_RANK,
  type ApprovalRequirement,
  type Decision,
  type DecisionRequest,
  type MatchedRule,
  type Mode,
  type Outcome,
  type Reason,
  type ReasonCode,
  type Reservation,
  type Spent,
} from './types';

/** A validated document with where it came from; produced by the loader. */
export interface AuthoritySource {
  doc: AuthorityDoc;
  file: string;
  /** Line of the node at a path in the document (deepest existing prefix). */
  lineOf(path: readonly (string | number)[]): number;
}

export class CompileError extends Error {
  override readonly name = 'CompileError';
  constructor(readonly file: string, readonly line: number, message: string) {
    super(message);
  }
}

/** All grants and forbids are CASL rules on this one subject type; the action is the CASL action. */
const SUBJECT = 'Action';
/** CASL treats `manage` / `all` as wildcards by default; an authority naming an action "manage"
 *  must not thereby grant everything, so the wildcards are set to names no action can have. */
const CASL_OPTIONS = { anyAction: '\u0000any-action', anySubjectType: '\u0000any-subject' };
/** Approval expiry when a grant names no approval section: the delegator decides within a day. */
const DEFAULT_EXPIRY = 'PT24H';

interface CompiledLimit {
  minor: bigint;
  /** "10000.00", for reservations */
  decimal: string;
  /** "10,000.00 EUR", for reasons */
  text: string;
  source: string;
  rule: string;
}

interface CompiledTier {
  above: bigint;
  approvers: string[];
  quorum: number;
  source: string;
  rule: string;
}

export interface CompiledGrant {
  kind: 'grant';
  rule: string;
  source: string;
  whenSource: string;
  action: string;
  outcome: Mode;
  when: Record<string, unknown> | undefined;
  /** Position in a content-based order, so ties never depend on the order in the file. */
  rank: number;
  currency: string;
  perAction: CompiledLimit | null;
  perPeriod: (CompiledLimit & { period: Period }) | null;
  tiers: CompiledTier[];
  expiresAfter: Duration;
  escalateTo: string[];
  approvalSource: string;
  casl: Rule<any, any>;
}

export interface CompiledForbid {
  kind: 'forbid';
  rule: string;
  source: string;
  action: string;
  reason: string;
  rank: number;
  casl: Rule<any, any>;
}

interface CompiledHours {
  /** indexed 0 = Monday */
  days: boolean[];
  from: number;
  until: number;
  text: string;
  source: string;
  rule: string;
}

export interface CompiledAuthority {
  id: string;
  version: number;
  /** "vp-sales-twin v3", as reasons name it */
  label: string;
  file: string;
  doc: AuthorityDoc;
  delegator: string;
  delegate: string;
  parent: string | null;
  mode: Mode;
  modeSource: string;
  currency: string;
  tz: string;
  validFrom: number;
  validUntil: number;
  validSource: string;
  /** -Infinity for `revoked: true`, the instant for `revoked: {at}`, null when not revoked */
  revokedAt: number | null;
  revokedReason: string | null;
  revokedSource: string;
  hours: CompiledHours | null;
  grantsSource: string;
  grants: CompiledGrant[];
  forbids: CompiledForbid[];
  /** Periods named by any perPeriod limit: the running totals this authority relies on. */
  periods: Period[];
  /** Last calendar window per period, reused while requests fall inside it. */
  windows: Partial<Record<Period, PeriodWindow>>;
  ability: MongoAbility;
  byAction: ReadonlyMap<string, ActionRules>;
  /** Parent first, root last. */
  ancestors: CompiledAuthority[];
}

/**
 * The rules of one action. `grants` holds all of them; `byValue`/`unkeyed` are a prefilter on
 * one attribute (`key`) that most grants pin to a list of values (`counterparty: { $in: [...] }`),
 * so a request only runs CASL on grants that could match at all. The prefilter is sound because
 * CASL compares such values with ===: a grant requiring counterparty ∈ {acme, globex} cannot
 * match counterparty "initech".
 */
export interface ActionRules {
  grants: CompiledGrant[];
  forbids: CompiledForbid[];
  key: string | null;
  byValue: Map<unknown, CompiledGrant[]>;
  unkeyed: CompiledGrant[];
}

export interface PolicyBundle {
  /** `sha256:<hex>` over the sorted file names and contents. */
  version: string;
  files: readonly string[];
  authorities: ReadonlyMap<string, CompiledAuthority>;
  /** Per delegate, in the order `decide` prefers them (see selectAuthority). */
  byDelegate: ReadonlyMap<string, readonly CompiledAuthority[]>;
}

/** JSON with sorted keys: a content identity for grants that ignores key order and position. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

const DAY_NAMES = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

/** "mon–fri, sun": runs of three or more days as ranges. */
function daysText(days: boolean[]): string {
  const parts: string[] = [];
  for (let i = 0; i < 7; ) {
    if (!days[i]) {
      i++;
      continue;
    }
    let j = i;
    while (j + 1 < 7 && days[j + 1]) j++;
    if (j - i >= 2) parts.push(`${WEEKDAYS[i]}–${WEEKDAYS[j]}`);
    else for (let k = i; k <= j; k++) parts.push(WEEKDAYS[k]!);
    i = j + 1;
  }
  return parts.join(', ');
}

const isKeyValue = (v: unknown) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/** The values a condition on one attribute requires, when it pins them (equality or $in). */
function requiredValues(when: Record<string, unknown> | undefined, field: string): unknown[] | null {
  const c = when?.[field];
  if (isKeyValue(c)) return [c];
  if (c && typeof c === 'object' && !Array.isArray(c)) {
    const ops = c as Record<string, unknown>;
    if (Array.isArray(ops.$in) && ops.$in.every(isKeyValue)) return ops.$in;
    if (isKeyValue(ops.$eq)) return [ops.$eq];
  }
  return null;
}

function indexGrants(grants: CompiledGrant[], forbids: CompiledForbid[]): ActionRules {
  const counts = new Map<string, number>();
  for (const g of grants) {
    for (const field of Object.keys(g.when ?? {})) {
      if (!field.includes('.') && requiredValues(g.when, field)) counts.set(field, (counts.get(field) ?? 0) + 1);
    }
  }
  let key: string | null = null;
  let best = 1; // indexing pays off once two grants can be skipped
  for (const [field, n] of [...counts].sort(([a], [b]) => (a < b ? -1 : 1))) if (n > best) [key, best] = [field, n];
  const byValue = new Map<unknown, CompiledGrant[]>();
  const unkeyed: CompiledGrant[] = [];
  for (const g of grants) {
    const values = key === null ? null : requiredValues(g.when, key);
    if (!values) unkeyed.push(g);
    else for (const v of new Set(values)) byValue.set(v, [...(byValue.get(v) ?? []), g]);
  }
  return { grants, forbids, key, byValue, unkeyed };
}

const EMPTY: readonly CompiledGrant[] = [];

function windowOf(a: CompiledAuthority, period: Period, atMs: number): PeriodWindow {
  const w = a.windows[period];
  if (w && atMs >= w.startMs && atMs < w.endMs) return w;
  return (a.windows[period] = periodWindow(period, atMs, a.tz));
}

function compileAuthority(src: AuthoritySource): CompiledAuthority {
  const { doc, file } = src;
  const at = (...path: (string | number)[]) => `${file}:${src.lineOf(path)}`;
  const label = `${doc.id} v${doc.version}`;
  const tz = doc.hours?.tz ?? doc.tz ?? 'UTC';

  const grants: CompiledGrant[] = doc.grants.map((g, i) => {
    const rule = `${doc.id}/grants/${i}`;
    const currency = g.currency ?? doc.currency;
    const limit = (text: string, path: string): CompiledLimit => {
      const minor = toMinor(text, currency);
      return { minor, decimal: toDecimal(minor, currency), text: formatAmount(minor, currency), source: at('grants', i, 'limits', path), rule: `${rule}/limits/${path}` };
    };
    const tiers = (g.approval?.tiers ?? [])
      .map((t, j) => ({
        above: toMinor(t.above, currency),
        approvers: [...t.approvers],
        quorum: t.quorum,
        source: at('grants', i, 'approval', 'tiers', j),
        rule: `${rule}/approval/tiers/${j}`,
      }))
      .sort((a, b) => (a.above < b.above ? -1 : a.above > b.above ? 1 : 0));
    const escalate = g.approval?.escalateTo;
    return {
      kind: 'grant',
      rule,
      source: at('grants', i),
      whenSource: g.when ? at('grants', i, 'when') : at('grants', i),
      action: g.action,
      outcome: g.outcome,
      when: g.when,
      rank: 0,
      currency,
      perAction: g.limits?.perAction !== undefined ? limit(g.limits.perAction, 'perAction') : null,
      perPeriod: g.limits?.perPeriod ? { ...limit(g.limits.perPeriod.amount, 'perPeriod'), period: g.limits.perPeriod.period } : null,
      tiers,
      expiresAfter: parseDuration(g.approval?.expiresAfter ?? DEFAULT_EXPIRY)!,
      escalateTo: escalate === undefined ? [] : Array.isArray(escalate) ? [...escalate] : [escalate],
      approvalSource: g.approval ? at('grants', i, 'approval') : at('grants', i),
      casl: undefined as unknown as Rule<any, any>, // bound below, once CASL has indexed the rules
    };
  });
  const forbids: CompiledForbid[] = (doc.forbid ?? []).map((f, i) => ({
    kind: 'forbid',
    rule: `${doc.id}/forbid/${i}`,
    source: at('forbid', i),
    action: f.action,
    reason: f.reason,
    rank: 0,
    casl: undefined as unknown as Rule<any, any>,
  }));

  // Content-based ranks: among equally good grants the same one wins however the file is ordered.
  const rankBy = <T extends { rank: number }>(items: T[], raw: unknown[]) =>
    items
      .map((item, i) => ({ item, key: canonical(raw[i]) }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .forEach(({ item }, rank) => (item.rank = rank));
  rankBy(grants, doc.grants);
  rankBy(forbids, doc.forbid ?? []);

  // Forbids come after grants: CASL gives later rules priority, so `ability.can` alone already
  // honours "forbid wins"; decide() additionally needs every matching grant, hence the index.
  const owner = new Map<object, CompiledGrant | CompiledForbid>();
  const raw = [
    ...doc.grants.map((g, i) => {
      const r = { action: g.action, subject: SUBJECT, conditions: g.when && Object.keys(g.when).length ? g.when : undefined };
      owner.set(r, grants[i]!);
      return r;
    }),
    ...(doc.forbid ?? []).map((f, i) => {
      const r = { action: f.action, subject: SUBJECT, inverted: true, reason: f.reason, conditions: f.when && Object.keys(f.when).length ? f.when : undefined };
      owner.set(r, forbids[i]!);
      return r;
    }),
  ];
  const ability = createMongoAbility(raw as any, CASL_OPTIONS) as MongoAbility;
  const byAction = new Map<string, ActionRules>();
  for (const action of new Set(raw.map((r) => r.action))) {
    const grantsOf: CompiledGrant[] = [];
    const forbidsOf: CompiledForbid[] = [];
    for (const rule of ability.rulesFor(action, SUBJECT)) {
      const compiled = owner.get(rule.origin as object)!;
      try {
        void rule.ast; // builds the condition matcher now, not on the first request
      } catch (e) {
        const path = compiled.kind === 'grant' ? ['grants', grants.indexOf(compiled), 'when'] : ['forbid', forbids.indexOf(compiled), 'when'];
        throw new CompileError(file, src.lineOf(path), `conditions cannot be compiled: ${(e as Error).message}`);
      }
      compiled.casl = rule;
      if (compiled.kind === 'grant') grantsOf.push(compiled);
      else forbidsOf.push(compiled);
    }
    grantsOf.sort((a, b) => a.rank - b.rank);
    forbidsOf.sort((a, b) => a.rank - b.rank);
    byAction.set(action, indexGrants(grantsOf, forbidsOf));
  }

  const hours: CompiledHours | null = doc.hours
    ? (() => {
        const days = WEEKDAYS.map((d) => doc.hours!.days.includes(d));
        return {
          days,
          from: parseClock(doc.hours.from),
          until: parseClock(doc.hours.until),
          text: `${daysText(days)} ${doc.hours.from}–${doc.hours.until} ${doc.hours.tz}`,
          source: at('hours'),
          rule: `${doc.id}/hours`,
        };
      })()
    : null;

  const revoked = doc.revoked;
  return {
    id: doc.id,
    version: doc.version,
    label,
    file,
    doc,
    delegator: doc.delegator,
    delegate: doc.delegate,
    parent: doc.parent ?? null,
    mode: doc.mode,
    modeSource: at('mode'),
    currency: doc.currency,
    tz,
    validFrom: parseInstant(doc.valid.from),
    validUntil: parseInstant(doc.valid.until),
    validSource: at('valid'),
    revokedAt: revoked === true ? -Infinity : revoked && typeof revoked === 'object' ? (revoked.at ? parseInstant(revoked.at) : -Infinity) : null,
    revokedReason: revoked && typeof revoked === 'object' ? (revoked.reason ?? null) : null,
    revokedSource: at('revoked'),
    hours,
    grantsSource: at('grants'),
    grants,
    forbids,
    periods: [...new Set(grants.flatMap((g) => (g.perPeriod ? [g.perPeriod.period] : [])))],
    windows: {},
    ability,
    byAction,
    ancestors: [],
  };
}

/**
 * Compiles validated documents into a bundle. The loader has already checked ids, parents and
 * cycles; this only builds the runtime structures.
 */
export function compileBundle(sources: readonly AuthoritySource[], version: string, files: readonly string[]): PolicyBundle {
  const authorities = new Map<string, CompiledAuthority>();
  for (const src of sources) authorities.set(src.doc.id, compileAuthority(src));
  for (const a of authorities.values()) {
    for (let p = a.parent ? authorities.get(a.parent) : undefined; p; p = p.parent ? authorities.get(p.parent) : undefined) a.ancestors.push(p);
  }
  const byDelegate = new Map<string, CompiledAuthority[]>();
  for (const a of authorities.values()) {
    const list = byDelegate.get(a.delegate) ?? [];
    list.push(a);
    byDelegate.set(a.delegate, list);
  }
  for (const list of byDelegate.values()) list.sort(preference);
  return { version, files: [...files], authorities, byDelegate };
}

/** Newest first: the latest `valid.from`, then the highest version, then the smaller id. */
function preference(a: CompiledAuthority, b: CompiledAuthority): number {
  return b.validFrom - a.validFrom || b.version - a.version || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function inForce(a: CompiledAuthority, atMs: number): boolean {
  return atMs >= a.validFrom && atMs < a.validUntil && !(a.revokedAt !== null && atMs >= a.revokedAt);
}

/**
 * The authority a principal acts under at `atMs`. Several documents may delegate to the same
 * principal (a new version taking over from an old one): the preferred one (latest valid.from,
 * highest version, smallest id) among those in force wins. When none is in force the preferred
 * one is still returned so the decision can say why it denies (expired, revoked).
 */
export function selectAuthority(bundle: PolicyBundle, principal: string, atMs: number, pinned?: string): CompiledAuthority | null {
  if (pinned !== undefined) {
    const a = bundle.authorities.get(pinned);
    return a && a.delegate === principal ? a : null;
  }
  const list = bundle.byDelegate.get(principal);
  if (!list || list.length === 0) return null;
  for (const a of list) if (inForce(a, atMs)) return a;
  return list[0]!;
}

interface Context {
  atMs: number;
  atText: string;
  action: string;
  resource: Record<string, unknown>;
  /** `resource.currency` when given */
  currency: string | null;
  hasAmount: boolean;
}

interface AuthorityResult {
  authority: CompiledAuthority;
  outcome: Outcome;
  reasons: Reason[];
  matched: MatchedRule[];
  grant: CompiledGrant | null;
  amount: bigint | null;
  currency: string;
}

const reason = (code: ReasonCode, message: string, source: string, rule?: string): Reason =>
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

function evaluateAuthority(a: CompiledAuthority, ctx: Context, spent: Spent | undefined): AuthorityResult {
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

/** Every rule a bundle defines, for coverage reports. */
export interface RuleInfo {
  rule: string;
  kind: 'grant' | 'forbid' | 'perAction' | 'perPeriod' | 'tier' | 'hours';
  authority: string;
  source: string;
}

export function ruleInventory(bundle: PolicyBundle): RuleInfo[] {
  const out: RuleInfo[] = [];
  const ids = [...bundle.authorities.keys()].sort();
  for (const id of ids) {
    const a = bundle.authorities.get(id)!;
    for (const g of a.grants) {
      out.push({ rule: g.rule, kind: 'grant', authority: id, source: g.source });
      if (g.perAction) out.push({ rule: g.perAction.rule, kind: 'perAction', authority: id, source: g.perAction.source });
      if (g.perPeriod) out.push({ rule: g.perPeriod.rule, kind: 'perPeriod', authority: id, source: g.perPeriod.source });
      for (const t of [...g.tiers].sort((x, y) => (x.rule < y.rule ? -1 : 1))) out.push({ rule: t.rule, kind: 'tier', authority: id, source: t.source });
    }
    for (const f of a.forbids) out.push({ rule: f.rule, kind: 'forbid', authority: id, source: f.source });
    if (a.hours) out.push({ rule: a.hours.rule, kind: 'hours', authority: id, source: a.hours.source });
  }
  return out;
}

