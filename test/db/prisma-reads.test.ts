/**
 * The management listings read through Prisma Client, and give exactly what the raw SQL reads of
 * the same rows give (one mapper per table); the client is warmed when the database opens.
 */
import { randomUUID } from 'node:crypto';
import type { Database } from '../../src/db/database';
import type { PrismaClient } from '../../src/db/prisma';
import { createObjectiveStore } from '../../src/objectives/store';
import { createPeopleStore } from '../../src/people/store';
import { createPolicyStore } from '../../src/policy/store';
import { createTwinStore } from '../../src/twins/store';
import { describeEachDatabase } from '../support/databases';

/** The client, recording which model delegates are used. */
function watched(prisma: PrismaClient): { prisma: PrismaClient; used: Set<string> } {
  const used = new Set<string>();
  const proxy = new Proxy(prisma, {
    get(target, key, receiver) {
      if (typeof key === 'string' && !key.startsWith('$')) used.add(key);
      return Reflect.get(target, key, receiver);
    },
  });
  return { prisma: proxy, used };
}

describeEachDatabase('management reads through Prisma Client', (getDb) => {
  let db: Database;

  beforeAll(async () => {
    db = await getDb().open();
  });
  afterAll(async () => {
    await db?.close();
  });

  it('warms the client up when the database opens and migrates, not when only inspected', async () => {
    expect(db.warmed).toBe(true);
    const inspect = await getDb().open({ migrate: false }).catch(() => undefined);
    // The embedded database admits one opener at a time; PostgreSQL opens a second pool.
    if (inspect) {
      expect(inspect.warmed).toBe(false);
      await inspect.warm();
      expect(inspect.warmed).toBe(true);
      await inspect.close();
    }
  });

  it('lists users and keys through Prisma, as the raw reads of each give them', async () => {
    const { prisma, used } = watched(db.prisma);
    const people = createPeopleStore(db.sql, prisma);
    await people.transaction(async (tx) => {
      await people.insertUser(tx, { id: 'zoe', name: 'Zoë', roles: ['executive', 'cfo'] });
      await people.insertUser(tx, { id: 'adam', name: 'Adam', roles: [] });
      await people.insertKey(tx, { id: 'k2', principal: 'user:zoe', hash: 'a'.repeat(64), label: null });
      await people.insertKey(tx, { id: 'k1', principal: 'user:adam', hash: 'b'.repeat(64), label: 'laptop' });
    });
    await people.revokeKey('k1');
    const users = await people.listUsers();
    expect(users.map((u) => u.id)).toEqual(['adam', 'zoe']);
    for (const u of users) expect(u).toEqual(await people.getUser(u.id));
    const keys = await people.listKeys();
    expect(keys.map((k) => k.id)).toEqual(['k1', 'k2']);
    for (const k of keys) expect(JSON.stringify(k)).toBe(JSON.stringify(await people.getKey(k.id)));
    expect(keys[0]!.revokedAt).toMatch(/Z$/);
    expect(await people.listKeys('user:zoe')).toEqual([await people.getKey('k2')]);
    expect([...used].sort()).toEqual(['apiKey', 'user']);
  });

  it('lists twins through Prisma, as the raw read of each gives them', async () => {
    const { prisma, used } = watched(db.prisma);
    const twins = createTwinStore(db.sql, prisma);
    await twins.transaction(async (tx) => {
      await twins.insert(tx, { id: 'tw-b', owner: 'user:zoe', authority: 'a', mode: 'propose' });
      await twins.insert(tx, { id: 'tw-a', owner: 'user:adam', authority: 'a', mode: 'execute' });
    });
    await twins.update('tw-b', 'killed', true);
    const all = await twins.list();
    expect(all.map((t) => t.id)).toEqual(['tw-a', 'tw-b']);
    for (const t of all) expect(JSON.stringify(t)).toBe(JSON.stringify(await twins.get(t.id)));
    expect((await twins.list('user:zoe')).map((t) => t.id)).toEqual(['tw-b']);
    expect([...used]).toEqual(['twin']);
  });

  it('reads policy history through Prisma, newest first, with sources only for one version', async () => {
    const { prisma, used } = watched(db.prisma);
    const policy = createPolicyStore(db.sql, prisma);
    const summary = { authorities: ['a'], files: ['a.yaml'], previous: null, added: ['a'], removed: [], changed: [] };
    expect(await policy.saveVersion({ version: 'v1', sources: [{ file: 'a.yaml', text: 'x: 1\n' }], summary, loadedBy: 'test' })).toBe(true);
    await new Promise((r) => setTimeout(r, 5));
    await policy.saveVersion({ version: 'v2', sources: [{ file: 'a.yaml', text: 'x: 2\n' }], summary: { ...summary, previous: 'v1' }, loadedBy: 'test' });
    const versions = await policy.listVersions();
    expect(versions.map((v) => v.version)).toEqual(['v2', 'v1']);
    expect(Object.keys(versions[0]!)).toEqual(['version', 'summary', 'loadedBy', 'createdAt']);
    expect((await policy.listVersions(1)).map((v) => v.version)).toEqual(['v2']);
    const v1 = await policy.getVersion('v1');
    expect(Object.keys(v1!)).toEqual(['version', 'sources', 'summary', 'loadedBy', 'createdAt']);
    expect(v1).toEqual({ ...versions[1], sources: [{ file: 'a.yaml', text: 'x: 1\n' }] });
    expect(await policy.getVersion('nope')).toBeUndefined();
    expect([...used]).toEqual(['policyVersion']);
  });

  it("lists a twin's objectives through Prisma, by the created_at cursor, as the raw read of each gives them", async () => {
    const { prisma, used } = watched(db.prisma);
    const objectives = createObjectiveStore(db.sql, prisma);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const id = randomUUID();
      ids.push(id);
      await objectives.transaction((tx) =>
        objectives.insert(tx, {
          id,
          twin: 'tw-a',
          owner: 'user:adam',
          createdBy: 'user:adam',
          text: `objective ${i}`,
          playbook: i === 0 ? null : 'pb',
          playbookSnapshot: i === 0 ? null : { steps: [i] },
          params: { n: i },
          constraints: {} as never,
          deadline: i === 1 ? '2030-01-01T00:00:00.000Z' : null,
          stepBudget: 5,
          planner: (i === 0 ? 'llm' : 'playbook') as never,
          signal: null,
        }),
      );
      await new Promise((r) => setTimeout(r, 5));
    }
    const list = await objectives.list({ twin: 'tw-a' });
    expect(list.map((o) => o.id)).toEqual([...ids].reverse());
    for (const o of list) expect(JSON.stringify(o)).toBe(JSON.stringify(await objectives.get(o.id)));
    const page = await objectives.list({ twin: 'tw-a', limit: 1, before: list[0]!.createdAt });
    expect(page.map((o) => o.id)).toEqual([ids[1]]);
    // A cursor with microseconds includes the millisecond it falls in, as PostgreSQL compares it.
    const micro = list[1]!.createdAt.replace('Z', '500Z');
    expect((await objectives.list({ twin: 'tw-a', before: micro })).map((o) => o.id)).toEqual([ids[1], ids[0]]);
    expect(await objectives.list({ twin: 'tw-a', status: 'completed' })).toEqual([]);
    expect(await objectives.list({ twin: 'nobody' })).toEqual([]);
    expect([...used]).toEqual(['objective']);
  });

  it('refuses a Prisma read from inside a raw transaction (it would wait for it on PGlite)', async () => {
    const people = createPeopleStore(db.sql, db.prisma);
    await expect(people.transaction(() => people.listUsers())).rejects.toThrow(/from inside it/);
  });
});
