import { abilityFor, can, canSome, CAPABILITIES, ROLES, type Actor, type Capability, type Role } from './roles';

/**
 * The whole matrix, written out: every role × every capability, for the actor's own twins and
 * for someone else's. A change to a role shows up here as a changed line.
 */
type Expect = 'yes' | 'own' | 'no';
const MATRIX: Record<Capability, Record<Role, Expect>> = {
  'twin.create': { executive: 'own', approver: 'no', auditor: 'no', admin: 'yes' },
  'twin.read': { executive: 'own', approver: 'no', auditor: 'no', admin: 'yes' },
  'twin.update': { executive: 'own', approver: 'no', auditor: 'no', admin: 'yes' },
  'twin.delete': { executive: 'no', approver: 'no', auditor: 'no', admin: 'yes' },
  'twin.setMode': { executive: 'own', approver: 'no', auditor: 'no', admin: 'yes' },
  'objective.assign': { executive: 'own', approver: 'no', auditor: 'no', admin: 'no' },
  'killSwitch.engageTwin': { executive: 'own', approver: 'no', auditor: 'no', admin: 'yes' },
  'killSwitch.engageGlobal': { executive: 'no', approver: 'no', auditor: 'no', admin: 'yes' },
  'killSwitch.read': { executive: 'yes', approver: 'yes', auditor: 'yes', admin: 'yes' },
  'proposal.read': { executive: 'own', approver: 'yes', auditor: 'no', admin: 'no' },
  'proposal.decide': { executive: 'own', approver: 'yes', auditor: 'no', admin: 'no' },
  'proposal.reconcile': { executive: 'own', approver: 'no', auditor: 'no', admin: 'yes' },
  'journal.read': { executive: 'no', approver: 'no', auditor: 'yes', admin: 'yes' },
  'journal.export': { executive: 'no', approver: 'no', auditor: 'yes', admin: 'no' },
  'journal.verify': { executive: 'no', approver: 'no', auditor: 'yes', admin: 'yes' },
  'journal.audit': { executive: 'no', approver: 'no', auditor: 'yes', admin: 'no' },
  'user.manage': { executive: 'no', approver: 'no', auditor: 'no', admin: 'yes' },
  'connector.manage': { executive: 'no', approver: 'no', auditor: 'no', admin: 'yes' },
  'policy.manage': { executive: 'no', approver: 'no', auditor: 'no', admin: 'yes' },
  'signal.submit': { executive: 'no', approver: 'no', auditor: 'no', admin: 'yes' },
  'knowledge.ingest': { executive: 'own', approver: 'no', auditor: 'no', admin: 'yes' },
  'knowledge.search': { executive: 'yes', approver: 'no', auditor: 'yes', admin: 'yes' },
  'knowledge.delete': { executive: 'no', approver: 'no', auditor: 'no', admin: 'yes' },
};

const dana = (role: Role): Actor => ({ id: 'dana', roles: [role] });

describe('people are authorized by role', () => {
  it('covers every capability in the matrix', () => {
    expect(Object.keys(MATRIX).sort()).toEqual(Object.keys(CAPABILITIES).sort());
  });

  const rows = ROLES.flatMap((role) =>
    (Object.keys(CAPABILITIES) as Capability[]).map((capability) => [role, capability, MATRIX[capability][role]] as const),
  );

  it.each(rows)('a user with role %s and capability %s: %s', (role, capability, expected) => {
    const own = can(dana(role), capability, { owner: 'user:dana' });
    const others = can(dana(role), capability, { owner: 'user:vic' });
    expect(own).toBe(expected !== 'no');
    expect(others).toBe(expected === 'yes');
  });

  it('denies everything to a user without roles', () => {
    for (const capability of Object.keys(CAPABILITIES) as Capability[])
      expect(can({ id: 'x', roles: [] }, capability, { owner: 'user:x' })).toBe(false);
  });

  it('combines the capabilities of several roles', () => {
    const both: Actor = { id: 'dana', roles: ['executive', 'approver'] };
    expect(can(both, 'proposal.decide')).toBe(true);
    expect(can(both, 'twin.setMode', { owner: 'user:dana' })).toBe(true);
    expect(can(both, 'twin.setMode', { owner: 'user:vic' })).toBe(false);
  });

  it('does not let an executive engage the global kill switch by naming themselves owner', () => {
    expect(can(dana('executive'), 'killSwitch.engageGlobal', { owner: 'user:dana' })).toBe(false);
  });

  it('exposes the CASL ability for checks on loaded records', () => {
    const ability = abilityFor(dana('executive'));
    expect(ability.can('setMode', 'Twin')).toBe(true); // some twin, i.e. their own
    expect(ability.can('delete', 'Twin')).toBe(false);
  });

  it('lets list routes ask whether a capability holds for some resource, and never widens the global kill switch', () => {
    expect(canSome(dana('executive'), 'twin.read')).toBe(true);
    expect(canSome(dana('approver'), 'twin.read')).toBe(false);
    expect(canSome(dana('executive'), 'killSwitch.engageGlobal')).toBe(false);
    expect(canSome(dana('admin'), 'killSwitch.engageGlobal')).toBe(true);
  });
});
