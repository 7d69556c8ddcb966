/**
 * `regent policy test`: runs the cases in `policies/tests/*.yaml` against a bundle and reports
 * which rules (grants, forbids, limits, tiers, hours) no case exercised.
 *
 *   cases:
 *     - name: a small discount for a key account executes
 *       input: { principal: twin:vp-sales-twin, action: crm.discount.update, at: ..., resource: {...} }
 *       expect: { outcome: execute, reasons: [granted] }
 *
 * `expect.reasons` lists codes that must all appear (others may too); `expect.approval` compares
 * only the fields it gives.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { decide, ruleInventory, type PolicyBundle, type RuleInfo } from './engine';
import { loadPolicies, type LoadError } from './load';
import { PERIODS } from './time';
import { OUTCOMES, REASON_CODES, type Decision, type DecisionRequest } from './types';

const Spent = z.partialRecord(z.enum(PERIODS), z.string());

/** The input of `regent policy eval` and of test cases. Only shapes are checked here; the
 *  engine itself refuses bad values (a malformed `at`, an unknown twinMode) with reasons. */
export const EvalInputSchema = z.strictObject({
  principal: z.string(),
  action: z.string(),
  resource: z.record(z.string(), z.unknown()),
  at: z.string(),
  spent: Spent.optional(),
  spentBy: z.record(z.string(), Spent).optional(),
  twinMode: z.string().optional(),
  authority: z.string().optional(),
});

export type EvalInput = z.infer<typeof EvalInputSchema>;

export type ParsedInput = { ok: true; input: DecisionRequest } | { ok: false; message: string };

/** Parses an eval input (already JSON- or YAML-decoded). */
export function parseEvalInput(value: unknown): ParsedInput {
  const r = EvalInputSchema.safeParse(value);
  if (r.success) return { ok: true, input: r.data as DecisionRequest };
  const first = r.error.issues[0]!;
  const where = first.path.length ? `${first.path.join('.')}: ` : '';
  return { ok: false, message: `${where}${first.code === 'unrecognized_keys' ? `unknown field "${first.keys[0]}"` : first.message}` };
}

const ApprovalExpectation = z.strictObject({
  approvers: z.array(z.string()).optional(),
  quorum: z.int().optional(),
  expiresAt: z.string().optional(),
});

const CaseSchema = z.strictObject({
  name: z.string().min(1),
  input: EvalInputSchema,
  expect: z.strictObject({
    outcome: z.enum(OUTCOMES),
    reasons: z.array(z.enum(REASON_CODES)).optional(),
    approval: ApprovalExpectation.nullable().optional(),
    authority: z.string().nullable().optional(),
  }),
});

const FileSchema = z.strictObject({ description: z.string().optional(), cases: z.array(CaseSchema) });

export interface PolicyTestCase extends z.infer<typeof CaseSchema> {
  file: string;
  line: number;
}

export type CasesResult = { ok: true; cases: PolicyTestCase[] } | { ok: false; errors: LoadError[] };

/** Reads `<dir>/tests/*.yaml`; file labels are relative to the policies directory's parent. */
export function loadTestCases(dir: string): CasesResult {
  const root = basename(resolve(dir));
  const testsDir = join(dir, 'tests');
  if (!existsSync(testsDir)) return { ok: true, cases: [] };
  const cases: PolicyTestCase[] = [];
  const errors: LoadError[] = [];
  for (const name of readdirSync(testsDir).filter((n) => /\.ya?ml$/.test(n)).sort()) {
    const file = `${root}/tests/${name}`;
    const lines = new LineCounter();
    const doc = parseDocument(readFileSync(join(testsDir, name), 'utf8'), { lineCounter: lines, prettyErrors: true });
    const lineOf = (path: readonly PropertyKey[]) => {
      const node = doc.getIn(path as (string | number)[], true) as { range?: [number, number, number] } | undefined;
      return node?.range ? lines.linePos(node.range[0]).line : 1;
    };
    if (doc.errors.length) {
      for (const e of doc.errors) errors.push({ file, line: e.linePos?.[0]?.line ?? 1, message: `YAML syntax error: ${e.message.split('\n')[0]}` });
      continue;
    }
    const parsed = FileSchema.safeParse(doc.toJS());
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
        const extra = issue.code === 'unrecognized_keys' ? `unknown field "${issue.keys.join('", "')}"` : issue.message;
        errors.push({ file, line: lineOf(issue.path), message: `${path.join('.')}: ${extra}` });
      }
      continue;
    }
    parsed.data.cases.forEach((c, i) => cases.push({ ...c, file, line: lineOf(['cases', i]) }));
  }
  return errors.length ? { ok: false, errors } : { ok: true, cases };
}

export interface CaseResult {
  name: string;
  file: string;
  line: number;
  passed: boolean;
  failures: string[];
  decision: Decision;
}

export interface Coverage {
  total: number;
  covered: number;
  rules: (RuleInfo & { covered: boolean })[];
}

export interface TestReport {
  passed: number;
  failed: number;
  results: CaseResult[];
  coverage: Coverage;
}

function check(c: PolicyTestCase, d: Decision): string[] {
  const failures: string[] = [];
  const { expect } = c;
  if (d.outcome !== expect.outcome) failures.push(`outcome ${d.outcome}, expected ${expect.outcome}`);
  const codes = new Set(d.reasons.map((r) => r.code));
  for (const code of expect.reasons ?? []) if (!codes.has(code)) failures.push(`reason ${code} missing (got ${[...codes].join(', ') || 'none'})`);
  if (expect.authority !== undefined && d.authority !== expect.authority) failures.push(`authority ${d.authority}, expected ${expect.authority}`);
  if (expect.approval === null && d.approval !== null) failures.push('an approval requirement, expected none');
  if (expect.approval) {
    const a = d.approval;
    if (!a) failures.push('no approval requirement, expected one');
    else {
      const want = expect.approval;
      if (want.approvers && [...want.approvers].sort().join() !== [...a.approvers].sort().join())
        failures.push(`approvers ${a.approvers.join(', ')}, expected ${want.approvers.join(', ')}`);
      if (want.quorum !== undefined && want.quorum !== a.quorum) failures.push(`quorum ${a.quorum}, expected ${want.quorum}`);
      if (want.expiresAt !== undefined && Date.parse(want.expiresAt) !== Date.parse(a.expiresAt)) failures.push(`expiresAt ${a.expiresAt}, expected ${want.expiresAt}`);
    }
  }
  return failures;
}

/** Rules a decision exercised: matched grants and forbids, limits and hours it cited, the tier used. */
export function rulesExercised(d: Decision): string[] {
  const out = d.matched.map((m) => m.rule);
  for (const r of d.reasons) if (r.rule) out.push(r.rule);
  if (d.approval) out.push(d.approval.rule);
  return out;
}

export function runTestCases(bundle: PolicyBundle, cases: readonly PolicyTestCase[]): TestReport {
  const exercised = new Set<string>();
  const results = cases.map((c) => {
    const decision = decide(bundle, c.input as DecisionRequest);
    for (const rule of rulesExercised(decision)) exercised.add(rule);
    const failures = check(c, decision);
    return { name: c.name, file: c.file, line: c.line, passed: failures.length === 0, failures, decision };
  });
  const rules = ruleInventory(bundle).map((r) => ({ ...r, covered: exercised.has(r.rule) }));
  return {
    passed: results.filter((r) => r.passed).length,
    failed: results.filter((r) => !r.passed).length,
    results,
    coverage: { total: rules.length, covered: rules.filter((r) => r.covered).length, rules },
  };
}

export type PolicyTestRun = { ok: true; report: TestReport } | { ok: false; errors: LoadError[] };

/** Loads `<dir>/authorities` and `<dir>/tests` and runs every case. */
export function runPolicyTests(dir: string): PolicyTestRun {
  const loaded = loadPolicies(dir);
  if (!loaded.ok) return loaded;
  const cases = loadTestCases(dir);
  if (!cases.ok) return cases;
  return { ok: true, report: runTestCases(loaded.bundle, cases.cases) };
}
