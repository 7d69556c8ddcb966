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
