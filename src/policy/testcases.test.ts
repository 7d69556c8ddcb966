import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPolicies } from './load';
import { loadTestCases, parseEvalInput, runPolicyTests, runTestCases } from './testcases';
import { REASON_CODES } from './types';

const POLICIES = join(__dirname, '..', '..', 'policies');

describe('policy test cases', () => {
  it('pass for the shipped policies, exercising every rule and every reason code', () => {
    const run = runPolicyTests(POLICIES);
    if (!run.ok) throw new Error(JSON.stringify(run.errors));
    const failures = run.report.results.filter((r) => !r.passed).map((r) => `${r.file}:${r.line} ${r.name}: ${r.failures.join('; ')}`);
    expect(failures).toEqual([]);
    expect(run.report.coverage.rules.filter((r) => !r.covered)).toEqual([]);
    const seen = new Set(run.report.results.flatMap((r) => r.decision.reasons.map((x) => x.code)));
    expect(REASON_CODES.filter((c) => !seen.has(c))).toEqual([]);
  });

  it('report a failing case with what differs, and the rules nobody exercised', () => {
    const dir = mkdtempSync(join(tmpdir(), 'regent-policy-'));
    mkdirSync(join(dir, 'tests'));
    writeFileSync(
      join(dir, 'tests', 'wrong.yaml'),
      `cases:
  - name: expects too much
    input: { principal: twin:vp-sales-twin, action: crm.note.create, resource: {}, at: "2026-11-10T10:00:00+01:00" }
    expect: { outcome: approve, reasons: [over_period], approval: { approvers: [user:vic] } }
`,
    );
    const loaded = loadPolicies(POLICIES);
    const cases = loadTestCases(dir);
    if (!loaded.ok || !cases.ok) throw new Error('fixtures must load');
    expect(cases.cases[0]).toMatchObject({ file: expect.stringMatching(/tests\/wrong\.yaml$/), line: 2 });
    const report = runTestCases(loaded.bundle, cases.cases);
    expect(report.failed).toBe(1);
    expect(report.results[0]!.failures).toEqual(['outcome execute, expected approve', 'reason over_period missing (got granted)', 'no approval requirement, expected one']);
    expect(report.coverage.rules.find((r) => r.rule === 'vp-sales-twin/grants/3')!.covered).toBe(true);
    expect(report.coverage.rules.find((r) => r.rule === 'cfo-twin/forbid/0')!.covered).toBe(false);
    expect(report.coverage.covered).toBeLessThan(report.coverage.total);
  });

  it('refuse a malformed case file with file:line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'regent-policy-'));
    mkdirSync(join(dir, 'tests'));
    writeFileSync(join(dir, 'tests', 'bad.yaml'), `cases:\n  - name: x\n    input: { principal: p, action: a, resource: {}, at: t }\n    expect: { outcome: maybe }\n`);
    const r = loadTestCases(dir);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]).toMatchObject({ line: 4, message: expect.stringMatching(/^cases\.0\.expect\.outcome: /) });
  });

  it('parse eval input strictly', () => {
    expect(parseEvalInput({ principal: 'twin:x', action: 'a', resource: {}, at: '2026-01-01T00:00:00Z' }).ok).toBe(true);
    expect(parseEvalInput({ principal: 'twin:x', action: 'a', resource: {}, at: 'x', extra: 1 })).toEqual({ ok: false, message: 'unknown field "extra"' });
    expect(parseEvalInput({ principal: 'twin:x', action: 'a', at: 'x' })).toMatchObject({ ok: false, message: expect.stringMatching(/^resource: /) });
  });
});
