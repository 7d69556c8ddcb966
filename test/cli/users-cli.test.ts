import type { ChildProcess } from 'node:child_process';
import { regent, regentAsync, regentInProcess } from '../support/cli';
import { describeEachDatabase } from '../support/databases';

/** Starts `regent serve` and resolves with everything it printed once it listens. */
function serve(env: Record<string, string>): Promise<{ child: ChildProcess; out: () => string; url: string }> {
  const child = regentAsync(['serve'], { ...env, PORT: '0' });
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      // The sign-in line, when there is one, comes right after the policies line.
      if (m && /^Policies: .*$/m.test(out)) setTimeout(() => resolve({ child, out: () => out, url: m[1]! }), 50);
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
  });
}

async function stop(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

describe('regent users --help', () => {
  // The binary prints the first; the others run in this process (test/support/cli.ts).
  it.each([
    [['users'], regent],
    [['users', 'add'], regentInProcess],
    [['users', 'list'], regentInProcess],
    [['users', 'key'], regentInProcess],
    [['users', 'revoke-key'], regentInProcess],
  ] as const)(
    'prints help for %j and exits 0',
    async (args, run) => {
      const r = await run([...args, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Usage: regent users/);
    },
  );
});

describeEachDatabase('regent users', (getDb) => {
  let env: Record<string, string>;
  beforeAll(() => {
    env = getDb().env;
  });

  it('adds a user and prints exactly {"id","apiKey"} with --json', () => {
    const r = regent(['users', 'add', '--name', 'Dana Fischer', '--role', 'executive', '--role', 'approver,cfo', '--json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out)).toEqual(['id', 'apiKey']);
    expect(out.id).toBe('dana-fischer');
    expect(out.apiKey).toMatch(/^rgt_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
  });

  it('refuses a duplicate id, a user without a Regent role and a missing --name, each with one line', async () => {
    const dup = await regentInProcess(['users', 'add', '--name', 'Dana Fischer', '--role', 'approver', '--json'], env);
    expect(dup.code).toBe(1);
    expect(dup.stderr.trim()).toBe('regent: a user with id "dana-fischer" already exists (give another with id)');
    const noRole = await regentInProcess(['users', 'add', '--name', 'Carl', '--role', 'cfo', '--json'], env);
    expect(noRole.code).toBe(1);
    expect(noRole.stderr.trim()).toBe('regent: user.roles: needs at least one of executive, approver, auditor, admin');
    expect((await regentInProcess(['users', 'add', '--role', 'approver'], env)).stderr).toMatch(/required option '--name <name>' not specified/);
  });

  it('lists users with their keys but never a key, makes new keys and revokes them', async () => {
    const made = JSON.parse((await regentInProcess(['users', 'key', '--user', 'dana-fischer', '--label', 'laptop', '--json'], env)).stdout);
    expect(made).toMatchObject({
      id: 'dana-fischer',
      keyId: expect.stringMatching(/^[0-9a-f]{12}$/),
      apiKey: expect.stringMatching(/^rgt_/),
    });
    const listed = await regentInProcess(['users', 'list', '--json'], env);
    expect(listed.stdout).not.toContain(made.apiKey.slice(18));
    const dana = JSON.parse(listed.stdout).find((u: { id: string }) => u.id === 'dana-fischer');
    expect(dana).toMatchObject({ name: 'Dana Fischer', roles: ['executive', 'approver', 'cfo'] });
    expect(dana.keys.map((k: { label: string }) => k.label)).toEqual(['initial', 'laptop']);

    const revoked = await regentInProcess(['users', 'revoke-key', made.keyId, '--actor', 'user:dana-fischer'], env);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toBe(`revoked key ${made.keyId} of user:dana-fischer\n`);
    const after = JSON.parse((await regentInProcess(['users', 'list', '--json'], env)).stdout).find((u: { id: string }) => u.id === 'dana-fischer');
    expect(after.keys.find((k: { id: string }) => k.id === made.keyId).revokedAt).not.toBeNull();
    expect((await regentInProcess(['users', 'revoke-key', '000000000000'], env)).stderr.trim()).toBe('regent: no API key 000000000000');
    expect((await regentInProcess(['users', 'key', '--user', 'nobody'], env)).stderr.trim()).toBe('regent: no user user:nobody');
  });
});

describeEachDatabase('the first start', (getDb) => {
  it('creates exactly one admin, prints how to sign in once, and the key works', async () => {
    const env = getDb().env;
    const first = await serve(env);
    const m = /^Sign in at (http:\/\/\S+) with API key (rgt_\S+), shown once$/m.exec(first.out());
    expect(m).not.toBeNull();
    expect(m![1]).toBe(first.url);
    const users = await fetch(`${first.url}/v1/users`, { headers: { authorization: `Bearer ${m![2]}` } });
    expect(users.status).toBe(200);
    expect(((await users.json()) as { users: { id: string; roles: string[] }[] }).users.map((u) => [u.id, u.roles])).toEqual([
      ['admin', ['admin']],
    ]);
    expect(await stop(first.child)).toBe(0);

    const second = await serve(env);
    expect(second.out()).not.toMatch(/Sign in at/);
    expect(await stop(second.child)).toBe(0);
    const listed = JSON.parse((await regentInProcess(['users', 'list', '--json'], env)).stdout);
    expect(listed.map((u: { id: string }) => u.id)).toEqual(['admin']);
  });
});
