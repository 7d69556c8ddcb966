import { z } from 'zod';
import { ROLES, type Role } from '../policy/roles';

/** Who is calling: a person with roles, or a twin acting through its own key. */
export type Principal =
  | { kind: 'user'; id: string; ref: `user:${string}`; roles: readonly string[]; appRoles: readonly Role[]; keyId: string }
  | { kind: 'twin'; id: string; ref: `twin:${string}`; owner: string; keyId: string };

export interface User {
  id: string;
  name: string;
  /** Regent roles (executive, approver, auditor, admin) and business roles (cfo, …) that approval tiers name as `role:<name>`. */
  roles: string[];
  createdAt: string;
  disabledAt: string | null;
}

/** A key as listed: never its secret or hash. */
export interface ApiKeyInfo {
  id: string;
  /** `user:<id>` or `twin:<id>` */
  principal: string;
  label: string | null;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/** A key just made: the only time `apiKey` is ever available. */
export interface IssuedKey {
  keyId: string;
  apiKey: string;
}

/**
 * Free text that storage and the journal both accept: no control characters (PostgreSQL refuses
 * NUL) and well-formed Unicode (the journal refuses lone surrogates), checked before any write.
 */
export const TextSchema = (max: number) =>
  z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(max)
    .refine((t) => !/[\u0000-\u001f\u007f]/.test(t), 'must not contain control characters')
    .refine((t) => t.isWellFormed(), 'must be well-formed Unicode');

/** Ids of users and twins: they appear in actors (`user:<id>`) and in URLs. */
export const IdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._@-]{0,63}$/, 'must be 1-64 lowercase letters, digits, ".", "_", "@" or "-", starting with a letter or digit');

const RoleNameSchema = z
  .string()
  // Approval tiers write `role:cfo`; people often copy that form, so it is accepted here too.
  .transform((r) => r.trim().replace(/^role:/, ''))
  .pipe(z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, 'a role is lowercase letters, digits and "-", e.g. approver or sales-director'));

export const NewUserSchema = z
  .object({
    id: IdSchema.optional(),
    name: TextSchema(200),
    roles: z
      .array(RoleNameSchema)
      .min(1, `needs at least one of ${ROLES.join(', ')}`)
      .max(32)
      .transform((roles) => [...new Set(roles)])
      .refine((roles) => roles.some((r) => (ROLES as readonly string[]).includes(r)), `needs at least one of ${ROLES.join(', ')}`),
  })
  .strict();

export type NewUser = z.input<typeof NewUserSchema>;

/** Whether `id` could name a user or twin at all; anything else is unknown without asking storage. */
export const isId = (id: string): boolean => IdSchema.safeParse(id).success;

/** The Regent roles among a user's roles (the rest are business roles). */
export function appRoles(roles: readonly string[]): Role[] {
  return ROLES.filter((r) => roles.includes(r));
}

/** The id a name gets when none is given: "Dana Müller" → "dana-muller". */
export function slugOf(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64)
    .replace(/-+$/, '');
}
