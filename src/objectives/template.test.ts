import { malformed, matches, references, render, renderText } from './template';

describe('playbook templates', () => {
  const scope = { params: { account: 'acme', pct: 12, note: 'renewal' }, steps: { discount: { status: 'executed', result: { summary: 'done' } } } };

  it('keeps the type of a value that is exactly one placeholder, and drops fields without a value', () => {
    expect(render({ account: '{{params.account}}', pct: '{{ params.pct }}', missing: '{{params.nope}}' }, scope)).toEqual({ account: 'acme', pct: 12 });
  });

  it('interpolates placeholders inside text, absent values as nothing', () => {
    expect(renderText('Discount {{params.pct}}% for {{params.account}}{{params.nope}}: {{steps.discount.result.summary}}', scope)).toBe(
      'Discount 12% for acme: done',
    );
  });

  it('never reaches outside the scope it is given (no prototype, no expressions)', () => {
    expect(render('{{params.constructor}}', scope)).toBeUndefined();
    expect(render('{{params.account.length}}', scope)).toBeUndefined();
    expect(renderText('{{ 1 + 1 }}', scope)).toBe('{{ 1 + 1 }}');
  });

  it('lists references and malformed braces with where they are', () => {
    expect(references({ a: ['x {{params.a}}', '{{steps.s1.status}}'] })).toEqual([
      { ref: 'params.a', path: ['a', 0] },
      { ref: 'steps.s1.status', path: ['a', 1] },
    ]);
    expect(malformed({ a: '{{params.a}', b: '{{params.b}}' })).toEqual([{ text: '{{params.a}', path: ['a'] }]);
  });

  it('matches MongoDB-style conditions with dotted paths', () => {
    expect(matches({ 'steps.discount.status': 'executed' }, scope)).toBe(true);
    expect(matches({ 'steps.discount.status': { $in: ['rejected', 'denied'] } }, scope)).toBe(false);
    expect(matches({ 'params.pct': { $gte: 10 } }, scope)).toBe(true);
    expect(matches({ 'params.pct': { $gt: 12 } }, scope)).toBe(false);
    expect(matches(undefined, scope)).toBe(true);
  });
});
