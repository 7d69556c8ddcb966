/**
 * Who may do what in Regent itself (people, not twins), with CASL. Roles are fixed in code so
 * that a permission change is a reviewed code change, and every role × capability pair is tested.
 * Deny by default: a capability not granted below is refused.
 */
import { AbilityBuilder, createMongoAbility, subject, type MongoAbility } from '@casl/ability';

export const ROLES = ['executive', 'approver', 'auditor', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export type AppAction =
  'create' | 'read' | 'update' | 'delete' | 'setMode' | 'assign' | 'decide' | 'reconcile' | 'export' | 'verify' | 'audit' | 'engage' | 'submit';
export type AppSubject = 'Twin' | 'Objective' | 'Proposal' | 'Journal' | 'User' | 'Connector' | 'Policy' | 'KillSwitch' | 'Signal' | 'Knowledge';
/** Untyped at the CASL level (string subjects with conditions); callers go through `can` and the
 *  closed Capability union below, which is where the type safety lives. */
export type AppAbility = MongoAbility;

export interface Actor {
  /** user id, e.g. "dana"; twins' owners are written `user:<id>` */
  id: string;
  roles: readonly Role[];
}

/**
 * Named capabilities: what the HTTP layer checks. `own` ones carry the owning user
 * (`owner: "user:<id>"`) and hold only for the actor's own twins.
 */
export const CAPABILITIES = {
  'twin.create': { action: 'create', subject: 'Twin' },
  'twin.read': { action: 'read', subject: 'Twin' },
  'twin.update': { action: 'update', subject: 'Twin' },
  'twin.delete': { action: 'delete', subject: 'Twin' },
  'twin.setMode': { action: 'setMode', subject: 'Twin' },
  'objective.assign': { action: 'assign', subject: 'Objective' },
  'killSwitch.engageTwin': { action: 'engage', subject: 'KillSwitch' },
  'killSwitch.engageGlobal': { action: 'engage', subject: 'KillSwitch' },
  'killSwitch.read': { action: 'read', subject: 'KillSwitch' },
  'proposal.read': { action: 'read', subject: 'Proposal' },
  'proposal.decide': { action: 'decide', subject: 'Proposal' },
  'proposal.reconcile': { action: 'reconcile', subject: 'Proposal' },
  'journal.read': { action: 'read', subject: 'Journal' },
  'journal.export': { action: 'export', subject: 'Journal' },
  'journal.verify': { action: 'verify', subject: 'Journal' },
  'journal.audit': { action: 'audit', subject: 'Journal' },
  'user.manage': { action: 'create', subject: 'User' },
  'connector.manage': { action: 'create', subject: 'Connector' },
  'policy.manage': { action: 'update', subject: 'Policy' },
  'signal.submit': { action: 'submit', subject: 'Signal' },
  'knowledge.ingest': { action: 'create', subject: 'Knowledge' },
  'knowledge.search': { action: 'read', subject: 'Knowledge' },
  'knowledge.delete': { action: 'delete', subject: 'Knowledge' },
} as const satisfies Record<string, { action: AppAction; subject: AppSubject }>;

export type Capability = keyof typeof CAPABILITIES;

export function abilityFor(actor: Actor): AppAbility {
  const { can, build } = new AbilityBuilder<AppAbility>(createMongoAbility);
  const owner = `user:${actor.id}`;
  // Whether execution is halted is no secret from anyone who works with Regent.
  if (actor.roles.length) can('read', 'KillSwitch');
  for (const role of actor.roles) {
    switch (role) {
      case 'executive':
        // An executive governs their own twins and nobody else's.
        can(['create', 'read', 'update', 'setMode'], 'Twin', { owner });
        can('assign', 'Objective', { owner });
        can('engage', 'KillSwitch', { scope: 'twin', owner });
        can('read', 'Proposal', { owner });
        // Their own twins' requests, where an approval tier names them (by id, or by default as
        // the delegator): whether they may is decided by policy when they decide (eligibility).
        can('decide', 'Proposal', { owner });
        // Settling an action in doubt records what happened at a business system; the owner knows it.
        can('reconcile', 'Proposal', { owner });
        // Documents into the knowledge collections they own (or a new one, which becomes theirs);
        // searching is narrowed by class and collection in src/knowledge.
        can('create', 'Knowledge', { owner });
        can('read', 'Knowledge');
        break;
      case 'approver':
        can(['read', 'decide'], 'Proposal');
        break;
      case 'auditor':
        can(['read', 'export', 'verify', 'audit'], 'Journal');
        can('read', 'Knowledge');
        break;
      case 'admin':
        // Admins run the installation but do not approve business actions: separation of duties.
        can(['create', 'read', 'update', 'delete', 'setMode'], ['User', 'Twin', 'Connector', 'Policy']);
        can('engage', 'KillSwitch');
        // Settling an action in doubt records a fact found at the business system (no approval).
        can('reconcile', 'Proposal');
        // Reading and verifying the journal changes nothing; exporting and auditing stay with auditors.
        can(['read', 'verify'], 'Journal');
        // Other systems' events (POST /v1/signals) come in on an integration key the admin holds;
        // what a signal may start is fixed by the standing rules in policies/signals, not by the caller.
        can('submit', 'Signal');
        // The corpus: adds to any collection, searches (up to confidential unless granted), deletes early.
        can(['create', 'read', 'delete'], 'Knowledge');
        break;
    }
  }
  return build();
}

/**
 * Whether `actor` has `capability`. For owned things pass `owner` (e.g. the twin's owner
 * `user:dana`); for the kill switch pass `scope: 'twin'` with the twin's owner, or `scope: 'global'`.
 */
export function can(actor: Actor, capability: Capability, attributes: Record<string, unknown> = {}): boolean {
  const { action, subject: type } = CAPABILITIES[capability];
  const attrs =
    capability === 'killSwitch.engageGlobal'
      ? { ...attributes, scope: 'global' }
      : capability === 'killSwitch.engageTwin'
        ? { scope: 'twin', ...attributes }
        : attributes;
  return abilityFor(actor).can(action, subject(type, { ...attrs }));
}

/**
 * Whether `actor` has `capability` for at least one resource (their own twins, say): the check
 * for list routes, whose results are then filtered with `can` per item.
 */
export function canSome(actor: Actor, capability: Capability): boolean {
  const { action, subject: type } = CAPABILITIES[capability];
  if (capability === 'killSwitch.engageGlobal') return can(actor, capability);
  return abilityFor(actor).can(action, type);
}
