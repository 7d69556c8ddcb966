import fs from 'node:fs';
import path from 'node:path';
import { EnvSchema, loadConfig } from '../../src/config/config';

describe('configuration', () => {
  it('starts from defaults with an empty environment', () => {
    const c = loadConfig({});
    expect(c.port).toBe(3000);
    expect(c.database.kind).toBe('embedded');
    expect(c.dataDir).toBe(path.resolve('./data'));
  });

  it('uses PostgreSQL when DATABASE_URL is set', () => {
    const c = loadConfig({ DATABASE_URL: 'postgresql://u:p@db:5432/regent' });
    expect(c.database).toMatchObject({ kind: 'postgres', url: 'postgresql://u:p@db:5432/regent' });
  });

  it.each([
    [{ PORT: 'eighty' }, /^PORT: must be a whole number \(got "eighty"\)$/],
    [{ PORT: '70000' }, /^PORT: .*65535/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL: .*"loud"/],
    [{ DATABASE_URL: 'mysql://x' }, /^DATABASE_URL: must be a postgres/],
    [{ REGENT_SIGNING_KEY: 'hunter2' }, /^REGENT_SIGNING_KEY: must be a signing key/],
    [{ REGENT_JOURNAL_ORIGIN: 'has space' }, /^REGENT_JOURNAL_ORIGIN:/],
    [{ REGENT_WEBHOOK_URL: 'ftp://x' }, /^REGENT_WEBHOOK_URL: must be an http\(s\) URL/],
    [{ REGENT_WEBHOOK_URL: 'https://hooks.example/regent' }, /^REGENT_WEBHOOK_SECRET: is required when REGENT_WEBHOOK_URL is set/],
    [{ REGENT_WEBHOOK_URL: 'https://hooks.example/regent', REGENT_WEBHOOK_SECRET: 'short' }, /^REGENT_WEBHOOK_SECRET: must be at least 16/],
  ])('refuses %j with one line naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('never echoes a secret value in its error', () => {
    expect(() => loadConfig({ REGENT_SIGNING_KEY: 'hunter2' })).toThrow(expect.objectContaining({ message: expect.not.stringContaining('hunter2') }));
    expect(() => loadConfig({ DATABASE_URL: 'mysql://u:hunter2@x' })).toThrow(expect.objectContaining({ message: expect.not.stringContaining('hunter2') }));
  });

  it('documents every variable it reads in .env.example', () => {
    const example = fs.readFileSync(path.resolve(__dirname, '../../.env.example'), 'utf8');
    for (const name of Object.keys(EnvSchema.shape)) expect(example).toMatch(new RegExp(`^#? ?${name}=`, 'm'));
  });
});
