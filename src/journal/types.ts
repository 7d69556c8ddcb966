import { z } from 'zod';

/**
 * Every kind of entry Regent writes: a closed union, extended as capabilities arrive.
 * Verification accepts any kind (other implementations may write others); appends do not.
 */
export const JOURNAL_KINDS = [
  'audit.note',
  'system.started',
  'system.stopped',
  'journal.exported',
  'policy.loaded',
  'policy.refused',
  'policy.rolled_back',
  'policy.decided',
  'user.created',
  'user.key_created',
  'user.key_revoked',
  'twin.created',
  'twin.mode_changed',
  'kill_switch.changed',
  'auth.refused',
  'proposal.refused',
  'proposal.transitioned',
  'proposal.reviewed',
  'proposal.escalated',
  'proposal.audited',
  'proposal.reconciled',
  'objective.created',
  'objective.refused',
  'objective.transitioned',
  'objective.step',
  'agent.refused',
  'signal.received',
  'signal.refused',
] as const;
export type JournalKind = (typeof JOURNAL_KINDS)[number];

export const ACTOR_PATTERN = /^(system|[a-z]+:[A-Za-z0-9][A-Za-z0-9._@-]{0,127})$/;
export const SUBJECT_PATTERN = /^[a-z]+:[A-Za-z0-9][A-Za-z0-9._@:/-]{0,199}$/;
export const POLICY_VERSION_PATTERN = /^sha256:[0-9a-f]{64}$/;

/** `user:dana`, `twin:cfo-twin`, `system`: who did it. */
export const ActorSchema = z.string().regex(ACTOR_PATTERN, 'must look like user:<id>, twin:<id> or system');

export const SubjectSchema = z.string().regex(SUBJECT_PATTERN, 'must look like <type>:<id>, e.g. proposal:p-1');

export const PolicyVersionSchema = z.string().regex(POLICY_VERSION_PATTERN, 'must be sha256:<64 hex>');

/** What a caller asks to append; seq, ts and hashes are the journal's to assign. */
export const AppendInputSchema = z
  .object({
    kind: z.enum(JOURNAL_KINDS),
    actor: ActorSchema,
    subject: SubjectSchema.nullable().default(null),
    data: z.record(z.string(), z.unknown()).default({}),
    policyVersion: PolicyVersionSchema.nullable().default(null),
  })
  .strict();

export type AppendInput = z.input<typeof AppendInputSchema>;

export interface Checkpoint {
  size: number;
  /** Hex Merkle root (RFC 6962) of the first `size` leaves. */
  root: string;
  /** The C2SP signed note. */
  note: string;
  createdAt: string;
}

export interface JournalHead {
  size: number;
  chain: string;
  root: string;
  lastCheckpoint: Checkpoint | null;
}

export interface JournalQuery {
  afterSeq?: number;
  limit?: number;
  kind?: string;
  actor?: string;
  subject?: string;
  from?: string;
  to?: string;
}
