import { diffBundles } from './diff';
import { authority, bundleOf, request } from './testing/fixtures';

describe('shadow evaluation of a candidate bundle', () => {
  const before = bundleOf(authority({}, `grants:\n  - { action: crm.discount.update, outcome: execute, limits: { perAction: "1000" } }\n`));
  const after = bundleOf(authority({}, `grants:\n  - { action: crm.discount.update, outcome: execute, limits: { perAction: "500" } }\n`));
  const requests = [request({ resource: { amount: '100' } }), request({ resource: { amount: '800' } }), request({ action: 'email.send' })];

  it('lists exactly the decisions that would change, and how', () => {
    const diff = diffBundles(before, after, requests);
    expect(diff).toMatchObject({ from: before.version, to: after.version, total: 3, outcomes: { 'execute→approve': 1 } });
    expect(diff.changes.map((c) => [c.index, c.before.outcome, c.after.outcome, c.changed])).toEqual([[1, 'execute', 'approve', ['outcome', 'reasons', 'approval']]]);
  });

  it('finds nothing between a bundle and itself', () => {
    expect(diffBundles(before, before, requests).changes).toEqual([]);
  });
});
