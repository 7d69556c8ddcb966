import { z } from 'zod';
import { DECIMAL_PATTERN, decimalProblem, parseAmount } from '../policy/amount';
import type { ActionOutcome, ObjectiveView } from '../agent/types';
import type { ProposalStatus } from '../proposals/types';

/** The objective statuses: a closed union, also enforced by a CHECK constraint. */
export const OBJECTIVE_STATUSES = ['queued', 'running', 'waiting_for_approval', 'completed', 'failed', 'cancelled'] as const;
export type ObjectiveStatus = (typeof OBJECTIVE_STATUSES)[number];

export const TERMINAL_OBJECTIVE: ReadonlySet<ObjectiveStatus> = new Set(['completed', 'failed', 'cancelled']);

/** Every legal move; anything else is refused with 409. */
export const OBJECTIVE_TRANSITIONS: Readonly<Record<ObjectiveStatus, readonly ObjectiveStatus[]>> = {
  queued: ['running', 'failed', 'cancelled'],
  running: ['waiting_for_approval', 'completed', 'failed', 'cancelled'],
  waiting_for_approval: ['running', 'failed', 'cancelled'],
  completed: [],
  failed: [],
  cancelled: [],
};

export const PLANNERS = ['playbook', 'llm'] as const;
export type PlannerKind = (typeof PLANNERS)[number];

/** Free text an executive writes: lines and tabs are fine, other control characters are not. */
const ObjectiveText = z
  .string()
  .trim()
  .min(1, 'must say what the twin should achieve')
  .max(8000)
  .refine((t) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(t), 'must not contain control characters')
  .refine((t) => t.isWellFormed(), 'must be well-formed Unicode');

export const SpendCeilingSchema = z
  .object({
    amount: z.string().regex(DECIMAL_PATTERN, { error: (iss) => decimalProblem(iss.input) ?? 'not a decimal string' }),
    currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as EUR'),
  })
  .strict()
  .superRefine((v, ctx) => {
    const r = parseAmount(v.amount, v.currency);
    if (!r.ok) ctx.addIssue({ code: 'custom', path: ['amount'], message: r.message });
  });

export const ConstraintsSchema = z
  .object({
    /** RFC 3339 instant; after it the run stops (failed) and its open proposals are withdrawn. */
    deadline: z.iso.datetime({ offset: true, error: 'must be an RFC 3339 timestamp such as 2026-12-01T17:00:00Z' }).optional(),
    /** Action requests the run may make at most (refused ones count too). */
    stepBudget: z.number().int().min(1).max(1000).optional(),
    /** Total amount the objective's action requests may carry, in the authority's currency. */
    spendCeiling: SpendCeilingSchema.optional(),
  })
  .strict();
export type Constraints = z.infer<typeof ConstraintsSchema>;

/** POST /v1/twins/:id/objectives body (DESIGN.md). */
export const CreateObjectiveSchema = z
  .object({
    text: ObjectiveText,
    playbook: z.string().min(1).max(64).optional(),
    params: z.record(z.string(), z.unknown()).optional(),
    constraints: ConstraintsSchema.optional(),
  })
  .strict();
export type CreateObjectiveInput = z.input<typeof CreateObjectiveSchema>;

/** POST /v1/objectives/:id/cancel body (optional). */
export const CancelObjectiveSchema = z
  .object({ reason: z.string().trim().min(1).max(2000).optional() })
  .strict();

/** GET /v1/twins/:id/objectives query. */
export const ListObjectivesQuery = z
  .object({
    status: z.enum(OBJECTIVE_STATUSES).optional(),
    limit: z.coerce.number().int().min(1).max(500).optional(),
    before: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();

export interface Objective {
  id: string;
  twin: string;
  /** `user:<id>`: the twin's owner when the objective was made. */
  owner: string;
  /** Who assigned it: `user:<id>` (over the API or CLI). */
  createdBy: string;
  text: string;
  playbook: string | null;
  params: Record<string, unknown>;
  constraints: Constraints;
  deadline: string | null;
  stepBudget: number;
  planner: PlannerKind;
  status: ObjectiveStatus;
  summary: string | null;
  stepsUsed: number;
  /** The signal that started it, if one did. */
  signal: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

/** An objective as its run sees it: with the playbook snapshot and the planner's memory. */
export interface ObjectiveRecord extends Objective {
  playbookSnapshot: unknown;
  plannerState: unknown;
  nextRunAt: string | null;
  claimedBy: string | null;
  failures: number;
}

export interface ObjectiveStep {
  key: string;
  action: string;
  argsHash: string;
  proposalId: string | null;
  /** The proposal status last reported to the planner. */
  proposalStatus: ProposalStatus | null;
  outcome: ActionOutcome | null;
  amountMinor: bigint | null;
  currency: string | null;
  createdAt: string;
}

export function objectiveView(o: Objective): ObjectiveView {
  return { id: o.id, text: o.text, playbook: o.playbook, params: o.params, constraints: o.constraints };
}

// ---------------------------------------------------------------------------------------------
// Response shapes (for /openapi.json and the API tests)

const Time = z.iso.datetime().describe('RFC 3339 UTC');

export const ObjectiveSchema = z
  .object({
    id: z.uuid(),
    twin: z.string(),
    owner: z.string().describe('user:<id>, the twin’s owner'),
    createdBy: z.string().describe('Who assigned it (user:<id>), also for objectives a signal started'),
    text: z.string(),
    playbook: z.string().nullable(),
    params: z.record(z.string(), z.unknown()).describe('With the playbook’s defaults filled in'),
    constraints: ConstraintsSchema,
    deadline: Time.nullable(),
    stepBudget: z.number().int(),
    planner: z.enum(PLANNERS),
    status: z.enum(OBJECTIVE_STATUSES),
    summary: z.string().nullable().describe('The planner’s account of where the run stands'),
    stepsUsed: z.number().int(),
    signal: z.string().nullable().describe('The signal that started it'),
    createdAt: Time,
    updatedAt: Time,
    finishedAt: Time.nullable(),
  })
  .meta({ id: 'Objective' });

export const ObjectiveStepSchema = z.object({
  key: z.string().describe('The planner’s stable key (a playbook step id, a model’s tool-call id)'),
  action: z.string(),
  proposalId: z.uuid().nullable().describe('Null when the request was refused before it became a proposal'),
  status: z.string().describe('The proposal’s status, refused, or submitting'),
  reasons: z.array(z.string()).describe('Policy reasons, a rejecting approver’s words, or why it was refused'),
  createdAt: Time,
});

export const ObjectiveDetailSchema = ObjectiveSchema.extend({
  steps: z.array(ObjectiveStepSchema),
  proposals: z.array(
    z.object({
      id: z.uuid(),
      step: z.string(),
      action: z.string(),
      status: z.string(),
      args: z.record(z.string(), z.unknown()),
      rationale: z.string(),
      decision: z.object({ outcome: z.string(), reasons: z.array(z.object({ code: z.string(), message: z.string(), source: z.string() })) }),
      result: z.record(z.string(), z.unknown()).nullable(),
      error: z.string().nullable(),
      createdAt: Time,
      updatedAt: Time,
    }),
  ),
}).meta({ id: 'ObjectiveDetail' });

export const PlaybookViewSchema = z
  .object({
    id: z.string(),
    title: z.string(),
    description: z.string(),
    params: z.record(z.string(), z.unknown()).describe('JSON Schema (type object) of the params, with defaults: render it as a form'),
    steps: z.array(
      z.object({
        id: z.string(),
        title: z.string().nullable(),
        action: z.string(),
        when: z.record(z.string(), z.unknown()).nullable(),
        onFailure: z.enum(['stop', 'continue']),
        await: z.enum(['settled', 'submitted']),
      }),
    ),
  })
  .meta({ id: 'Playbook' });
