import type { Database } from '../../src/db/database';
import { ConflictError, InputError, NotFoundError } from '../../src/errors/errors';
import { parseKey } from '../../src/people/keys';
import { slugOf } from '../../src/people/types';
import { startServices, type Services } from '../support/api';
import { describeEachDatabase } from '../support/databases';

describeEachDatabase('people and their API keys', (getDb) => {
  let db: Database;
  let s: Services;

  beforeAll(async () => {
    db = await getDb().open();
    s = await startServices(db);
  });
  afterAll(async () => {
    await s?.journal.stop();
    await db?.close();
  });

  it('creates exactly one first admin, even when several starts race, and never again', async () => {
    const results = await Promise.all([s.people.ensureFirstAdmin(), s.people.ensureFirstAdmin(), s.people.ensureFirstAdmin()]);
    const created = results.filter((r) => r !== null);
    expect(created).toHaveLength(1);
    expect(created[0]!.user).toMatchObject({ id: 'admin', roles: ['admin'] });
    expect(await s.people.authenticate(created[0]!.apiKey)).toMatchObject({ kind: 'user', id: 'admin', appRoles: ['admin'] });
    expect(await s.people.ensureFirstAdmin()).toBeNull();
    expect((await s.journal.list({ kind: 'user.created', subject: 'user:admin' })).map((e) => e.actor)).toEqual(['system']);
  });

  it('adds a user with an id made from the name and a key in the documented format, journaled with the actor', async () => {
    const { user, apiKey, keyId } = await s.people.addUser({ name: 'Dana Müller', roles: ['executive', 'role:cfo'] }, 'user:admin');
    expect(user).toMatchObject({ id: 'dana-muller', name: 'Dana Müller', roles: ['executive', 'cfo'], disabledAt: null });
    expect(apiKey).toMatch(/^rgt_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(parseKey(apiKey)!.id).toBe(keyId);
    const [entry] = await s.journal.list({ kind: 'user.created', subject: 'user:dana-muller' });
    expect(entry).toMatchObject({ actor: 'user:admin', data: { name: 'Dana Müller', roles: ['executive', 'cfo'], keyId } });
    expect(JSON.stringify(entry)).not.toContain(parseKey(apiKey)!.secret);
  });

  it('stores only a hash of the secret: no table or journal entry contains the key', async () => {
    const { apiKey } = await s.people.addUser({ id: 'hash-check', name: 'Hash Check', roles: ['auditor'] }, 'system');
    const secret = parseKey(apiKey)!.secret;
    const dump = JSON.stringify([
      await db.sql.query('SELECT * FROM api_keys'),
      await db.sql.query('SELECT * FROM users'),
      await db.sql.query('SELECT * FROM journal_entries'),
    ]);
    expect(dump).not.toContain(secret);
    expect(dump).not.toContain(apiKey);
    const [row] = await db.sql.query<{ hash: string }>('SELECT hash FROM api_keys WHERE id = $1', [parseKey(apiKey)!.id]);
    expect(row!.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('never lists a key with its hash or secret', async () => {
    const keys = await s.people.listKeys('user:hash-check');
    expect(keys).toHaveLength(1);
    expect(Object.keys(keys[0]!).sort()).toEqual(['createdAt', 'id', 'label', 'lastUsedAt', 'principal', 'revokedAt']);
  });

  it('refuses a user without a Regent role, a bad role name, an unknown field, and a name without a usable id', async () => {
    await expect(s.people.addUser({ name: 'Carl', roles: ['cfo'] }, 'system')).rejects.toThrow(
      /user.roles: needs at least one of executive, approver, auditor, admin/,
    );
    await expect(s.people.addUser({ name: 'Carl', roles: ['Approver!'] }, 'system')).rejects.toThrow(InputError);
    await expect(s.people.addUser({ name: 'Carl', roles: [] }, 'system')).rejects.toThrow(/user.roles/);
    await expect(s.people.addUser({ name: 'Carl', roles: ['approver'], extra: 1 } as never, 'system')).rejects.toThrow(
      /user.extra: is not a known field/,
    );
    await expect(s.people.addUser({ name: '***', roles: ['approver'] }, 'system')).rejects.toThrow(/gives no usable id/);
    await expect(s.people.addUser({ name: 'Carl', roles: ['approver'] }, 'dana')).rejects.toThrow(/actor "dana" must look like user:<id>/);
    expect(await s.people.findUser('carl')).toBeUndefined();
  });

  it('refuses a duplicate id with a conflict and leaves no second key behind', async () => {
    const before = (await s.people.listKeys()).length;
    await expect(s.people.addUser({ name: 'Dana Müller', roles: ['approver'] }, 'system')).rejects.toThrow(ConflictError);
    expect((await s.people.listKeys()).length).toBe(before);
  });

  it('makes further keys only for existing users, each shown once and working on its own', async () => {
    const a = await s.people.createKey('user:dana-muller', 'laptop', 'user:admin');
    expect(a.key).toMatchObject({ principal: 'user:dana-muller', label: 'laptop', revokedAt: null });
    expect(await s.people.authenticate(a.apiKey)).toMatchObject({
      kind: 'user',
      id: 'dana-muller',
      roles: ['executive', 'cfo'],
      appRoles: ['executive'],
      keyId: a.keyId,
    });
    expect((await s.journal.list({ kind: 'user.key_created', subject: `key:${a.keyId}` }))[0]).toMatchObject({
      actor: 'user:admin',
      data: { principal: 'user:dana-muller', label: 'laptop' },
    });
    await expect(s.people.createKey('user:nobody', null, 'system')).rejects.toThrow(NotFoundError);
  });

  it('refuses a revoked key on the very next request, and journals the revocation once', async () => {
    const { apiKey, keyId } = await s.people.createKey('user:dana-muller', 'to revoke', 'system');
    expect(await s.people.authenticate(apiKey)).not.toBeNull();
    await s.people.revokeKey(keyId, 'user:admin');
    expect(await s.people.authenticate(apiKey)).toBeNull();
    expect(await s.people.identify(apiKey)).toEqual({ ok: false, reason: 'revoked', keyId });
    expect((await s.people.revokeKey(keyId, 'user:admin')).revokedAt).not.toBeNull();
    expect(await s.journal.list({ kind: 'user.key_revoked', subject: `key:${keyId}` })).toHaveLength(1);
    await expect(s.people.revokeKey('000000000000', 'system')).rejects.toThrow(NotFoundError);
  });

  it('refuses malformed tokens, unknown ids and wrong secrets alike', async () => {
    const { apiKey, keyId } = await s.people.createKey('user:dana-muller', null, 'system');
    const wrong = apiKey.slice(0, -1) + (apiKey.endsWith('A') ? 'B' : 'A');
    expect(await s.people.identify(wrong)).toEqual({ ok: false, reason: 'wrong_secret', keyId });
    expect(await s.people.identify('rgt_ffffffffffff_' + 'a'.repeat(43))).toEqual({ ok: false, reason: 'unknown', keyId: 'ffffffffffff' });
    expect(await s.people.identify('hunter2')).toEqual({ ok: false, reason: 'malformed' });
  });

  it('refuses keys of a disabled user', async () => {
    const { apiKey } = await s.people.addUser({ id: 'leaver', name: 'Leaver', roles: ['approver'] }, 'system');
    await db.sql.query(`UPDATE users SET disabled_at = now() WHERE id = 'leaver'`);
    expect(await s.people.identify(apiKey)).toMatchObject({ ok: false, reason: 'disabled' });
  });

  it('records when a key was last used, at most once a minute', async () => {
    const { apiKey, keyId } = await s.people.createKey('user:dana-muller', null, 'system');
    const lastUsed = async () => (await s.people.listKeys('user:dana-muller')).find((k) => k.id === keyId)!.lastUsedAt;
    expect(await lastUsed()).toBeNull();
    await s.people.authenticate(apiKey);
    const first = await lastUsed();
    expect(first).not.toBeNull();
    await new Promise((r) => setTimeout(r, 20));
    await s.people.authenticate(apiKey);
    expect(await lastUsed()).toBe(first);
    await db.sql.query(`UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE id = $1`, [keyId]);
    const old = await lastUsed();
    await s.people.authenticate(apiKey);
    expect(Date.parse((await lastUsed())!)).toBeGreaterThan(Date.parse(old!));
  });
});

describe('ids made from names', () => {
  it.each([
    ['Dana Müller', 'dana-muller'],
    ['  Vic  O’Brien ', 'vic-o-brien'],
    ['ÅSA', 'asa'],
    ['!!!', ''],
  ])('%j becomes %j', (name, id) => expect(slugOf(name)).toBe(id));
});
