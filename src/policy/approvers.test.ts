/**
 * Separation of duties as properties over generated approvals, approvers, owners and the
 * approver's own decisions (fast-check: a failure prints the seed and the shrunk case). Each
 * property also counts the cases it guards and expects some: none passes vacuously.
 */
import fc from 'fast-check';
import { approverEligibility, namedApprovers, BEYOND_OWN_AUTHORITY, type ApprovalAsk, type EligibilityInput } from './approvers';
import { decide, type PolicyBundle } from './engine';
import { formatLoadError, loadBundleFromSources } from './load';
import { OUTCOMES, REASON_CODES, type Decision } from './types';

const RUNS = 300;
const PEOPLE = ['ann', 'bob', 'cat', 'dan', 'eve'];
const ROLES = ['approver', 'sales-director', 'cfo'];

const person = fc.constantFrom(...PEOPLE).map((id) => `user:${id}`);
const role = fc.constantFrom(...ROLES).map((r) => `role:${r}`);
const namedOne = fc.oneof(person, role);

const approvalArb: fc.Arbitrary<ApprovalAsk> = fc.record({
  approvers: fc.uniqueArray(namedOne, { minLength: 1, maxLength: 4 }),
  quorum: fc.integer({ min: 1, max: 3 }),
  escalateTo: fc.uniqueArray(namedOne, { maxLength: 2 }),
  escalated: fc.boolean(),
  approvedBy: fc.uniqueArray(person, { maxLength: 2 }),
});

const ownDecision: fc.Arbitrary<Pick<Decision, 'outcome' | 'reasons'>> = fc.record({
  outcome: fc.constantFrom(...OUTCOMES),
  reasons: fc.array(
    fc.record({ code: fc.constantFrom(...REASON_CODES), message: fc.string({ minLength: 1, maxLength: 12 }), source: fc.constant('gen') }),
    {
      maxLength: 3,
    },
  ),
});

/** Mostly no authority of the approver's own, so that the other rules get their turn. */
const inputArb: fc.Arbitrary<EligibilityInput> = fc.record({
  approval: fc.option(approvalArb, { nil: null, freq: 10 }),
  approver: fc.record({ principal: person, roles: fc.subarray(ROLES) }),
  owner: person,
  own: fc.oneof({ arbitrary: fc.constant(null), weight: 3 }, { arbitrary: ownDecision, weight: 1 }),
  decision: fc.constantFrom('approve' as const, 'reject' as const),
});

const holdsNamedRole = (i: EligibilityInput) =>
  i.approval !== null && namedApprovers(i.approval).some((a) => a.startsWith('role:') && i.approver.roles.includes(a.slice(5)));

function check<T>(arb: fc.Arbitrary<T>, body: (v: T) => void): void {
  fc.assert(
    fc.property(arb, (v) => {
      body(v);
    }),
    { numRuns: RUNS },
  );
}

describe('who may approve a pending proposal', () => {
  it('never lets a twin approve, not even where the approval names it', () => {
    let personAllowed = 0;
    let twinNamed = 0;
    check(inputArb, (input) => {
      // The same case with the approver's principal a twin's, everywhere it appears.
      const me = input.approver.principal;
      const twin = `twin:${me.slice('user:'.length)}`;
      const swap = (a: string) => (a === me ? twin : a);
      const approval = input.approval && {
        ...input.approval,
        approvers: input.approval.approvers.map(swap),
        escalateTo: input.approval.escalateTo.map(swap),
        approvedBy: input.approval.approvedBy.map(swap),
      };
      const asTwin = { ...input, approver: { ...input.approver, principal: twin }, approval, owner: swap(input.owner) };
      const r = approverEligibility(asTwin);
      expect(r).toMatchObject({ eligible: false, refusal: 'not_a_person' });
      if (approverEligibility(input).eligible) {
        personAllowed++;
        if (approval && namedApprovers(approval).includes(twin)) twinNamed++;
      }
    });
    // The twin was refused where a person in its place would have been allowed, also where named.
    expect(personAllowed).toBeGreaterThan(0);
    expect(twinNamed).toBeGreaterThan(0);
  });

  it('counts distinct people toward the quorum: the same person approving twice counts once', () => {
    let repeats = 0;
    let reached = 0;
    let approvalsWouldHaveReached = 0;
    check(
      fc.tuple(fc.integer({ min: 1, max: 4 }), fc.array(fc.constantFrom(...PEOPLE), { minLength: 1, maxLength: 8 })),
      ([quorum, ids]) => {
        let approval: ApprovalAsk = { approvers: ['role:approver'], quorum, escalateTo: [], escalated: false, approvedBy: [] };
        const people = new Set<string>();
        for (const id of ids) {
          const me = `user:${id}`;
          const asked = (decision: 'approve' | 'reject') =>
            approverEligibility({ approval, approver: { principal: me, roles: ['approver'] }, owner: 'user:owner', own: null, decision });
          const r = asked('approve');
          if (people.has(me)) {
            repeats++;
            expect(r).toMatchObject({ eligible: false, refusal: 'already_approved' });
            // A rejection by someone who approved is still theirs to make, and adds nothing.
            expect(asked('reject')).toEqual({ eligible: true, approvedBy: approval.approvedBy, reached: false });
            continue;
          }
          people.add(me);
          expect(r).toEqual({ eligible: true, approvedBy: [...people], reached: people.size >= quorum });
          if (r.eligible) {
            if (r.reached) reached++;
            approval = { ...approval, approvedBy: r.approvedBy };
          }
        }
        expect(new Set(approval.approvedBy).size).toBe(approval.approvedBy.length);
        if (ids.length >= quorum && people.size < quorum) approvalsWouldHaveReached++;
      },
    );
    expect(repeats).toBeGreaterThan(0);
    expect(reached).toBeGreaterThan(0);
    // Runs where counting approvals instead of people would have reached the quorum.
    expect(approvalsWouldHaveReached).toBeGreaterThan(0);
  });

  it("lets the twin's owner approve only where the approval names them as a person", () => {
    let ownerAllowed = 0;
    let ownerByRoleRefused = 0;
    let othersAllowed = 0;
    check(inputArb, (input) => {
      const asOwner = { ...input, owner: input.approver.principal };
      const r = approverEligibility(asOwner);
      const namedThem = asOwner.approval !== null && namedApprovers(asOwner.approval).includes(asOwner.owner);
      if (r.eligible) {
        expect(namedThem).toBe(true);
        ownerAllowed++;
      }
      if (asOwner.approval && !namedThem && holdsNamedRole(asOwner)) {
        // Named only through a role they hold: refused because they own the twin.
        expect(r).toMatchObject({ eligible: false, refusal: 'owner_not_named' });
        ownerByRoleRefused++;
        if (approverEligibility({ ...asOwner, owner: 'user:someone-else' }).eligible) othersAllowed++;
      }
    });
    expect(ownerAllowed).toBeGreaterThan(0);
    expect(ownerByRoleRefused).toBeGreaterThan(0);
    // Refused where anyone else holding the same role would have been allowed.
    expect(othersAllowed).toBeGreaterThan(0);
  });

  it('lets a person decide by name or by a role they hold, and by nothing else', () => {
    let byName = 0;
    let byRole = 0;
    let unnamed = 0;
    check(inputArb, (input) => {
      // A rejection, by someone who does not own the twin and has no authority of their own.
      const i = { ...input, owner: 'user:owner', own: null, decision: 'reject' as const };
      const r = approverEligibility(i);
      if (!i.approval) {
        expect(r).toMatchObject({ eligible: false, refusal: 'not_waiting' });
        return;
      }
      const named = namedApprovers(i.approval).includes(i.approver.principal);
      const role = holdsNamedRole(i);
      expect(r.eligible).toBe(named || role);
      if (!r.eligible) expect(r.refusal).toBe('not_named');
      if (named) byName++;
      else if (role) byRole++;
      else unnamed++;
    });
    expect(byName).toBeGreaterThan(0);
    expect(byRole).toBeGreaterThan(0);
    expect(unnamed).toBeGreaterThan(0);
  });

  it('asks escalation targets only once the approval is escalated', () => {
    let before = 0;
    let after = 0;
    check(inputArb, (input) => {
      if (!input.approval) return;
      const target = input.approver.principal;
      // The approver is named only as an escalation target, holds no named role, owns nothing.
      const approval = { ...input.approval, approvers: input.approval.approvers.filter((a) => a !== target), escalateTo: [target] };
      if (approval.approvers.length === 0) return;
      const i = {
        ...input,
        approver: { principal: target, roles: [] },
        approval,
        owner: 'user:owner',
        own: null,
        decision: 'reject' as const,
      };
      const r = approverEligibility(i);
      expect(r.eligible).toBe(approval.escalated);
      if (approval.escalated) after++;
      else before++;
    });
    expect(before).toBeGreaterThan(0);
    expect(after).toBeGreaterThan(0);
  });

  it('refuses an approver whose own decision denies the action or puts it beyond their limits', () => {
    let refusedOwn = 0;
    let withinOwn = 0;
    check(fc.tuple(inputArb, ownDecision), ([input, own]) => {
      const without = approverEligibility({ ...input, own: null });
      const r = approverEligibility({ ...input, own });
      const beyond = own.outcome === 'deny' || own.reasons.some((x) => BEYOND_OWN_AUTHORITY.includes(x.code));
      if (!without.eligible && without.refusal !== 'already_approved') {
        // An earlier rule already refused: their own authority changes nothing.
        expect(r).toEqual(without);
      } else if (beyond) {
        expect(r).toMatchObject({ eligible: false, refusal: 'beyond_own_authority' });
        refusedOwn++;
      } else {
        expect(r).toEqual(without);
        withinOwn++;
      }
    });
    expect(refusedOwn).toBeGreaterThan(0);
    expect(withinOwn).toBeGreaterThan(0);
  });
});

describe('an approver above their own limit (decided by the engine)', () => {
  /** An authority delegating discounts to sam, up to `limit` EUR per action. */
  const bundles = new Map<number, PolicyBundle>();
  function bundleFor(limitMinor: number): PolicyBundle {
    let b = bundles.get(limitMinor);
    if (b) return b;
    const text = `kind: Authority
id: sam-discounts
version: 1
delegator: user:vic
delegate: user:sam
parent: null
valid: { from: 2026-01-01T00:00:00Z, until: 2030-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: crm.discount.update
    outcome: execute
    limits: { perAction: "${eur(limitMinor)}" }
`;
    const r = loadBundleFromSources([{ file: 'policies/authorities/sam-discounts.yaml', text }]);
    if (!r.ok) throw new Error(r.errors.map(formatLoadError).join('\n'));
    b = r.bundle;
    bundles.set(limitMinor, b);
    return b;
  }
  const eur = (minor: number) => `${Math.floor(minor / 100)}.${String(minor % 100).padStart(2, '0')}`;

  it('is not eligible; at or within it they are', () => {
    let over = 0;
    let within = 0;
    let atLimit = 0;
    let justOver = 0;
    const cases = fc
      .integer({ min: 1, max: 1_000_000 })
      .chain((limit) =>
        fc.tuple(
          fc.constant(limit),
          fc.oneof(fc.integer({ min: 1, max: 2_000_000 }), fc.integer({ min: Math.max(1, limit - 2), max: limit + 2 })),
          fc.constantFrom('approve' as const, 'reject' as const),
        ),
      );
    check(cases, ([limit, amount, decision]) => {
      const own = decide(bundleFor(limit), {
        principal: 'user:sam',
        action: 'crm.discount.update',
        resource: { amount: eur(amount), currency: 'EUR' },
        at: '2026-06-01T12:00:00Z',
      });
      const r = approverEligibility({
        approval: { approvers: ['role:sales-director'], quorum: 1, escalateTo: [], escalated: false, approvedBy: [] },
        approver: { principal: 'user:sam', roles: ['sales-director'] },
        owner: 'user:rita',
        own,
        decision,
      });
      if (amount > limit) {
        expect(r).toMatchObject({ eligible: false, refusal: 'beyond_own_authority', reason: expect.stringMatching(/exceeds perAction/) });
        over++;
        if (amount === limit + 1) justOver++;
      } else {
        expect(r.eligible).toBe(true);
        within++;
        if (amount === limit) atLimit++;
      }
    });
    expect(over).toBeGreaterThan(0);
    expect(within).toBeGreaterThan(0);
    expect(atLimit).toBeGreaterThan(0);
    expect(justOver).toBeGreaterThan(0);
  });
});
