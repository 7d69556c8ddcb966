import type { Role } from '../policy/roles';

/** Who is calling: a person with roles, or a twin acting through its own key. */
export type Principal =
  | { kind: 'user'; id: string; ref: `user:${string}`; roles: readonly string[]; appRoles: readonly Role[]; keyId: string }
  | { kind: 'twin'; id: string; ref: `twin:${string}`; owner: string; keyId: string };
