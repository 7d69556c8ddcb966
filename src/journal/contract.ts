/**
 * The journal entry contract, stated once (DESIGN.md "Journal"): the shape of an entry, the
 * closed union of kinds Regent writes, and the shape of each kind's `data`.
 *
 * Two readers with different needs use it:
 * - Verification (verify.ts, and fastline.ts, which is tested against this module) checks the
 *   entry shape only: exactly the nine fields with their types and formats. It accepts any kind
 *   and any object as `data`: other implementations write other kinds, and journals written
 *   before a kind's data gained a field must still verify.
 * - Appending (service.ts) accepts only Regent's kinds. Each kind's `data` has a schema here
 *   (ENTRY_DATA); the journal service checks data against it when strict (NODE_ENV=test, or its
 *   `strict` option), so an append that writes data its kind does not describe is a bug the
 *   tests catch. Production appends skip that check (the journal append is a hot path).
 */
import { z } from 'zod';
import { OBJECTIVE_STATUSES, PLANNERS, ConstraintsSchema } from '../objectives/types';
import { MODES, OUTCOMES, REASON_CODES } from '../policy/types';
import { PROPOSAL_STATUSES } from '../proposals/types';

// ---------------------------------------------------------------------------------------------
// The entry

/** An entry's fields in the contract's (and every export line's) order. */
export const ENTRY_FIELDS = ['seq', 'ts', 'kind', 'actor', 'subject', 'data', 'policyVersion', 'leaf', 'chain'] as const;
export type EntryField = (typeof ENTRY_FIELDS)[number];

/** The fields the leaf hashes (all but leaf and chain), in JCS order (UTF-16 code units). */
export const CANONICAL_BODY_FIELDS = ['actor', 'data', 'kind', 'policyVersion', 'seq', 'subject', 'ts'] as const;

/** What a caller gives to append; seq, ts, leaf and chain are the journal's to assign. */
export const APPEND_FIELDS = ['kind', 'actor', 'subject', 'data', 'policyVersion'] as const;

/** An entry as stored, exported and hashed: exactly the nine fields. */
export interface JournalEntry {
  seq: number;
  /** RFC 3339 UTC with milliseconds. */
  ts: string;
  /** One of JOURNAL_KINDS when Regent wrote it; verification accepts any non-empty kind. */
  kind: string;
  actor: string;
  subject: string | null;
  data: unknown;
  policyVersion: string | null;
  /** Lowercase hex of the leaf hash. */
  leaf: string;
  /** Lowercase hex of the chain hash. */
  chain: string;
}

export const ACTOR_PATTERN = /^(system|[a-z]+:[A-Za-z0-9][A-Za-z0-9._@-]{0,127})$/;
export const SUBJECT_PATTERN = /^[a-z]+:[A-Za-z0-9][A-Za-z0-9._@:/-]{0,199}$/;
export const POLICY_VERSION_PATTERN = /^sha256:[0-9a-f]{64}$/;
/** `ts`: RFC 3339 UTC with milliseconds (isRealDate rules out days a month does not have). */
export const TS_PATTERN = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z$/;
/** `leaf` and `chain`. */
export const HEX64_PATTERN = /^[0-9a-f]{64}$/;

/** Whether a ts matching TS_PATTERN names a date that exists. */
export function isRealDate(ts: string): boolean {
  // The regex already bounds every field; only days 29-31 can name a date that does not exist.
  if (ts.charCodeAt(8) < 0x32 /* '2' */ || (ts.charCodeAt(8) === 0x32 && ts.charCodeAt(9) <= 0x38)) return true;
  return new Date(ts).toISOString() === ts;
}

const ENTRY_FIELD_SET: ReadonlySet<string> = new Set(ENTRY_FIELDS);

/**
 * The verifier's check of one parsed line against the entry contract: exactly the nine fields,
 * with the right types and formats (any kind, any data). Returns a description of the first
 * problem, or null. `checkHashFormat` false leaves leaf and chain to a comparison with
 * recomputed hex, which only well-formed values can pass.
 */
export function checkEntryShape(value: unknown, checkHashFormat = true): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const e = value as Record<string, unknown>;
  let count = 0;
  for (const k in e) {
    if (!ENTRY_FIELD_SET.has(k)) return `unexpected field ${JSON.stringify(k)} (an entry has exactly ${ENTRY_FIELDS.join(', ')})`;
    count++;
  }
  if (count !== ENTRY_FIELDS.length) {
    const missing = ENTRY_FIELDS.filter((f) => !Object.prototype.hasOwnProperty.call(e, f));
    return `missing field${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`;
  }
  const { seq, ts, kind, actor, subject, policyVersion, leaf, chain } = e;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1)
    return `"seq" must be a positive integer, got ${JSON.stringify(seq)}`;
  if (typeof ts !== 'string' || !TS_PATTERN.test(ts) || !isRealDate(ts)) {
    return `"ts" must be RFC 3339 UTC with milliseconds (YYYY-MM-DDTHH:MM:SS.sssZ), got ${JSON.stringify(ts)}`;
  }
  if (typeof kind !== 'string' || kind.length === 0) return `"kind" must be a non-empty string`;
  if (typeof actor !== 'string' || actor.length === 0) return `"actor" must be a non-empty string`;
  if (subject !== null && typeof subject !== 'string') return `"subject" must be a string or null`;
  if (policyVersion !== null && (typeof policyVersion !== 'string' || !POLICY_VERSION_PATTERN.test(policyVersion))) {
    return `"policyVersion" must be null or sha256:<64 lowercase hex>, got ${JSON.stringify(policyVersion)}`;
  }
  if (typeof leaf !== 'string' || (checkHashFormat && !HEX64_PATTERN.test(leaf))) return `"leaf" must be 64 lowercase hex digits`;
  if (typeof chain !== 'string' || (checkHashFormat && !HEX64_PATTERN.test(chain))) return `"chain" must be 64 lowercase hex digits`;
  return null;
}

// ---------------------------------------------------------------------------------------------
// Kinds and their data

const Text = z.string();
const Count = z.number().int().min(0);
const Instant = z.iso.datetime({ offset: true });
const PolicyVersion = z.string().regex(POLICY_VERSION_PATTERN);
const Hex64 = z.string().regex(HEX64_PATTERN);
const Json = z.record(z.string(), z.unknown());
const ProposalStatus = z.enum(PROPOSAL_STATUSES);
const ObjectiveStatus = z.enum(OBJECTIVE_STATUSES);
const Mode = z.enum(MODES);

/** policy.loaded and policy.rolled_back: the version now in force and how it differs. */
const PolicyInForce = z.strictObject({
  version: PolicyVersion,
  authorities: z.array(Text),
  files: z.array(Text),
  previous: PolicyVersion.nullable(),
  added: z.array(Text),
  removed: z.array(Text),
  changed: z.array(Text),
});

/** A call whose outcome is unknown (proposals' InDoubt). */
const InDoubt = z.strictObject({
  since: Instant,
  sentAt: Instant.nullable(),
  executor: Text.nullable(),
  connector: Text.nullable(),
  checkIn: Text,
  lastHeard: Text.nullable(),
  error: Text,
});

/** What made an agent's request (objectives' runner: the step's context). */
const StepContext = {
  objective: Text,
  run: Text,
  step: Text,
  planner: Text,
  model: Text.optional(),
  promptVersion: Text.optional(),
  systemPromptSha256: Text.optional(),
  playbook: Text.optional(),
  policyVersion: PolicyVersion.nullable(),
};

/**
 * Every kind of entry Regent writes, with the schema of its `data`: a closed union, extended as
 * capabilities arrive. Object schemas are strict (a field no schema names is a typo or an
 * undocumented addition) except where the data legitimately carries more (audit.note,
 * auth.refused).
 */
export const ENTRY_DATA = {
  /** A person's note (`regent journal note`: {text}); free-form, `text` a string when given. */
  'audit.note': z.looseObject({ text: Text.optional() }),
  'system.started': z.strictObject({ version: Text, database: z.enum(['embedded', 'postgres']), pid: Count }),
  'system.stopped': z.strictObject({ signal: Text }),
  /** `regent journal export` ({size, root}), or over HTTP with its format and filters. */
  'journal.exported': z.strictObject({
    size: Count,
    root: Hex64,
    format: z.enum(['jsonl', 'csv', 'bundle']).optional(),
    filters: z.record(z.string(), Text).optional(),
  }),
  'policy.loaded': PolicyInForce,
  'policy.refused': z.strictObject({
    errors: z.array(z.strictObject({ file: Text, line: Count, message: Text })),
    inForce: PolicyVersion.nullable(),
  }),
  'policy.rolled_back': PolicyInForce,
  'policy.decided': z.strictObject({
    twin: Text,
    /** The decision request, its `at` as RFC 3339. */
    request: z.looseObject({
      principal: Text,
      action: Text,
      resource: Json,
      at: Instant,
      twinMode: Mode.optional(),
      authority: Text.optional(),
    }),
    outcome: z.enum(OUTCOMES),
    reasons: z.array(z.strictObject({ code: z.enum(REASON_CODES), message: Text, source: Text })),
    authority: Text.nullable(),
    approval: z.strictObject({ approvers: z.array(Text), quorum: z.number().int().min(1), expiresAt: Instant }).nullable(),
  }),
  'user.created': z.strictObject({ name: Text, roles: z.array(Text), keyId: Text, firstStart: z.literal(true).optional() }),
  'user.key_created': z.strictObject({ principal: Text, label: Text.nullable() }),
  'user.key_revoked': z.strictObject({ principal: Text }),
  'twin.created': z.strictObject({ owner: Text, authority: Text, mode: Mode, keyId: Text }),
  'twin.mode_changed': z.strictObject({ from: Mode, to: Mode }),
  'kill_switch.changed': z.strictObject({
    scope: z.enum(['global', 'twin']),
    engaged: z.boolean(),
    previous: z.boolean(),
    changed: z.boolean(),
  }),
  /** A refused request: 401 (with the refusal's reason and key id), 403 (with the error's details), 429. */
  'auth.refused': z.looseObject({
    method: Text,
    path: Text,
    status: z.union([z.literal(401), z.literal(403), z.literal(429)]),
    reason: Text.optional(),
    keyId: Text.optional(),
    rateLimited: z.literal(true).optional(),
  }),
  'proposal.refused': z.strictObject({ reason: Text, action: Text.nullable(), idempotencyKey: Text.optional() }),
  /** A proposal's status change; its creation (from null) carries the rationale instead of a reason. */
  'proposal.transitioned': z.strictObject({
    twin: Text,
    action: Text,
    from: ProposalStatus.nullable(),
    to: ProposalStatus,
    reason: Text.optional(),
    rationale: Text.optional(),
    context: Json.optional(),
    executor: Text.optional(),
    attempt: z.number().int().min(1).optional(),
    result: Json.optional(),
    error: Text.nullable().optional(),
    inDoubt: InDoubt.optional(),
  }),
  'proposal.reviewed': z.discriminatedUnion('decision', [
    z.strictObject({ decision: z.literal('comment'), comment: Text }),
    z.strictObject({ decision: z.literal('reject'), comment: Text }),
    z.strictObject({ decision: z.literal('edit'), comment: Text.nullable(), argsHash: Text, previousArgsHash: Text }),
    z.strictObject({
      decision: z.literal('approve'),
      comment: Text.nullable(),
      argsHash: Text,
      approvals: z.number().int().min(1),
      quorum: z.number().int().min(1),
    }),
  ]),
  'proposal.escalated': z.strictObject({ to: z.array(Text), expiresAt: Instant }),
  'proposal.audited': z.strictObject({ verdict: z.enum(['passed', 'flagged']), comment: Text.nullable(), status: ProposalStatus }),
  'proposal.reconciled': z.strictObject({
    twin: Text,
    action: Text,
    outcome: z.enum(['executed', 'not_executed']),
    evidence: Text,
    inDoubt: InDoubt.nullable(),
  }),
  'objective.created': z.strictObject({
    twin: Text,
    owner: Text,
    text: Text,
    planner: z.enum(PLANNERS),
    playbook: Text.nullable(),
    params: Json,
    constraints: ConstraintsSchema,
    stepBudget: z.number().int().min(1),
    signal: Text.nullable(),
  }),
  'objective.refused': z.strictObject({ reason: Text, playbook: Text.nullable() }),
  'objective.transitioned': z.strictObject({ twin: Text, from: ObjectiveStatus, to: ObjectiveStatus, reason: Text }),
  'objective.step': z.strictObject({ twin: Text, key: Text, action: Text, proposal: Text, status: ProposalStatus, ...StepContext }),
  /** The planner refused a step (reason, detail) or one of its calls was refused (key, action, args' trace). */
  'agent.refused': z.strictObject({
    objective: Text,
    planner: Text.nullable(),
    reason: Text,
    detail: z.unknown().optional(),
    key: Text.nullable().optional(),
    action: Text.nullable().optional(),
    argsHash: Text.nullable().optional(),
    argNames: z.array(Text).optional(),
  }),
  'signal.received': z.strictObject({
    type: Text,
    source: Text,
    occurredAt: Text.nullable(),
    contentHash: Text,
    payload: Json,
    objectives: z.array(z.strictObject({ id: Text, twin: Text, rule: Text, playbook: Text })),
    skipped: z.array(z.strictObject({ rule: Text, reason: Text })),
    rules: z.array(Text),
  }),
  /**
   * A signal that was not taken: over HTTP, or from a broker (`via` the signal source, with the
   * message's size and a short excerpt, never more of it).
   */
  'signal.refused': z.strictObject({
    id: Text.nullable(),
    type: Text.nullable(),
    source: Text.nullable(),
    reason: Text,
    via: Text.optional(),
    bytes: Count.optional(),
    excerpt: Text.nullable().optional(),
    deadLetter: Text.nullable().optional(),
  }),
  /** An MCP client began talking to /mcp with a twin's key: `initialize` (2025 era) or `server/discover` (2026-07-28). */
  'mcp.initialized': z.strictObject({
    client: z.strictObject({ name: Text, version: Text }),
    protocol: Text,
    era: z.enum(['legacy', 'modern']),
  }),
  /** The MCP client went away while its call was held for approval; the proposal stands (subject). */
  'mcp.call_left': z.strictObject({
    tool: Text,
    client: z.strictObject({ name: Text, version: Text, protocol: Text }),
    status: ProposalStatus,
    heldMs: Count,
  }),
  /**
   * An `mcp` connector's operation took its upstream tool's input schema and description as they
   * were at first load (subject connector:<id>): sha256 hex of the canonical (JCS) schema and of
   * the description text.
   */
  'connector.pinned': z.strictObject({ action: Text, tool: Text, schemaSha256: Hex64, descriptionSha256: Hex64 }),
  /** The upstream tool no longer matches its pin (or vanished): the operation is suspended until an admin accepts. */
  'connector.changed': z.strictObject({
    action: Text,
    tool: Text,
    old: z.strictObject({ schemaSha256: Hex64, descriptionSha256: Hex64 }),
    new: z.strictObject({ schemaSha256: Hex64, descriptionSha256: Hex64 }).nullable(),
  }),
  /** An admin accepted the upstream tool as it now is: the new pin, and the operation runs again. */
  'connector.accepted': z.strictObject({
    action: Text,
    tool: Text,
    old: z.strictObject({ schemaSha256: Hex64, descriptionSha256: Hex64 }),
    new: z.strictObject({ schemaSha256: Hex64, descriptionSha256: Hex64 }),
  }),
  /** A document version added to the corpus (subject document:<id>): provenance, class, hashes of its passages by chunk. */
  'knowledge.ingested': z.strictObject({
    collection: Text,
    /** Present when this document made the collection: who owns it from now on. */
    collectionOwner: Text.optional(),
    title: Text,
    version: z.number().int().min(1),
    class: z.enum(['public', 'internal', 'confidential', 'restricted']),
    source: Text,
    owner: Text,
    mediaType: Text,
    bytes: Count,
    pages: Count,
    contentSha256: Hex64,
    retainUntil: Instant.nullable(),
    passages: z.array(Hex64),
  }),
  /** A search of the corpus by a person or a twin: the query's hash and the passage ids returned, never their text. */
  'knowledge.searched': z.strictObject({
    queryHash: z.string().regex(/^sha256:[0-9a-f]{64}$/),
    collection: Text.nullable(),
    limit: z.number().int().min(1),
    passages: z.array(Text),
  }),
  /** Passages past their retainUntil blanked (hashes kept). */
  'knowledge.purged': z.strictObject({
    reason: z.literal('retention'),
    before: Instant,
    versions: z.array(z.strictObject({ document: Text, version: z.number().int().min(1) })),
    passages: z.array(Text),
  }),
  /** A document deleted early by an admin (subject document:<id>): every version's passages blanked. */
  'knowledge.deleted': z.strictObject({ collection: Text, title: Text, reason: Text.nullable(), passages: z.array(Text) }),
  /** A person granted reading more of the corpus (subject: the person). */
  'knowledge.granted': z.strictObject({ grant: Text, collection: Text.nullable(), classes: z.array(Text).min(1) }),
} as const satisfies Record<string, z.ZodType<Record<string, unknown>>>;

export type JournalKind = keyof typeof ENTRY_DATA;

/** The closed union of kinds, in ENTRY_DATA's order (GET /v1/journal/kinds lists them). */
export const JOURNAL_KINDS = Object.keys(ENTRY_DATA) as readonly JournalKind[];

const KIND_SET: ReadonlySet<string> = new Set(JOURNAL_KINDS);

/** The kinds as a zod enum (the append input, the HTTP API's answer). */
export const JournalKindSchema = z.enum(JOURNAL_KINDS as [JournalKind, ...JournalKind[]]);

export function isJournalKind(kind: unknown): kind is JournalKind {
  return typeof kind === 'string' && KIND_SET.has(kind);
}

/** The data an append of `kind` gives. */
export type EntryData<K extends JournalKind = JournalKind> = z.input<(typeof ENTRY_DATA)[K]>;

/**
 * The first way `data` does not fit `kind`'s schema, or null. For the append path's strict mode
 * and tests; verification never calls it.
 */
export function dataProblem(kind: JournalKind, data: unknown): string | null {
  const r = ENTRY_DATA[kind].safeParse(data);
  if (r.success) return null;
  const i = r.error.issues[0]!;
  return `data${i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}: ${i.message}`;
}

/** Appended data that does not fit its kind's schema: a bug in the code that appends it. */
export class JournalContractError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JournalContractError';
  }
}

// ---------------------------------------------------------------------------------------------
// Appending

/** `user:dana`, `twin:cfo-twin`, `system`: who did it. */
export const ActorSchema = z.string().regex(ACTOR_PATTERN, 'must look like user:<id>, twin:<id> or system');

export const SubjectSchema = z.string().regex(SUBJECT_PATTERN, 'must look like <type>:<id>, e.g. proposal:p-1');

export const PolicyVersionSchema = z.string().regex(POLICY_VERSION_PATTERN, 'must be sha256:<64 hex>');

/** What a caller asks to append, checked at run time (data by ENTRY_DATA only when strict). */
export const AppendInputSchema = z
  .object({
    kind: JournalKindSchema,
    actor: ActorSchema,
    subject: SubjectSchema.nullable().default(null),
    data: z.record(z.string(), z.unknown()).default({}),
    policyVersion: PolicyVersionSchema.nullable().default(null),
  })
  .strict();

/**
 * What a caller asks to append. With its kind known (`AppendInput<'twin.created'>`, or a literal
 * passed straight to append), `data` is typed by that kind's schema; `AppendInput` alone takes any
 * kind with object data (the strict run-time check still applies).
 */
export interface AppendInput<K extends JournalKind = JournalKind> {
  kind: K;
  actor: string;
  subject?: string | null;
  data?: EntryData<K>;
  policyVersion?: string | null;
}
