import fs from 'node:fs';
import path from 'node:path';
import { regent, regentAsync, regentInProcess } from '../support/cli';
import { dataDir as newDataDir, tmpDir } from '../support/databases';

const VECTOR = path.resolve(__dirname, '../fixtures/journal-vector/export');

// The binary runs the cases about the process (exit codes, the first start of serve, SIGTERM, a
// second process refused) and a verify; the rest run the same program in this process (test/support/cli.ts).
describe('the regent CLI', () => {
  it.each([
    [[], regent],
    [['serve'], regentInProcess],
    [['journal'], regentInProcess],
    [['journal', 'note'], regentInProcess],
    [['journal', 'head'], regentInProcess],
    [['journal', 'export'], regentInProcess],
    [['journal', 'verify'], regentInProcess],
    [['journal', 'keygen'], regentInProcess],
    [['db'], regentInProcess],
    [['db', 'migrate'], regentInProcess],
    [['db', 'status'], regentInProcess],
    [['bench'], regentInProcess],
    [['bench', 'journal'], regentInProcess],
    [['connectors'], regentInProcess],
    [['connectors', 'accept'], regentInProcess],
    [['connectors', 'pins'], regentInProcess],
  ] as const)('prints help for %j and exits 0', async (args, run) => {
    const r = await run([...args, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: regent/);
  });

  it('exits non-zero with a one-line reason for an unknown command or a missing option', () => {
    const unknown = regent(['jurnal']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/unknown command 'jurnal'/);
    const missing = regent(['journal', 'note', '--actor', 'user:ann']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/required option '--text <text>' not specified/);
  });

  it('stops with one line naming a bad configuration variable', () => {
    const r = regent(['journal', 'head'], { REGENT_DATA_DIR: tmpDir(), REGENT_CHECKPOINT_EVERY: 'often' });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('regent: configuration: REGENT_CHECKPOINT_EVERY: must be a whole number (got "often")');
  });

  it('appends notes, exports, and verifies the export with the key it printed', async () => {
    const dataDir = newDataDir();
    const env = { REGENT_DATA_DIR: dataDir };
    expect((await regentInProcess(['journal', 'note', '--actor', 'user:ann', '--text', 'quarter closed'], env)).stdout).toMatch(/^appended seq 1 /);
    const note = JSON.parse((await regentInProcess(['journal', 'note', '--actor', 'user:ann', '--text', 'café ☃', '--json'], env)).stdout);
    expect(note).toMatchObject({ seq: 2, kind: 'audit.note', actor: 'user:ann', data: { text: 'café ☃' } });
    const head = JSON.parse((await regentInProcess(['journal', 'head', '--json'], env)).stdout);
    expect(head).toMatchObject({ size: 2, chain: note.chain });
    fs.writeFileSync(path.join(dataDir, 'auditor.vkey'), head.vkey + '\n');

    const out = path.join(dataDir, 'export');
    const exp = await regentInProcess(['journal', 'export', '--out', out, '--actor', 'user:audrey', '--json'], env);
    expect(exp.code).toBe(0);
    expect(JSON.parse(exp.stdout)).toMatchObject({ size: 2 });
    const ok = regent(['journal', 'verify', out, '--key', path.join(dataDir, 'auditor.vkey')]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^OK: 2 entries/);

    // The export itself was journaled.
    expect(JSON.parse((await regentInProcess(['journal', 'head', '--json'], env)).stdout).size).toBe(3);
    const again = await regentInProcess(['journal', 'export', '--out', out], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists/);
  });

  it('proves a later export still holds a checkpoint the auditor kept, saved as tools save it', async () => {
    const dataDir = newDataDir();
    const env = { REGENT_DATA_DIR: dataDir };
    await regentInProcess(['journal', 'note', '--actor', 'user:ann', '--text', 'first'], env);
    const first = path.join(dataDir, 'first');
    expect((await regentInProcess(['journal', 'export', '--out', first], env)).code).toBe(0);
    const [kept] = fs.readdirSync(path.join(first, 'checkpoints')).sort((a, b) => parseInt(b) - parseInt(a));
    // Kept outside, one newline too many (what `jq -r .note > file` or `echo` leave behind).
    const keptFile = path.join(tmpDir(), 'kept-checkpoint.txt');
    fs.writeFileSync(keptFile, fs.readFileSync(path.join(first, 'checkpoints', kept!), 'utf8') + '\n');
    const vkey = path.join(dataDir, 'auditor.vkey');
    fs.writeFileSync(vkey, JSON.parse((await regentInProcess(['journal', 'head', '--json'], env)).stdout).vkey + '\n');

    await regentInProcess(['journal', 'note', '--actor', 'user:ann', '--text', 'second'], env);
    const later = path.join(dataDir, 'later');
    expect((await regentInProcess(['journal', 'export', '--out', later], env)).code).toBe(0);
    const ok = await regentInProcess(['journal', 'verify', later, '--key', vkey, '--trusted', keptFile]);
    expect({ code: ok.code, out: ok.stdout }).toMatchObject({ code: 0, out: expect.stringMatching(/^OK: /) });

    // A kept checkpoint whose root was changed is refused, naming it.
    const lines = fs.readFileSync(keptFile, 'utf8').split('\n');
    lines[2] = Buffer.alloc(32, 7).toString('base64');
    fs.writeFileSync(keptFile, lines.join('\n'));
    const bad = await regentInProcess(['journal', 'verify', later, '--key', vkey, '--trusted', keptFile]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/trusted checkpoint does not verify/);
  });

  it('refuses a note with an invalid actor and writes nothing', async () => {
    const env = { REGENT_DATA_DIR: newDataDir() };
    const r = await regentInProcess(['journal', 'note', '--actor', 'dana', '--text', 'x'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^regent: journal entry actor: must look like user:<id>/);
    expect(JSON.parse((await regentInProcess(['journal', 'head', '--json'], env)).stdout).size).toBe(0);
  });

  it('verifies the independent implementation’s vector, and refuses a tampered copy naming the seq', () => {
    const ok = regent(['journal', 'verify', VECTOR, '--key', path.join(VECTOR, 'journal.vkey')]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const copy = tmpDir();
    fs.cpSync(VECTOR, copy, { recursive: true });
    const file = path.join(copy, 'entries.jsonl');
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines[2] = lines[2]!.replace('first', 'First').replace('café', 'cafe');
    fs.writeFileSync(file, lines.join('\n'));
    const bad = regent(['journal', 'verify', copy, '--key', path.join(VECTOR, 'journal.vkey')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/verification FAILED at seq 3/);
  });

  it('fails with one line when the --key file does not exist', async () => {
    const r = await regentInProcess(['journal', 'verify', VECTOR, '--key', '/nonexistent/k.vkey']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('regent: --key /nonexistent/k.vkey: no such file');
  });

  it('reports and applies migrations with db status and db migrate', async () => {
    const env = { REGENT_DATA_DIR: newDataDir() };
    const before = JSON.parse((await regentInProcess(['db', 'status', '--json'], env)).stdout);
    expect(before.applied).toEqual([]);
    expect(before.pending.length).toBeGreaterThan(0);
    const migrated = JSON.parse((await regentInProcess(['db', 'migrate', '--json'], env)).stdout);
    expect(migrated.pending).toEqual([]);
    expect(migrated.appliedNow).toEqual(before.pending);
  });

  it('serves health checks and shuts down cleanly on SIGTERM, journaling start and stop', async () => {
    const dataDir = tmpDir();
    const env = { REGENT_DATA_DIR: dataDir, PORT: '0' };
    const child = regentAsync(['serve'], env);
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        const m = /listening on (http:\/\/[^\s]+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`serve exited ${code}`)));
    });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${url}/readyz`)).json()).toMatchObject({ status: 'ok', database: 'embedded' });
    // A second process is refused while the server holds the embedded database.
    const second = regent(['journal', 'head'], { REGENT_DATA_DIR: dataDir });
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(new RegExp(`in use by process ${child.pid} \\(regent serve`));

    const started = Date.now();
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(fs.existsSync(path.join(dataDir, 'regent.lock'))).toBe(false);

    const outDir = path.join(dataDir, 'ex');
    expect((await regentInProcess(['journal', 'export', '--out', outDir], { REGENT_DATA_DIR: dataDir })).code).toBe(0);
    const kinds = fs.readFileSync(path.join(outDir, 'entries.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).kind);
    // The first start also created the admin (see users-cli.test.ts).
    expect(kinds).toEqual(['policy.loaded', 'user.created', 'system.started', 'system.stopped']);
  });
});
