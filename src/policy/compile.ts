/**
 * Compiling authorities: validated documents become CASL abilities whose rules are indexed by
 * action (and prefiltered on one pinned attribute), with every limit, tier and hours window
 * parsed once per bundle version and tied to its source line.
 */
import { createMongoAbility, type MongoAbility, type Rule } from '@casl/ability';
import { formatAmount, toDecimal, toMinor } from './amount';
import type { AuthorityDoc } from './schema';
import { preference } from './select';
import { parseClock, parseDuration, parseInstant, WEEKDAYS, type Duration, type Period, type PeriodWindow } from './time';
import type { Mode } from './types';

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

export interface CompiledHours {
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

export const isKeyValue = (v: unknown) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

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
