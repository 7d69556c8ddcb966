import { z } from 'zod';
import { InputSchemaSchema } from '../connectors/schema';
import { IdSchema } from '../people/types';
import { DURATION_PATTERN } from '../policy/time';
import { ConstraintsSchema } from '../objectives/types';

/** Signal ids are chosen by the sending system; they appear in journal subjects (`signal:<id>`). */
export const SIGNAL_ID = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/;
export const SIGNAL_TYPE = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;

/** POST /v1/signals body. */
export const SignalBodySchema = z
  .object({
    /** The sender's id for the event: the same id again is a repeat, answered with the first result. */
    id: z.string().regex(SIGNAL_ID, 'must be 1-128 letters, digits, ".", "_", ":", "@", "/" or "-", starting with a letter or digit'),
    /** What happened, as a dotted name: machine.failure_predicted, crm.churn_risk, … */
    type: z.string().regex(SIGNAL_TYPE, 'must be a dotted lower-case name such as machine.failure_predicted'),
    /** Which system sent it, e.g. plant-digital-twin. */
    source: z
      .string()
      .trim()
      .min(1)
      .max(200)
      .refine((t) => !/[\u0000-\u001f\u007f]/.test(t), 'must not contain control characters'),
    /** When it happened at the source (RFC 3339). */
    occurredAt: z.iso.datetime({ offset: true, error: 'must be an RFC 3339 timestamp such as 2026-11-12T06:00:00Z' }).optional(),
    payload: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();
export type SignalBody = z.input<typeof SignalBodySchema>;

const Id = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, { error: 'rule ids are lower-case letters, digits and "-", e.g. failure-prediction-maintenance' });

/** A standing rule (`policies/signals/*.yaml`): a signal type → an objective for a twin. */
export const SignalRuleSchema = z
  .object({
    kind: z.literal('SignalRule', { error: (iss) => (iss.input === undefined ? 'required' : 'kind must be SignalRule') }),
    id: Id,
    description: z.string().max(2000).optional(),
    /** The signal type this rule answers. */
    signal: z.string().regex(SIGNAL_TYPE, { error: 'a signal type is a dotted lower-case name such as machine.failure_predicted' }),
    /** The payload this rule expects (JSON Schema subset, type object): a signal that does not fit is refused with 400. */
    payload: InputSchemaSchema.optional(),
    /** Only when these hold (MongoDB-style conditions over payload.*, signal.*), e.g. { payload.probability: { $gte: 0.6 } }. */
    when: z.record(z.string(), z.unknown()).optional(),
    /** The twin that gets the objective. */
    twin: IdSchema,
    playbook: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, { error: 'name a playbook id, e.g. maintenance-from-prediction' }),
    /** The objective's text; templated ({{payload.asset}}, {{signal.id}}). */
    text: z.string().min(1).max(4000),
    /** The playbook's params; values templated from the payload. */
    params: z.record(z.string(), z.unknown()).default({}),
    constraints: z
      .object({
        stepBudget: ConstraintsSchema.shape.stepBudget,
        spendCeiling: ConstraintsSchema.shape.spendCeiling,
        /** The objective's deadline, counted from when the signal arrives (ISO 8601 duration, e.g. PT48H). */
        deadlineAfter: z.string().regex(DURATION_PATTERN, { error: 'an ISO 8601 duration such as PT48H or P2D' }).optional(),
      })
      .strict()
      .default({}),
  })
  .strict();
export type SignalRuleDoc = z.output<typeof SignalRuleSchema>;

export interface SignalRule {
  doc: SignalRuleDoc;
  file: string;
  line: number;
  /** `doc.payload` compiled once, when the rule loaded. */
  payloadSchema?: z.ZodType;
}

/** What became of a signal; stored, and returned again for a repeat of its id. */
export interface SignalResult {
  id: string;
  type: string;
  source: string;
  receivedAt: string;
  /** Objectives its rules started. */
  objectives: { id: string; twin: string; playbook: string; rule: string; status: string }[];
  /** Rules for its type whose conditions did not hold. */
  skipped: { rule: string; reason: string }[];
  /** Set when no standing rule answers this signal type. */
  note: string | null;
}

export const SignalResultSchema = z
  .object({
    id: z.string(),
    type: z.string(),
    source: z.string(),
    receivedAt: z.iso.datetime(),
    objectives: z.array(z.object({ id: z.uuid(), twin: z.string(), playbook: z.string(), rule: z.string(), status: z.string() })),
    skipped: z.array(z.object({ rule: z.string(), reason: z.string() })),
    note: z.string().nullable(),
  })
  .meta({ id: 'SignalResult' });
