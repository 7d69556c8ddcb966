/**
 * Response shapes shared by several routes, as zod schemas: they document /openapi.json, and the
 * API tests parse real responses with them (an undocumented field or a wrong type fails there).
 * Request schemas live with their capability (src/<capability>/types.ts) and are validated at run time.
 */
import { z } from 'zod';
import { PROPOSAL_STATUSES } from '../proposals/types';
import { MODES, OUTCOMES } from '../policy/types';

export const Timestamp = z.iso.datetime().describe('RFC 3339 UTC with milliseconds');
export const Hex32 = z.string().regex(/^[0-9a-f]{64}$/).describe('64 lowercase hex digits (SHA-256)');

export const ProblemSchema = z
  .looseObject({
    type: z.string().describe('https://regent.dev/problems/<code>'),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().describe('What was wrong, specifically; safe to show to the caller'),
    instance: z.string().describe('The URL called'),
    errorId: z.string().describe('Also in the server log line for this refusal'),
    requestId: z.string().optional(),
    field: z.string().optional().describe('For 400: the offending input, e.g. body.mode or query.limit'),
    capability: z.string().optional().describe('For 403: the capability the caller lacks'),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details (application/problem+json)' });

export const JournalEntrySchema = z
  .object({
    seq: z.number().int().min(1),
    ts: Timestamp,
    kind: z.string(),
    actor: z.string().describe('user:<id>, twin:<id> or system'),
    subject: z.string().nullable(),
    data: z.record(z.string(), z.unknown()),
    policyVersion: z.string().nullable().describe('sha256:<hex> of the policy bundle in force, or null'),
    leaf: Hex32.describe('hex SHA-256(0x00 ‖ JCS(entry without leaf and chain))'),
    chain: Hex32.describe('hex SHA-256(0x02 ‖ previous chain ‖ leaf)'),
  })
  .meta({ id: 'JournalEntry', description: 'A journal entry exactly as DESIGN.md fixes it' });

export const CheckpointSchema = z
  .object({
    size: z.number().int().min(0),
    root: Hex32.describe('RFC 6962 Merkle root of the first `size` leaves'),
    note: z.string().describe('The C2SP signed note over the tlog-checkpoint body'),
    createdAt: Timestamp,
  })
  .meta({ id: 'Checkpoint' });

export const TwinSchema = z
  .object({
    id: z.string(),
    owner: z.string().describe('user:<id>'),
    authority: z.string(),
    mode: z.enum(MODES),
    killed: z.boolean(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .meta({ id: 'Twin' });

export const ApiKeyInfoSchema = z
  .object({
    id: z.string(),
    principal: z.string().describe('user:<id> or twin:<id>'),
    label: z.string().nullable(),
    createdAt: Timestamp,
    lastUsedAt: Timestamp.nullable().describe('Updated at most once a minute per key'),
    revokedAt: Timestamp.nullable(),
  })
  .meta({ id: 'ApiKey', description: 'A key as listed: never its secret or hash' });

export const UserSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    roles: z.array(z.string()),
    createdAt: Timestamp,
    disabledAt: Timestamp.nullable(),
  })
  .meta({ id: 'User' });

export const IssuedKeyFields = {
  keyId: z.string(),
  apiKey: z.string().describe('The whole key: shown in this response only, stored as a hash'),
};

export const KillSwitchStateSchema = z
  .object({
    engaged: z.boolean().describe('The global switch'),
    updatedBy: z.string(),
    updatedAt: Timestamp,
    twins: z.array(z.string()).describe('Twins whose own switch is engaged (among those the caller may see)'),
  })
  .meta({ id: 'KillSwitchState' });

const ReasonSchema = z.object({ code: z.string(), message: z.string(), source: z.string().describe('file:line'), rule: z.string().optional() });

export const DecisionViewSchema = z
  .object({
    outcome: z.enum(OUTCOMES),
    reasons: z.array(ReasonSchema),
    policyVersion: z.string(),
    authority: z.string().nullable(),
    approval: z.object({ approvers: z.array(z.string()), quorum: z.number().int(), expiresAt: Timestamp }).nullable(),
  })
  .meta({ id: 'Decision' });

export const ProposalViewSchema = z
  .object({
    id: z.uuid(),
    status: z.enum(PROPOSAL_STATUSES),
    decision: DecisionViewSchema,
    twin: z.string(),
    owner: z.string().nullable().describe('The executive the twin acts for (user:<id>)'),
    action: z.string(),
    args: z.record(z.string(), z.unknown()),
    argsHash: Hex32,
    rationale: z.string(),
    idempotencyKey: z.string(),
    approval: z
      .object({
        approvers: z.array(z.string()),
        quorum: z.number().int(),
        expiresAt: Timestamp,
        escalateTo: z.array(z.string()),
        approvedBy: z.array(z.string()),
        escalated: z.boolean(),
      })
      .nullable(),
    expiresAt: Timestamp.nullable(),
    attempts: z.number().int(),
    result: z.record(z.string(), z.unknown()).nullable(),
    error: z.string().nullable(),
    audit: z.enum(['pending', 'passed', 'flagged']).nullable(),
    context: z
      .record(z.string(), z.unknown())
      .nullable()
      .describe("Where the request came from: for an agent's, the objective, planner, model, prompt version and system prompt hash"),
    inDoubt: z
      .object({
        since: Timestamp,
        sentAt: Timestamp.nullable(),
        executor: z.string().nullable().describe('The process that sent the call'),
        connector: z.string().nullable(),
        checkIn: z.string().describe('Where a person looks to find out, and what for'),
        lastHeard: z.string().nullable().describe('What the business system last said, or how the call was cut off'),
        error: z.string(),
      })
      .nullable()
      .describe('What is known of a call whose outcome is unknown (status in_doubt); kept once settled'),
    reconciliation: z
      .object({ outcome: z.enum(['executed', 'not_executed']), evidence: z.string(), by: z.string(), at: Timestamp })
      .nullable()
      .describe('How an in-doubt call was settled: by a person (user:<id>) or by the connector’s status lookup (system)'),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .meta({ id: 'Proposal' });

export const ReviewSchemaOut = z
  .object({
    id: z.string(),
    actor: z.string(),
    decision: z.enum(['approve', 'reject', 'edit', 'comment']),
    comment: z.string().nullable(),
    argsHash: Hex32,
    policyVersion: z.string(),
    createdAt: Timestamp,
  })
  .meta({ id: 'Review' });

export const InclusionProofSchema = z
  .object({
    seq: z.number().int().min(1),
    size: z.number().int().min(1).describe('The tree size the proof is for'),
    leaf: Hex32,
    root: Hex32.describe('Merkle root at `size`; equals the checkpoint root'),
    proof: z.array(Hex32).describe('RFC 9162 inclusion path for leaf index seq-1, bottom-up'),
    checkpoint: z.string().nullable().describe('The signed checkpoint note at `size`, when one was made there'),
  })
  .meta({ id: 'InclusionProof' });
