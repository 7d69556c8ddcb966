import fs from 'node:fs';
import path from 'node:path';
import { regent, regentInProcess } from '../support/cli';
import { dataDir as newDataDir, tmpDir } from '../support/databases';

const POLICIES = path.resolve(__dirname, '../../policies');
const EXAMPLE = path.join(POLICIES, 'examples', 'discount-request.json');

/** A copy of the shipped policies to break or change. */
function copyPolicies(): string {
  const dir = path.join(tmpDir(), 'policies');
  fs.cpSync(POLICIES, dir, { recursive: true });
  return dir;
}

// The binary runs policy check, eval, test and schema on the shipped documents; the rest run in
// this process (test/support/cli.ts).
describe('regent policy', () => {
  it('check accepts the shipped documents and names the bundle version', () => {
    const r = regent(['policy', 'check', '--policies', POLICIES]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^OK: 5 authorities in 5 files, version sha256:[0-9a-f]{64}$/m);
  });

  it('check refuses a mistake with file:line and a specific message', async () => {
    const dir = copyPolicies();
    const file = path.join(dir, 'authorities', 'vp-sales-twin.yaml');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('perAction: "10000"', 'perAction: "10,000"'));
    const r = await regentInProcess(['policy', 'check', '--policies', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^policies\/authorities\/vp-sales-twin\.yaml:\d+: .*10,000/m);
  });

  it('check refuses an unknown field, naming it', async () => {
    const dir = copyPolicies();
    const file = path.join(dir, 'authorities', 'cfo-twin.yaml');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/^mode: /m, 'colour: blue\nmode: '));
    const r = await regentInProcess(['policy', 'check', '--policies', dir, '--json']);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.ok).toBe(false);
    expect(out.errors[0]).toMatchObject({ file: 'policies/authorities/cfo-twin.yaml', message: expect.stringMatching(/colour/) });
  });

  it('eval prints the Decision JSON of DESIGN.md with file:line sources', () => {
    const r = regent(['policy', 'eval', '--policies', POLICIES, '--input', EXAMPLE]);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(Object.keys(d)).toEqual(expect.arrayContaining(['outcome', 'reasons', 'policyVersion', 'authority', 'approval']));
    expect(d.outcome).toBe('approve');
    expect(d.policyVersion).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(d.approval).toMatchObject({ approvers: ['role:sales-director'], quorum: 1, expiresAt: expect.any(String) });
    for (const reason of d.reasons) expect(reason.source).toMatch(/^policies\/authorities\/[a-z-]+\.yaml:\d+$/);
    expect(d.reasons.find((x: { code: string }) => x.code === 'over_per_action').message).toBe(
      'amount 12,000.00 EUR exceeds perAction 10,000.00 EUR in vp-sales-twin v3',
    );
  });

  it('eval defaults twinMode to execute and caps by it when given', async () => {
    const file = path.join(tmpDir(), 'in.json');
    const input = JSON.parse(fs.readFileSync(EXAMPLE, 'utf8'));
    input.resource.amount = '100.00';
    delete input.twinMode;
    fs.writeFileSync(file, JSON.stringify(input));
    expect(JSON.parse((await regentInProcess(['policy', 'eval', '--policies', POLICIES, '--input', file])).stdout).outcome).toBe('execute');
    fs.writeFileSync(file, JSON.stringify({ ...input, twinMode: 'propose' }));
    const capped = JSON.parse((await regentInProcess(['policy', 'eval', '--policies', POLICIES, '--input', file])).stdout);
    expect(capped.outcome).toBe('propose');
    expect(capped.reasons.map((x: { code: string }) => x.code)).toContain('capped_by_twin_mode');
  });

  it('eval refuses a malformed input file with one line', async () => {
    const file = path.join(tmpDir(), 'bad.json');
    fs.writeFileSync(file, '{"principal": "twin:x", "action": 1');
    const r = await regentInProcess(['policy', 'eval', '--policies', POLICIES, '--input', file]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^regent: --input .*bad\.json: not valid JSON/);
    fs.writeFileSync(file, JSON.stringify({ principal: 'twin:x', action: 'a', resource: {}, at: '2026-01-01T00:00:00Z', colour: 'red' }));
    expect((await regentInProcess(['policy', 'eval', '--policies', POLICIES, '--input', file])).stderr).toMatch(/unknown field "colour"/);
  });

  it('test runs every shipped case and reports full rule coverage', () => {
    const r = regent(['policy', 'test', '--policies', POLICIES]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+ passed, 0 failed$/m);
    expect(r.stdout).toMatch(/^rule coverage: (\d+)\/\1$/m);
  });

  it('test fails, naming the case, when an expectation no longer holds', async () => {
    const dir = copyPolicies();
    const file = path.join(dir, 'authorities', 'vp-sales-twin.yaml');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('perAction: "10000"', 'perAction: "1000"'));
    const r = await regentInProcess(['policy', 'test', '--policies', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL {2}policies\/tests\/vp-sales-twin\.yaml:\d+ {2}a small discount for a key account executes$/m);
  });

  it('schema prints the JSON Schema that policies/authority.schema.json holds', () => {
    const r = regent(['policy', 'schema']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(fs.readFileSync(path.join(POLICIES, 'authority.schema.json'), 'utf8')));
  });

  it('diff shows which requests a candidate would decide differently', async () => {
    const dir = copyPolicies();
    const file = path.join(dir, 'authorities', 'vp-sales-twin.yaml');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('perAction: "10000"', 'perAction: "15000"'));
    const r = await regentInProcess(['policy', 'diff', POLICIES, dir, '--no-journal', '--input', EXAMPLE, '--json']);
    expect(r.code).toBe(0);
    const diff = JSON.parse(r.stdout);
    expect(diff.total).toBe(1);
    expect(diff.outcomes).toEqual({ 'approve→execute': 1 });
  });

  it('versions and rollback work on the recorded history', async () => {
    const dataDir = newDataDir();
    const dir = copyPolicies();
    const env = { REGENT_DATA_DIR: dataDir, REGENT_POLICIES_DIR: dir };
    // The first rollback loads the files (recording version 1); then change them and roll back.
    const first = JSON.parse((await regentInProcess(['policy', 'check', '--json'], env)).stdout).version;
    const none = await regentInProcess(['policy', 'rollback', first, '--actor', 'user:dana'], env);
    expect(none.code).toBe(0);
    const file = path.join(dir, 'authorities', 'vp-sales-twin.yaml');
    const original = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, original.replace('perAction: "10000"', 'perAction: "9000"'));
    const second = JSON.parse((await regentInProcess(['policy', 'check', '--json'], env)).stdout).version;
    expect((await regentInProcess(['policy', 'rollback', first, '--actor', 'user:dana'], env)).stdout).toMatch(/is in force again|was already in force/);
    expect(fs.readFileSync(file, 'utf8')).toBe(original);
    const versions = JSON.parse((await regentInProcess(['policy', 'versions', '--json'], env)).stdout);
    expect(versions.map((v: { version: string }) => v.version)).toContain(first);
    expect(versions.map((v: { version: string }) => v.version)).toContain(second);
    const unknown = await regentInProcess(['policy', 'rollback', `sha256:${'0'.repeat(64)}`, '--actor', 'user:dana'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no recorded policy version/);
  });

  it('bench policy prints p50, p99 and ops/s as one JSON object', async () => {
    const r = await regentInProcess(['bench', 'policy', '--policies', POLICIES, '--input', EXAMPLE, '--iterations', '2000', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ p50_us: expect.any(Number), p99_us: expect.any(Number), ops_per_s: expect.any(Number) });
  });
});
