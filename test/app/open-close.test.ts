import fs from 'node:fs';
import path from 'node:path';
import { openRegent } from '../../src/app';
import { loadConfig } from '../../src/config/config';
import { tmpDir } from '../support/databases';
import { silentLog } from '../support/journal';
import { copyPolicies } from '../support/regent-api';

// A clean stop (regent serve on SIGTERM) is checked in test/cli/cli.test.ts; the key removed after
// a refused signing key in test/journal/signing-key.test.ts.
describe('a start refused part way', () => {
  it('stops what it had started: the embedded database is closed again, and the next start opens it', async () => {
    const dataDir = tmpDir();
    const policies = copyPolicies({ 'connectors/broken.yaml': 'kind: Connector\nid: broken\ntype: rest\n' });
    const config = loadConfig({ REGENT_DATA_DIR: dataDir, REGENT_POLICIES_DIR: policies, REGENT_CHECKPOINT_INTERVAL_MS: '60000' });
    await expect(openRegent(config, silentLog, { command: 'jest', policies: 'load' })).rejects.toThrow(
      /^connectors refused: policies\/connectors\/broken\.yaml:\d+: /,
    );
    expect(fs.existsSync(path.join(dataDir, 'regent.lock'))).toBe(false);

    fs.rmSync(path.join(policies, 'connectors', 'broken.yaml'));
    const regent = await openRegent(config, silentLog, { command: 'jest', policies: 'load' });
    await regent.close();
    expect(fs.existsSync(path.join(dataDir, 'regent.lock'))).toBe(false);
  });
});
