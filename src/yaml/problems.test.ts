import { z } from 'zod';
import { byPosition, formatProblem, issueProblems, knownFields } from './problems';

// Each loader's schema exercises only some of these (authorities: a union; connectors and
// playbooks: lazy and records; signal rules: pipes); the loaders' own tests check their messages.
describe('knownFields', () => {
  const Node: z.ZodType<unknown> = z.lazy(() => z.object({ name: z.string(), children: z.array(Node).optional() }));
  const Doc = z.object({
    revoked: z.union([z.boolean(), z.object({ at: z.string(), reason: z.string() })]).optional(),
    labels: z.record(z.string(), z.object({ colour: z.string() })).default({}),
    tree: Node.nullable(),
    piped: z.object({ a: z.string() }).pipe(z.object({ a: z.string() })),
    plain: z.string(),
  });

  it('lists the fields of the object at a path, through wrappers, lazy, records, arrays and a union’s object option', () => {
    expect(knownFields(Doc, [])).toEqual(['revoked', 'labels', 'tree', 'piped', 'plain']);
    expect(knownFields(Doc, ['revoked'])).toEqual(['at', 'reason']);
    expect(knownFields(Doc, ['labels', 'any'])).toEqual(['colour']);
    expect(knownFields(Doc, ['tree', 'children', 3])).toEqual(['name', 'children']);
    expect(knownFields(Doc, ['piped'])).toEqual(['a']);
  });

  it('lists none where the path leads to no object, or there is no schema', () => {
    expect(knownFields(Doc, ['plain'])).toEqual([]);
    expect(knownFields(Doc, ['nowhere', 'deeper'])).toEqual([]);
    expect(knownFields(z.union([z.string(), z.number()]), [])).toEqual([]);
    expect(knownFields(undefined, ['a'])).toEqual([]);
  });
});

describe('issueProblems', () => {
  const Schema = z.strictObject({ kind: z.string(), limits: z.strictObject({ perAction: z.string(), perPeriod: z.string() }).optional() });
  const problems = (data: unknown, suggest?: boolean) => {
    const r = Schema.safeParse(data);
    if (r.success) throw new Error('expected a refusal');
    const ctx = {
      data,
      file: 'policies/things/t.yaml',
      lineOf: (p: readonly (string | number)[]) => 10 + p.length,
      knownFields: (p: readonly (string | number)[]) => knownFields(Schema, p),
      suggest,
    };
    return r.error.issues.flatMap((i) => issueProblems(i, ctx)).map(formatProblem);
  };

  it('names an unknown field at its line with the known fields, or the nearest one when asked to suggest', () => {
    const data = { kind: 'Thing', limits: { perAction: '1', perPeriod: '2', perAcion: '3' } };
    expect(problems(data)).toEqual(['policies/things/t.yaml:12: unknown field "perAcion" in limits (known fields: perAction, perPeriod)']);
    expect(problems(data, true)).toEqual(['policies/things/t.yaml:12: unknown field "perAcion" in limits (did you mean perAction?)']);
  });

  it('says a missing field is missing and a wrong value what was expected', () => {
    expect(problems({})).toEqual(['policies/things/t.yaml:11: missing required field "kind"']);
    expect(problems({ kind: 'Thing', limits: { perAction: 5, perPeriod: '2' } })).toEqual([
      'policies/things/t.yaml:12: limits.perAction: expected string, got 5',
    ]);
  });
});

describe('formatProblem and byPosition', () => {
  it('write file:line: message, or file: message at line 0, and order by file then line', () => {
    expect(formatProblem({ file: 'policies/authorities', line: 0, message: 'no such directory' })).toBe(
      'policies/authorities: no such directory',
    );
    const sorted = [
      { file: 'b.yaml', line: 1, message: '' },
      { file: 'a.yaml', line: 9, message: '' },
      { file: 'a.yaml', line: 2, message: '' },
    ].sort(byPosition);
    expect(sorted.map((e) => `${e.file}:${e.line}`)).toEqual(['a.yaml:2', 'a.yaml:9', 'b.yaml:1']);
  });
});
