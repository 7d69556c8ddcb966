/**
 * The Authority document: one zod schema, also published as JSON Schema so editors can check
 * documents while people type. Strict everywhere: an unknown field is a mistake (a misspelt
 * `forbid` must not silently grant more), so it is refused.
 */
import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import { DECIMAL_PATTERN, decimalProblem, parseAmount } from './amount';
import { conditionProblems, CONDITION_OPERATORS } from './conditions';
import { CURRENCY_CODES } from './currencies';
import { isInstant, isValidTimeZone, parseClock, parseDuration, PERIODS, WEEKDAYS } from './time';
import { MODES } from './types';
import { CLASSES, COLLECTION_ID } from '../knowledge/types';

const list = (values: readonly string[]) =>
  values.length <= 1 ? values.join('') : `${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}`;

/** zod error callback for a closed set of words, e.g. `unknown mode "fast" (expected propose, approve or execute)`. */
const oneOf = (what: string, values: readonly string[]) => (iss: { input?: unknown }) =>
  iss.input === undefined ? 'required' : `unknown ${what} ${JSON.stringify(iss.input)} (expected ${list(values)})`;

const idPattern = /^[a-z0-9][a-z0-9._-]*$/;
const Id = z
  .string()
  .regex(idPattern, { error: 'ids are lower-case letters, digits, ".", "_" and "-", e.g. cfo-twin' })
  .describe('Unique id of an authority document, e.g. cfo-twin');

const Principal = z
  .string()
  .regex(/^[a-z][a-z0-9-]*:[A-Za-z0-9._@-]+$/, { error: 'write a principal as kind:name, e.g. user:dana or twin:cfo-twin' })
  .describe('A principal as kind:name, e.g. user:dana or twin:cfo-twin');

const Approver = z
  .string()
  .regex(/^(role|user):[A-Za-z0-9._@-]+$/, { error: 'approvers are role:<name> or user:<name>, e.g. role:cfo' })
  .describe('role:<name> or user:<name>');

const ActionName = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/, { error: 'actions are dotted names such as crm.discount.update' })
  .describe('A connector operation, e.g. crm.discount.update');

export const Amount = z
  .string({ error: (iss) => (iss.input === undefined ? 'required' : (decimalProblem(iss.input) ?? 'invalid amount')) })
  .regex(DECIMAL_PATTERN, { error: (iss) => decimalProblem(iss.input) ?? 'invalid amount' })
  .describe('Decimal string in the currency, no separators: "10000" or "10000.00"');

const Instant = z
  .string({ error: (iss) => (iss.input === undefined ? 'required' : 'write dates as quoted RFC 3339 timestamps such as 2026-01-01T00:00:00Z') })
  .refine(isInstant, { error: (iss) => `invalid date ${JSON.stringify(iss.input)} (expected RFC 3339 with a zone, e.g. 2026-01-01T00:00:00Z)` })
  .meta({ format: 'date-time' });

const TimeZone = z
  .string()
  .refine(isValidTimeZone, { error: (iss) => `invalid time zone ${JSON.stringify(iss.input)} (expected an IANA name such as Europe/Berlin)` })
  .describe('IANA time zone, e.g. Europe/Berlin');

const Clock = z
  .string({ error: 'write times as quoted "HH:MM"' })
  .refine((s) => !Number.isNaN(parseClock(s)), { error: (iss) => `invalid time ${JSON.stringify(iss.input)} (expected "HH:MM" from 00:00 to 24:00)` })
  .meta({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$' });

const Mode = z.enum(MODES, { error: oneOf('mode', MODES) });
const Currency = z.enum(CURRENCY_CODES as [string, ...string[]], { error: oneOf('currency', ['an ISO 4217 code such as EUR, USD, JPY']) });
const Period = z.enum(PERIODS, { error: oneOf('period', PERIODS) });
const Weekday = z.enum(WEEKDAYS, { error: oneOf('day', WEEKDAYS) });

const Duration = z
  .string()
  .refine((s) => {
    const d = parseDuration(s);
    return d !== null && (d.years > 0 || d.months > 0 || d.ms > 0);
  }, { error: (iss) => `invalid duration ${JSON.stringify(iss.input)} (expected ISO 8601 such as PT48H or P2D)` })
  .describe('ISO 8601 duration, e.g. PT48H');

export const Conditions = z
  .record(z.string(), z.unknown())
  .describe(`CASL (MongoDB-style) conditions on the action's attributes: attribute: value, or attribute: { operator: value } with ${CONDITION_OPERATORS.join(', ')}`);

const Tier = z.strictObject({
  above: Amount.describe('This tier applies when the amount is strictly above this'),
  approvers: z.array(Approver).min(1, { error: 'list at least one approver' }),
  quorum: z.int({ error: 'quorum is a whole number of approvals' }).min(1, { error: 'quorum is at least 1' }),
});

const Approval = z.strictObject({
  tiers: z.array(Tier).min(1, { error: 'list at least one tier' }),
  expiresAfter: Duration,
  escalateTo: z.union([Approver, z.array(Approver).min(1)]).optional().describe('Who is asked when the approval expires unanswered'),
});

const Limits = z.strictObject({
  perAction: Amount.optional().describe('Largest amount of one action'),
  perPeriod: z
    .strictObject({ amount: Amount, period: Period })
    .optional()
    .describe("Largest running total of the delegator's spending in a calendar period, reservations included"),
});

const Grant = z.strictObject({
  action: ActionName,
  description: z.string().optional(),
  outcome: Mode.describe('Ceiling for this grant'),
  when: Conditions.optional(),
  currency: Currency.optional().describe("Currency of this grant's limits; defaults to the document's"),
  limits: Limits.optional(),
  approval: Approval.optional(),
});

const Forbid = z.strictObject({
  action: ActionName,
  reason: z.string().min(1, { error: 'say why it is forbidden' }),
  description: z.string().optional(),
  when: Conditions.optional(),
});

const Hours = z
  .strictObject({
    tz: TimeZone,
    days: z.array(Weekday).min(1, { error: 'list at least one day' }),
    from: Clock.describe('Local start time, inclusive'),
    until: Clock.describe('Local end time, exclusive; earlier than from means overnight, counted to the day it started'),
  })
  .describe('When actions may execute unattended, on the wall clock of tz; outside them an action needs approval at least');

const Revoked = z.union([z.boolean(), z.strictObject({ at: Instant.optional(), reason: z.string().optional() })], {
  error: 'revoked must be true, false or { at: <timestamp>, reason: <text> }',
});

const KnowledgeClassName = z.enum(CLASSES, { error: oneOf('class', CLASSES) });

const Knowledge = z
  .strictObject({
    collections: z
      .array(z.string().regex(COLLECTION_ID, { error: 'collections are ids such as pricing or board-minutes' }))
      .min(1, { error: 'list at least one collection (leave knowledge out to grant none)' }),
    classes: z.array(KnowledgeClassName).min(1, { error: 'list at least one class (leave knowledge out to grant none)' }),
  })
  .describe('What the delegate may read from the knowledge corpus: these classes in these collections. Absent: nothing. A child only narrows its parent.');

const AuthorityObject = z.strictObject({
  kind: z.literal('Authority', { error: (iss) => (iss.input === undefined ? 'required' : `kind must be Authority, got ${JSON.stringify(iss.input)}`) }),
  id: Id,
  version: z.int({ error: 'version is a whole number' }).min(1, { error: 'version starts at 1' }),
  description: z.string().optional(),
  delegator: Principal.describe('Whose authority is delegated, e.g. user:dana'),
  delegate: Principal.describe('Who receives it, e.g. twin:cfo-twin'),
  parent: Id.nullable().optional().describe('Id of an authority this one narrows (never widens)'),
  valid: z.strictObject({ from: Instant, until: Instant }),
  mode: Mode.describe('Ceiling for everything below'),
  currency: Currency,
  tz: TimeZone.optional().describe('Time zone of calendar periods when there are no hours; defaults to UTC'),
  hours: Hours.optional(),
  revoked: Revoked.optional(),
  grants: z.array(Grant),
  forbid: z.array(Forbid).optional(),
  knowledge: Knowledge.optional(),
});

type Ctx = z.RefinementCtx;

/** Checks that need more than one field: amounts against the currency's digits, dates in order. */
function crossCheck(doc: z.infer<typeof AuthorityObject>, ctx: Ctx) {
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  const amount = (text: string, currency: string, path: (string | number)[]) => {
    const r = parseAmount(text, currency);
    if (!r.ok) issue(path, r.message);
  };
  if (Date.parse(doc.valid.from) >= Date.parse(doc.valid.until)) issue(['valid', 'until'], 'valid.until must be after valid.from');
  if (doc.hours && doc.hours.from === doc.hours.until) issue(['hours', 'until'], 'hours.from and hours.until are equal; omit hours to allow any time');
  if (doc.hours && new Set(doc.hours.days).size !== doc.hours.days.length) issue(['hours', 'days'], 'a day is listed twice');
  if (doc.tz && doc.hours && doc.tz !== doc.hours.tz) issue(['tz'], `tz ${doc.tz} differs from hours.tz ${doc.hours.tz}; periods and hours must use one time zone`);
  if (doc.parent === doc.id) issue(['parent'], 'an authority cannot be its own parent');
  doc.grants.forEach((g, i) => {
    const currency = g.currency ?? doc.currency;
    const at = (...p: (string | number)[]) => ['grants', i, ...p];
    if (g.limits?.perAction !== undefined) amount(g.limits.perAction, currency, at('limits', 'perAction'));
    if (g.limits?.perPeriod) amount(g.limits.perPeriod.amount, currency, at('limits', 'perPeriod', 'amount'));
    const seen = new Set<string>();
    g.approval?.tiers.forEach((t, j) => {
      amount(t.above, currency, at('approval', 'tiers', j, 'above'));
      const r = parseAmount(t.above, currency);
      const key = r.ok ? String(r.minor) : t.above;
      if (seen.has(key)) issue(at('approval', 'tiers', j, 'above'), `two tiers start above ${t.above}`);
      seen.add(key);
      const users = t.approvers.filter((a) => a.startsWith('user:'));
      if (users.length === t.approvers.length && t.quorum > users.length)
        issue(at('approval', 'tiers', j, 'quorum'), `quorum ${t.quorum} can never be reached by ${users.length} named approver(s)`);
    });
    for (const p of conditionProblems(g.when ?? {})) issue(at('when', ...p.path), p.message);
  });
  (doc.forbid ?? []).forEach((f, i) => {
    for (const p of conditionProblems(f.when ?? {})) issue(['forbid', i, 'when', ...p.path], p.message);
  });
}

export const AuthoritySchema = AuthorityObject.superRefine(crossCheck).describe(
  'Regent Authority document: what a delegate (a twin) may do on behalf of its delegator',
);

export type AuthorityDoc = z.infer<typeof AuthorityObject>;
export type GrantDoc = AuthorityDoc['grants'][number];
export type ForbidDoc = NonNullable<AuthorityDoc['forbid']>[number];

export const AUTHORITY_SCHEMA_ID = 'https://regent.dev/schemas/authority.schema.json';

/** The JSON Schema of an Authority document (for `regent policy schema` and editors). */
export function authorityJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(AuthoritySchema, { target: 'draft-2020-12', unrepresentable: 'any' }) as Record<string, unknown>;
  return { $schema: schema.$schema, $id: AUTHORITY_SCHEMA_ID, title: 'Regent Authority', ...schema };
}

export function authorityJsonSchemaText(): string {
  return JSON.stringify(authorityJsonSchema(), null, 2) + '\n';
}

export function writeAuthorityJsonSchema(file: string): void {
  writeFileSync(file, authorityJsonSchemaText());
}
