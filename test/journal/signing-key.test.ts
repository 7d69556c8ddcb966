import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { openRegent } from '../../src/app';
import { loadConfig } from '../../src/config/config';
import { createTestDatabase, describePostgres, tmpDir, type TestDatabase } from '../support/databases';
import { silentLog } from '../support/journal';

/** Several processes on one database must sign with one key (the deployment guide's rule). */
describePostgres('a process whose signing key did not sign the journal', () => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase('postgres');
  });
  afterAll(async () => {
    await tdb?.drop();
  });

  it('is refused, naming REGENT_SIGNING_KEY, and leaves no key of its own behind', async () => {
    const first = await openRegent(loadConfig({ ...tdb.env, REGENT_DATA_DIR: tmpDir() }), silentLog, { command: 'jest' });
    await first.journal.append({ kind: 'audit.note', actor: 'user:ann', data: { text: 'signed by the first key' } });
    await first.close(); // writes a checkpoint signed with the first process's key

    const dataDir = tmpDir();
    const config = loadConfig({ ...tdb.env, REGENT_DATA_DIR: dataDir });
    await expect(openRegent(config, silentLog, { command: 'jest' })).rejects.toThrow(/did not sign the journal's latest checkpoint .* set REGENT_SIGNING_KEY/);
    expect(fs.existsSync(path.join(dataDir, 'keys', 'journal.key'))).toBe(false);
    expect(fs.existsSync(path.join(dataDir, 'keys', 'journal.vkey'))).toBe(false);
    // So the next start is refused for the same reason, not with a stray key made last time.
    await expect(openRegent(config, silentLog, { command: 'jest' })).rejects.toThrow(/set REGENT_SIGNING_KEY/);
  });
});

/** Found trying it: three `regent serve` started at once on one data directory made two keys. */
describe('processes creating the journal signing key at the same moment', () => {
  it('end with one key: the first made wins and the others read it back', async () => {
    const dataDir = tmpDir();
    const keys = path.resolve(__dirname, '../../dist/src/journal/keys.js');
    // Real processes, started together, each creating the key if it is absent.
    const script = `const k = require(${JSON.stringify(keys)}); const s = k.loadOrCreateSigner({ dataDir: process.argv[1], origin: 'race.regent.test/journal' }); process.stdout.write(JSON.stringify({ vkey: s.vkey, created: s.created }));`;
    const runs = await Promise.all(
      Array.from({ length: 6 }, () =>
        new Promise<{ vkey: string; created: boolean }>((resolve, reject) => {
          const child = spawn(process.execPath, ['-e', script, dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          let err = '';
          child.stdout.on('data', (d) => (out += d));
          child.stderr.on('data', (d) => (err += d));
          // 'close', not 'exit': a child's output may still be on its way when it has exited.
          child.on('close', (code) => {
            try {
              if (code !== 0) throw new Error(`exited ${code}: ${err}`);
              resolve(JSON.parse(out));
            } catch (e) {
              reject(e);
            }
          });
        }),
      ),
    );
    expect(new Set(runs.map((r) => r.vkey)).size).toBe(1);
    expect(runs.filter((r) => r.created)).toHaveLength(1);
    expect(fs.readFileSync(path.join(dataDir, 'keys', 'journal.vkey'), 'utf8').trim()).toBe(runs[0]!.vkey);
    expect(fs.readdirSync(path.join(dataDir, 'keys')).sort()).toEqual(['journal.key', 'journal.vkey']);
  });
});
