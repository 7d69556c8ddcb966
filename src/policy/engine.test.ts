import { subject } from '@casl/ability';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decide, type PolicyBundle } from './engine';
import { loadPolicies } from './load';
import { authority, bundleOf, request } from './testing/fixtures';
import type { Decision, DecisionRequest } from './types';

const POLICIES = join(__dirname, '..', '..', 'policies');
const codes = (d: Decision) => d.reasons.map((r) => r.code);

const LIMITED = `grants:
  - action: crm.discount.update
    outcome: execute
    limits:
      perAction: "10000"
      perPeriod: { amount: "50000", period: month }
    approval:
      tiers:
        - { above: "0", approvers: [role:sales-director], quorum: 1 }
        - { above: "25000", approvers: [role:cfo], quorum: 2 }
      expiresAfter: PT48H
`;

function shipped(): PolicyBundle {
  const r = loadPolicies(POLICIES);
  if (!r.ok) throw new Error('shipped policies do not load');
  return r.bundle;
}

describe('the decision', () => {
  it('decides the DESIGN example and explains it in the authority’s own terms with file:line', () => {
    const bundle = shipped();
    const input = JSON.parse(readFileSync(join(POLICIES, 'examples', 'discount-request.json'), 'utf8')) as DecisionRequest;
    const d = decide(bundle, input);
    const text = readFileSync(join(POLICIES, 'authorities', 'vp-sales-twin.yaml'), 'utf8').split('\n');
    const perActionLine = text.findIndex((l) => l.includes('perAction: "10000"')) + 1;
    expect(d).toMatchObject({
      outcome: 'approve',
      policyVersion: bundle.version,
      authority: 'vp-sales-twin',
      approval: { approvers: ['role:sales-director'], quorum: 1, expiresAt: '2026-11-12T09:00:00.000Z', escalateTo: ['user:vic'] },
    });
    expect(d.reasons).toContainEqual({
      code: 'over_per_action',
      message: 'amount 12,000.00 EUR exceeds perAction 10,000.00 EUR in vp-sales-twin v3',
      source: `policies/authorities/vp-sales-twin.yaml:${perActionLine}`,
      rule: 'vp-sales-twin/grants/0/limits/perAction',
    });
    expect(d.matched.map((m) => m.rule)).toEqual(['vp-sales-twin/grants/0']);
    // Decision JSON fields fixed by DESIGN.md
    expect(Object.keys(d)).toEqual(expect.arrayContaining(['outcome', 'reasons', 'policyVersion', 'authority', 'approval']));
  });

  it('denies by default when nothing grants the action', () => {
    const d = decide(bundleOf(authority()), request());
    expect(d).toMatchObject({ outcome: 'deny', approval: null, reservations: [] });
    expect(codes(d)).toEqual(['no_grant']);
  });

  it('denies when no grant’s conditions match, pointing at the conditions', () => {
    const b = bundleOf(authority({}, `grants:\n  - action: crm.discount.update\n    outcome: execute\n    when: { counterparty: globex }\n`));
    const d = decide(b, request());
    expect(codes(d)).toEqual(['no_grant']);
    expect(d.reasons[0]!.source).toBe('policies/authorities/gen.yaml:14');
  });

  it('lets a forbid win over any grant', () => {
    const b = bundleOf(authority({}, `grants:\n  - { action: crm.discount.update, outcome: execute }\nforbid:\n  - { action: crm.discount.update, when: { counterparty: acme }, reason: Board pricing }\n`));
    const d = decide(b, request());
    expect(d.outcome).toBe('deny');
    expect(d.reasons).toEqual([{ code: 'forbidden', message: 'crm.discount.update is forbidden by gen v1: Board pricing', source: 'policies/authorities/gen.yaml:14', rule: 'gen/forbid/0' }]);
    expect(decide(b, request({ resource: { counterparty: 'globex' } })).outcome).toBe('execute');
  });

  it('compiles to a CASL ability that by itself also lets forbids win', () => {
    const b = bundleOf(authority({}, `grants:\n  - { action: crm.discount.update, outcome: execute }\nforbid:\n  - { action: crm.discount.update, when: { counterparty: megacorp }, reason: Board }\n`));
    const ability = b.authorities.get('gen')!.ability;
    expect(ability.can('crm.discount.update', subject('Action', { counterparty: 'acme' }))).toBe(true);
    expect(ability.can('crm.discount.update', subject('Action', { counterparty: 'megacorp' }))).toBe(false);
    expect(ability.relevantRuleFor('crm.discount.update', subject('Action', { counterparty: 'megacorp' }))?.reason).toBe('Board');
  });

  it('does not treat an action named "manage" as CASL’s wildcard', () => {
    const b = bundleOf(authority({}, `grants:\n  - { action: manage, outcome: execute }\n`));
    expect(decide(b, request({ action: 'payments.transfer' })).outcome).toBe('deny');
    expect(decide(b, request({ action: 'manage' })).outcome).toBe('execute');
  });

  it('never throws on malformed requests: it denies with bad_request', () => {
    const b = bundleOf(authority());
    for (const bad of [null, {}, { ...request(), resource: [] }, { ...request(), at: 1 }, { ...request(), twinMode: 'turbo' }, { ...request(), spent: 'x' }]) {
      const d = decide(b, bad as unknown as DecisionRequest);
      expect(codes(d)).toEqual(['bad_request']);
    }
    expect(codes(decide(b, request({ resource: { currency: 'EURO' } })))).toEqual(['bad_request']);
  });

  it('denies a principal no authority delegates to', () => {
    const d = decide(bundleOf(authority()), request({ principal: 'twin:nobody' }));
    expect(d).toMatchObject({ outcome: 'deny', authority: null });
    expect(codes(d)).toEqual(['no_authority']);
  });
});

describe('limits', () => {
  const b = bundleOf(authority({}, LIMITED));
  const at = (amount: string, spent?: string) => decide(b, request({ resource: { amount }, spent: spent === undefined ? undefined : { month: spent } }));

  it('execute exactly at the perAction limit and need approval one minor unit over', () => {
    expect(at('10000.00').outcome).toBe('execute');
    const over = at('10000.01');
    expect(over.outcome).toBe('approve');
    expect(codes(over)).toEqual(['granted', 'over_per_action', 'approval_tier']);
  });

  it('execute when spent plus amount is exactly the period limit and need approval one cent over', () => {
    expect(at('10000', '40000').outcome).toBe('execute');
    const over = at('10000', '40000.01');
    expect(over.outcome).toBe('approve');
    expect(over.reasons.find((r) => r.code === 'over_period')!.message).toBe(
      'amount 10,000.00 EUR with 40,000.01 EUR already spent in month:2026-11 exceeds perPeriod 50,000.00 EUR per month in gen v1',
    );
  });

  it('count nothing spent when spent is not given', () => {
    expect(at('10000').outcome).toBe('execute');
  });

  it('are exact in currencies without minor units and with three decimals', () => {
    const yen = bundleOf(authority({ currency: 'JPY' }, `grants:\n  - { action: crm.discount.update, outcome: execute, limits: { perAction: "1000000" } }\n`));
    expect(decide(yen, request({ resource: { amount: '1000000' } })).outcome).toBe('execute');
    expect(decide(yen, request({ resource: { amount: '1000001' } })).outcome).toBe('approve');
    expect(codes(decide(yen, request({ resource: { amount: '1000000.5' } })))).toEqual(['bad_amount']);
    const dinar = bundleOf(authority({ currency: 'BHD' }, `grants:\n  - { action: crm.discount.update, outcome: execute, limits: { perAction: "1.5" } }\n`));
    expect(decide(dinar, request({ resource: { amount: '1.500' } })).outcome).toBe('execute');
    expect(decide(dinar, request({ resource: { amount: '1.501' } })).outcome).toBe('approve');
  });

  it('need an amount to be checked at all', () => {
    const d = decide(b, request({ resource: { counterparty: 'acme' } }));
    expect(d.outcome).toBe('deny');
    expect(codes(d)).toEqual(['bad_amount']);
    const unlimited = bundleOf(authority({}, `grants:\n  - { action: crm.note.create, outcome: execute }\n`));
    expect(decide(unlimited, request({ action: 'crm.note.create', resource: {} })).outcome).toBe('execute');
  });

  it('refuse a malformed running total', () => {
    expect(codes(at('10', 'lots'))).toEqual(['bad_request']);
  });

  it('refuse an amount in another currency rather than convert it', () => {
    const d = decide(b, request({ resource: { amount: '10', currency: 'USD' } }));
    expect(d.outcome).toBe('deny');
    expect(d.reasons[0]).toMatchObject({ code: 'currency_mismatch', message: 'amount is in USD but the grant for crm.discount.update in gen v1 is in EUR; amounts are never converted' });
    expect(decide(b, request({ resource: { amount: '10', currency: 'EUR' } })).outcome).toBe('execute');
  });

  it('use a grant’s own currency when it has one', () => {
    const mixed = bundleOf(authority({}, `grants:\n  - { action: crm.discount.update, outcome: execute, currency: USD, limits: { perAction: "100" } }\n`));
    expect(decide(mixed, request({ resource: { amount: '100.00', currency: 'USD' } })).outcome).toBe('execute');
    expect(codes(decide(mixed, request({ resource: { amount: '100.00' } })))).toEqual(['currency_mismatch']);
  });

  it('ask for reservations of every period the authority keeps totals for', () => {
    const d = at('100', '10');
    expect(d.reservations).toEqual([
      {
        authority: 'gen',
        delegator: 'user:gen-owner',
        period: 'month',
        key: 'month:2026-11',
        tz: 'UTC',
        start: '2026-11-01T00:00:00.000Z',
        end: '2026-12-01T00:00:00.000Z',
        currency: 'EUR',
        amount: '100.00',
        limit: '50000.00',
      },
    ]);
    expect(decide(b, request({ resource: { amount: '100' }, twinMode: 'propose' })).reservations).toEqual([]);
  });
});

describe('approval tiers', () => {
  const b = bundleOf(authority({}, LIMITED));
  const approval = (amount: string) => decide(b, request({ resource: { amount } })).approval;

  it('take the tier with the highest `above` the amount exceeds', () => {
    expect(approval('25000.00')).toMatchObject({ approvers: ['role:sales-director'], quorum: 1 });
    expect(approval('25000.01')).toMatchObject({ approvers: ['role:cfo'], quorum: 2 });
  });

  it('expire after the grant’s duration from the decision time', () => {
    expect(approval('20000')!.expiresAt).toBe('2026-11-12T09:00:00.000Z');
  });

  it('are attached only when the outcome is approve', () => {
    expect(approval('5000')).toBeNull();
    expect(decide(b, request({ resource: { amount: '5000' }, twinMode: 'propose' })).approval).toBeNull();
  });

  it('default to the delegator when a grant names no approvers', () => {
    const plain = bundleOf(authority({}, `grants:\n  - { action: crm.discount.update, outcome: approve }\n`));
    expect(decide(plain, request()).approval).toMatchObject({ approvers: ['user:gen-owner'], quorum: 1, expiresAt: '2026-11-11T09:00:00.000Z' });
  });
});

describe('hours', () => {
  const b = bundleOf(
    authority({ extra: 'hours: { tz: Europe/Berlin, days: [mon, tue, wed, thu, fri, sun], from: "08:00", until: "19:00" }' }, `grants:\n  - { action: crm.discount.update, outcome: execute }\n`),
  );
  const outcome = (at: string) => decide(b, request({ at })).outcome;

  it('include from and exclude until on the local wall clock', () => {
    expect(outcome('2026-11-10T08:00:00+01:00')).toBe('execute');
    expect(outcome('2026-11-10T07:59:59+01:00')).toBe('approve');
    expect(outcome('2026-11-10T18:59:59+01:00')).toBe('execute');
    expect(outcome('2026-11-10T19:00:00+01:00')).toBe('approve');
  });

  it('apply only on the listed days', () => {
    expect(outcome('2026-11-14T10:00:00+01:00')).toBe('approve'); // Saturday
    const d = decide(b, request({ at: '2026-11-14T10:00:00+01:00' }));
    expect(d.reasons.find((r) => r.code === 'outside_hours')!.message).toBe('2026-11-14 10:00 Sat Europe/Berlin is outside hours mon–fri, sun 08:00–19:00 Europe/Berlin of gen v1');
  });

  it('follow daylight-saving changes in the document’s zone', () => {
    // 2026-03-29 (Sunday): clocks jump to CEST, 08:00 local is 06:00 UTC.
    expect(outcome('2026-03-29T06:00:00Z')).toBe('execute');
    expect(outcome('2026-03-29T05:59:59Z')).toBe('approve');
    // 2026-10-25 (Sunday): back to CET, 08:00 local is 07:00 UTC.
    expect(outcome('2026-10-25T07:00:00Z')).toBe('execute');
    expect(outcome('2026-10-25T06:59:59Z')).toBe('approve');
  });

  it('may run overnight, the early hours belonging to the previous day', () => {
    const night = bundleOf(authority({ extra: 'hours: { tz: UTC, days: [fri], from: "22:00", until: "06:00" }' }, `grants:\n  - { action: crm.discount.update, outcome: execute }\n`));
    const o = (at: string) => decide(night, request({ at })).outcome;
    expect(o('2026-11-13T22:00:00Z')).toBe('execute'); // Friday night
    expect(o('2026-11-14T05:59:00Z')).toBe('execute'); // Saturday early, Friday's window
    expect(o('2026-11-14T06:00:00Z')).toBe('approve');
    expect(o('2026-11-14T22:30:00Z')).toBe('approve'); // Saturday night is not listed
  });
});

describe('validity and revocation', () => {
  const b = bundleOf(authority({ valid: '{ from: 2026-03-01T00:00:00+01:00, until: 2026-04-01T00:00:00+02:00 }' }, `grants:\n  - { action: crm.discount.update, outcome: execute }\n`));
  const outcome = (at: string) => decide(b, request({ at })).outcome;

  it('starts at valid.from inclusive and ends at valid.until exclusive', () => {
    expect(outcome('2026-02-28T22:59:59.999Z')).toBe('deny');
    expect(outcome('2026-02-28T23:00:00Z')).toBe('execute');
    expect(outcome('2026-03-31T21:59:59.999Z')).toBe('execute');
    expect(outcome('2026-03-31T22:00:00Z')).toBe('deny');
    expect(codes(decide(b, request({ at: '2026-03-31T22:00:00Z' })))).toEqual(['not_valid']);
  });

  it('denies under a revoked authority, from the revocation on', () => {
    const revoked = bundleOf(authority({ extra: 'revoked: true' }, `grants:\n  - { action: crm.discount.update, outcome: execute }\n`));
    expect(codes(decide(revoked, request()))).toEqual(['revoked']);
    const later = bundleOf(authority({ extra: 'revoked: { at: 2026-06-01T00:00:00Z, reason: Reorganised }' }, `grants:\n  - { action: crm.discount.update, outcome: execute }\n`));
    expect(decide(later, request({ at: '2026-05-31T23:59:59Z' })).outcome).toBe('execute');
    const d = decide(later, request({ at: '2026-06-01T00:00:00Z' }));
    expect(d.reasons).toEqual([{ code: 'revoked', message: 'gen v1 was revoked at 2026-06-01T00:00:00Z: Reorganised', source: 'policies/authorities/gen.yaml:10' }]);
  });

  it('picks the newest authority in force when several delegate to the same twin', () => {
    const old = authority({ id: 'old', delegate: 'twin:gen', valid: '{ from: 2026-01-01T00:00:00Z, until: 2026-07-01T00:00:00Z }' }, `grants:\n  - { action: crm.discount.update, outcome: propose }\n`);
    const next = authority({ id: 'next', delegate: 'twin:gen', valid: '{ from: 2026-06-01T00:00:00Z, until: 2027-01-01T00:00:00Z }' }, `grants:\n  - { action: crm.discount.update, outcome: execute }\n`);
    const both = bundleOf(old, next);
    expect(decide(both, request({ at: '2026-03-01T00:00:00Z' })).authority).toBe('old');
    expect(decide(both, request({ at: '2026-06-15T00:00:00Z' })).authority).toBe('next');
    expect(decide(both, request({ at: '2027-02-01T00:00:00Z' }))).toMatchObject({ authority: 'next', outcome: 'deny' });
    expect(decide(both, request({ at: '2026-06-15T00:00:00Z', authority: 'old' })).authority).toBe('old');
    expect(codes(decide(both, request({ principal: 'twin:other', authority: 'old' })))).toEqual(['no_authority']);
  });
});

describe('capping', () => {
  it('caps at the document mode, the grant outcome and the twin mode, whichever is lowest', () => {
    const b = bundleOf(authority({ mode: 'approve' }, `grants:\n  - { action: crm.discount.update, outcome: execute }\n  - { action: crm.note.create, outcome: propose }\n`));
    const capped = decide(b, request());
    expect(capped.outcome).toBe('approve');
    expect(codes(capped)).toEqual(['granted', 'capped_by_mode', 'approval_tier']);
    expect(decide(b, request({ action: 'crm.note.create', resource: {} })).outcome).toBe('propose');
    const twin = decide(b, request({ twinMode: 'propose' }));
    expect(twin.outcome).toBe('propose');
    expect(twin.reasons.at(-1)).toEqual({ code: 'capped_by_twin_mode', message: "the twin's mode is propose, so at most propose", source: 'request:twinMode' });
  });

  it('applies the best of several matching grants', () => {
    const b = bundleOf(
      authority({}, `grants:\n  - { action: crm.discount.update, outcome: propose }\n  - { action: crm.discount.update, outcome: execute, when: { counterparty: acme } }\n  - { action: crm.discount.update, outcome: approve }\n`),
    );
    const d = decide(b, request());
    expect(d.outcome).toBe('execute');
    expect(d.matched.map((m) => m.rule).sort()).toEqual(['gen/grants/0', 'gen/grants/1', 'gen/grants/2']);
    expect(decide(b, request({ resource: { counterparty: 'globex' } })).outcome).toBe('approve');
  });
});

describe('delegation chains', () => {
  const parent = authority(
    { id: 'cfo', delegate: 'twin:cfo', extra: 'hours: { tz: Europe/Berlin, days: [mon, tue, wed, thu, fri], from: "07:00", until: "20:00" }' },
    `grants:
  - action: procurement.order.create
    outcome: execute
    when: { category: { $in: [office, hardware] } }
    limits: { perAction: "20000", perPeriod: { amount: "100000", period: quarter } }
    approval:
      tiers: [{ above: "0", approvers: [role:controller], quorum: 1 }]
      expiresAfter: P2D
forbid:
  - { action: procurement.order.create, when: { vendorCountry: KP }, reason: Sanctions }
`,
  );
  const child = authority(
    { id: 'buyer', delegate: 'twin:buyer', parent: 'cfo' },
    `grants:
  - action: procurement.order.create
    outcome: execute
    when: { category: { $in: [office, travel] } }
    limits: { perAction: "25000", perPeriod: { amount: "30000", period: month } }
    approval:
      tiers: [{ above: "0", approvers: [role:lead], quorum: 1 }]
      expiresAfter: PT24H
`,
  );
  const b = bundleOf(parent, child);
  const order = (resource: Record<string, unknown>, extra: Partial<DecisionRequest> = {}) =>
    decide(b, request({ principal: 'twin:buyer', action: 'procurement.order.create', resource, at: '2026-11-10T10:00:00+01:00', ...extra }));

  it('executes only when every ancestor would', () => {
    const d = order({ category: 'office', amount: '1000' });
    expect(d.outcome).toBe('execute');
    expect(d.matched.map((m) => m.rule)).toEqual(['buyer/grants/0', 'cfo/grants/0']);
  });

  it('denies what the parent does not grant, however the child is written', () => {
    const d = order({ category: 'travel', amount: '1000' });
    expect(d.outcome).toBe('deny');
    expect(codes(d)).toEqual(['granted', 'no_grant', 'capped_by_parent']);
  });

  it('applies the parent’s forbids, limits and hours to the child', () => {
    expect(codes(order({ category: 'office', vendorCountry: 'KP', amount: '1' }))).toContain('forbidden');
    const overParent = order({ category: 'office', amount: '21000' });
    expect(overParent.outcome).toBe('approve');
    expect(codes(overParent)).toEqual(['granted', 'over_per_action', 'capped_by_parent', 'approval_tier']);
    expect(overParent.approval).toMatchObject({ approvers: ['role:controller'], authority: 'cfo' });
    expect(order({ category: 'office', amount: '1' }, { at: '2026-11-14T10:00:00+01:00' }).outcome).toBe('approve');
  });

  it('checks the parent against its own delegator’s running total', () => {
    expect(order({ category: 'office', amount: '2000' }, { spent: { month: '0' }, spentBy: { 'user:cfo-owner': { quarter: '99000' } } }).outcome).toBe('approve');
    expect(order({ category: 'office', amount: '1000' }, { spent: { month: '0' }, spentBy: { 'user:cfo-owner': { quarter: '99000' } } }).outcome).toBe('execute');
  });

  it('asks the most senior authority that wants approval to approve', () => {
    const both = order({ category: 'office', amount: '21000' }, { spent: { month: '20000' } });
    // Both cap at approve (child: month total, parent: perAction), so neither caps the other.
    expect(codes(both)).toEqual(['granted', 'over_period', 'over_per_action', 'approval_tier']);
    expect(both.approval).toMatchObject({ approvers: ['role:controller'], authority: 'cfo' });
    const childOnly = order({ category: 'office', amount: '5000' }, { spent: { month: '29000' } });
    expect(childOnly.approval).toMatchObject({ approvers: ['role:lead'], authority: 'buyer' });
  });

  it('reserves on every authority in the chain', () => {
    const d = order({ category: 'office', amount: '1000' });
    expect(d.reservations.map((r) => [r.authority, r.delegator, r.key, r.limit])).toEqual([
      ['buyer', 'user:buyer-owner', 'month:2026-11', '30000.00'],
      ['cfo', 'user:cfo-owner', 'quarter:2026-Q4', '100000.00'],
    ]);
  });
});

describe('conditions use CASL’s MongoDB-style operators on the action’s attributes', () => {
  const grant = (when: string) => bundleOf(authority({}, `grants:\n  - { action: crm.discount.update, outcome: execute, when: ${when} }\n`));
  const cases: [string, Record<string, unknown>, Record<string, unknown>][] = [
    ['{ counterparty: { $in: [acme, globex] } }', { counterparty: 'acme' }, { counterparty: 'initech' }],
    ['{ counterparty: { $nin: [megacorp] } }', { counterparty: 'acme' }, { counterparty: 'megacorp' }],
    ['{ counterparty: { $eq: acme } }', { counterparty: 'acme' }, { counterparty: 'globex' }],
    ['{ counterparty: { $ne: megacorp } }', { counterparty: 'acme' }, { counterparty: 'megacorp' }],
    ['{ discountPct: { $lte: 15 } }', { discountPct: 15 }, { discountPct: 16 }],
    ['{ discountPct: { $lt: 15 } }', { discountPct: 14 }, { discountPct: 15 }],
    ['{ discountPct: { $gte: 5, $lte: 10 } }', { discountPct: 5 }, { discountPct: 4 }],
    ['{ discountPct: { $gt: 5 } }', { discountPct: 6 }, { discountPct: 5 }],
    ['{ email: { $regex: "@acme\\\\.example$", $options: i } }', { email: 'Bob@ACME.example' }, { email: 'bob@evil.example' }],
    ['{ contract: { $exists: true } }', { contract: 'c-1' }, {}],
    ['{ tags: { $all: [key, renewal] } }', { tags: ['key', 'renewal', 'eu'] }, { tags: ['key'] }],
    ['{ tags: { $size: 2 } }', { tags: ['a', 'b'] }, { tags: ['a'] }],
    ['{ lines: { $elemMatch: { sku: gold, qty: { $gt: 10 } } } }', { lines: [{ sku: 'gold', qty: 11 }] }, { lines: [{ sku: 'gold', qty: 1 }] }],
    ['{ "account.tier": enterprise }', { account: { tier: 'enterprise' } }, { account: { tier: 'smb' } }],
  ];
  it.each(cases)('%s matches the first resource and not the second', (when, yes, no) => {
    const b = grant(when);
    expect(decide(b, request({ resource: yes })).outcome).toBe('execute');
    expect(decide(b, request({ resource: no })).outcome).toBe('deny');
  });

  it('matches a list attribute element-wise, as CASL does, even through the grant index', () => {
    const b = bundleOf(
      authority({}, `grants:\n${['a', 'b', 'c', 'd'].map((x) => `  - { action: crm.discount.update, outcome: execute, when: { counterparty: { $in: [${x}] } } }`).join('\n')}\n`),
    );
    expect(decide(b, request({ resource: { counterparty: ['z', 'c'] } })).outcome).toBe('execute');
    expect(decide(b, request({ resource: { counterparty: 'c' } })).matched.map((m) => m.rule)).toEqual(['gen/grants/2']);
    expect(decide(b, request({ resource: {} })).outcome).toBe('deny');
  });
});
