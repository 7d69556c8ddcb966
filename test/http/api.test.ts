import type { Database } from '../../src/db/database';
import { parseKey } from '../../src/people/keys';
import { call, startApi, type Services } from '../support/api';
import { describeEachDatabase } from '../support/databases';
import type { RunningServer } from '../../src/http/server';

type Who = 'executive' | 'approver' | 'auditor' | 'admin' | 'twin' | 'none';
const WHO: Who[] = ['executive', 'approver', 'auditor', 'admin', 'twin', 'none'];

interface Row {
  method: string;
  /** `:key` stands for a key made in beforeAll for revoking. */
  path: string;
  note?: string;
  /** A body per caller, so that the requests that succeed do not collide. */
  body?: (who: Who) => unknown;
  expect: Record<Who, number>;
}

// People's routes refuse a twin's key whatever it asks (403), and everything needs a key (401).
const people = (executive: number, approver: number, auditor: number, admin: number) => ({
  executive,
  approver,
  auditor,
  admin,
  twin: 403,
  none: 401,
});

let revocable = '';
const ROWS: Row[] = [
  { method: 'POST', path: '/v1/users', body: (w) => ({ name: `New ${w}`, roles: ['approver'] }), expect: people(403, 403, 403, 201) },
  { method: 'GET', path: '/v1/users', expect: people(403, 403, 403, 200) },
  { method: 'POST', path: '/v1/users/abe/keys', body: () => ({ label: 'spare' }), expect: people(403, 403, 403, 201) },
  { method: 'DELETE', path: '/v1/keys/:key', expect: people(403, 403, 403, 200) },
  {
    method: 'POST',
    path: '/v1/twins',
    body: (w) =>
      w === 'admin'
        ? { id: 'vic-2', owner: 'user:vic', authority: 'vic-2', mode: 'propose' }
        : { id: 'dana-sub', owner: 'user:dana', authority: 'dana-sub', mode: 'approve' },
    expect: people(201, 403, 403, 201),
  },
  { method: 'GET', path: '/v1/twins', expect: people(200, 403, 403, 200) },
  { method: 'GET', path: '/v1/twins/dana-twin', expect: people(200, 403, 403, 200) },
  { method: 'PUT', path: '/v1/twins/dana-twin/mode', body: () => ({ mode: 'approve' }), expect: people(200, 403, 403, 200) },
  {
    method: 'POST',
    path: '/v1/kill-switch',
    note: "Dana's twin",
    body: () => ({ engaged: false, twin: 'dana-twin' }),
    expect: people(200, 403, 403, 200),
  },
  { method: 'POST', path: '/v1/kill-switch', note: 'global', body: () => ({ engaged: false }), expect: people(403, 403, 403, 200) },
  { method: 'GET', path: '/v1/kill-switch', expect: people(200, 200, 200, 200) },
  { method: 'GET', path: '/v1/journal', expect: people(403, 403, 200, 200) },
  { method: 'GET', path: '/v1/journal/verify', expect: people(403, 403, 200, 200) },
];

describeEachDatabase('the HTTP API', (getDb) => {
  let db: Database;
  let s: Services & { server: RunningServer };
  let url: string;
  const keys = {} as Record<Who, string | null>;

  beforeAll(async () => {
    db = await getDb().open();
    s = await startApi(db);
    url = s.server.url;
    const add = async (id: string, roles: string[]) => (await s.people.addUser({ id, name: id, roles }, 'system')).apiKey;
    keys.admin = await add('ada', ['admin']);
    keys.executive = await add('dana', ['executive']);
    keys.approver = await add('abe', ['approver', 'cfo']);
    keys.auditor = await add('aud', ['auditor']);
    keys.none = null;
    await add('vic', ['executive']);
    keys.twin = (await s.twins.create({ id: 'dana-twin', owner: 'user:dana', authority: 'dana-twin', mode: 'propose' }, 'system')).apiKey;
    await s.twins.create({ id: 'vic-twin', owner: 'user:vic', authority: 'vic-twin', mode: 'propose' }, 'system');
    revocable = (await s.people.createKey('user:abe', 'to revoke', 'system')).keyId;
  });
  afterAll(async () => {
    await s?.server.close(1000);
    await s?.journal.stop();
    await db?.close();
  });

  const table = ROWS.flatMap((row) =>
    WHO.map((who) => [`${row.method} ${row.path}${row.note ? ` (${row.note})` : ''}`, who, row.expect[who], row] as const),
  );

  it.each(table)('%s as %s answers %i', async (_label, who, status, row) => {
    const r = await call(url + row.path.replace(':key', revocable), row.method, keys[who], row.body?.(who));
    expect({ status: r.status, body: r.body }).toMatchObject({ status });
    if (status >= 400) {
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(r.body).toMatchObject({ status, errorId: expect.any(String) });
    }
    if (status === 403) expect(r.body!.capability).toEqual(expect.any(String));
    if (status === 401) expect(r.headers.get('www-authenticate')).toBe('Bearer realm="regent"');
  });

  it('answers POST /v1/twins with 201, the fields of DESIGN.md and the twin’s own key, shown once', async () => {
    const vic = (await s.people.createKey('user:vic', null, 'system')).apiKey;
    const r = await call(`${url}/v1/twins`, 'POST', vic, { id: 'vic-3', owner: 'user:vic', authority: 'vic-3', mode: 'execute' });
    expect(r).toMatchObject({
      status: 201,
      body: { id: 'vic-3', owner: 'user:vic', authority: 'vic-3', mode: 'execute', killed: false, apiKey: expect.stringMatching(/^rgt_/) },
    });
    expect(await s.people.authenticate(r.body!.apiKey)).toMatchObject({ kind: 'twin', id: 'vic-3', owner: 'user:vic' });
    expect((await call(`${url}/v1/twins/vic-3`, 'GET', vic)).body!.apiKey).toBeUndefined();
    // The twin's key is for the twin routes; people's routes refuse it, whatever it asks.
    const asTwin = await call(`${url}/v1/twins/vic-3`, 'GET', r.body!.apiKey);
    expect(asTwin.status).toBe(403);
    expect(asTwin.body!.detail).toMatch(/^twin:vic-3 uses a twin's key, which only works on the twin routes/);
    expect(
      (await call(`${url}/v1/twins`, 'POST', vic, { id: 'vic-3', owner: 'user:vic', authority: 'vic-3', mode: 'execute' })).status,
    ).toBe(409);
  });

  it('lets an executive set only their own twin’s mode, journaled with from and to', async () => {
    const other = await call(`${url}/v1/twins/vic-twin/mode`, 'PUT', keys.executive, { mode: 'execute' });
    expect(other.status).toBe(403);
    expect(other.body).toMatchObject({
      capability: 'twin.setMode',
      detail: 'user:dana lacks the capability twin.setMode for a twin of user:vic',
    });
    expect((await s.twins.get('vic-twin')).mode).toBe('propose');
    const own = await call(`${url}/v1/twins/dana-twin/mode`, 'PUT', keys.executive, { mode: 'execute' });
    expect(own).toMatchObject({ status: 200, body: { id: 'dana-twin', mode: 'execute' } });
    const [last] = (await s.journal.list({ kind: 'twin.mode_changed', subject: 'twin:dana-twin' })).slice(-1);
    expect(last).toMatchObject({ actor: 'user:dana', data: { from: 'approve', to: 'execute' } });
    expect((await call(`${url}/v1/twins/nope/mode`, 'PUT', keys.executive, { mode: 'execute' })).status).toBe(404);
  });

  it('does not let an executive create a twin for someone else', async () => {
    const r = await call(`${url}/v1/twins`, 'POST', keys.executive, {
      id: 'vic-twin',
      owner: 'user:vic',
      authority: 'vic-twin',
      mode: 'execute',
    });
    expect(r).toMatchObject({ status: 403, body: { capability: 'twin.create' } });
  });

  it('engages and releases the kill switch over HTTP, per twin and globally, journaled', async () => {
    const engaged = await call(`${url}/v1/kill-switch`, 'POST', keys.executive, { engaged: true, twin: 'dana-twin' });
    expect(engaged).toMatchObject({
      status: 200,
      body: { engaged: true, twin: 'dana-twin', previous: false, state: { engaged: false, twins: ['dana-twin'] } },
    });
    expect(await s.twins.isHalted('dana-twin')).toBe(true);
    expect((await call(`${url}/v1/kill-switch`, 'POST', keys.executive, { engaged: true, twin: 'vic-twin' })).status).toBe(403);
    expect((await call(`${url}/v1/kill-switch`, 'POST', keys.admin, { engaged: true })).body).toMatchObject({
      engaged: true,
      state: { engaged: true, updatedBy: 'user:ada' },
    });
    expect(await s.twins.isHalted('vic-twin')).toBe(true);
    expect((await call(`${url}/v1/kill-switch`, 'GET', keys.approver)).body).toMatchObject({ engaged: true, twins: [] });
    await call(`${url}/v1/kill-switch`, 'POST', keys.admin, { engaged: false });
    await call(`${url}/v1/kill-switch`, 'POST', keys.admin, { engaged: false, twin: 'dana-twin' });
    expect(await s.twins.isHalted('dana-twin')).toBe(false);
    const presses = (await s.journal.list({ kind: 'kill_switch.changed', limit: 1000 })).filter((e) => (e.data as { changed?: boolean }).changed);
    expect(presses.slice(-4).map((e) => [e.actor, e.subject, (e.data as { engaged?: boolean }).engaged])).toEqual([
      ['user:dana', 'twin:dana-twin', true],
      ['user:ada', 'switch:kill', true],
      ['user:ada', 'switch:kill', false],
      ['user:ada', 'twin:dana-twin', false],
    ]);
    expect((await call(`${url}/v1/kill-switch`, 'POST', keys.admin, { engaged: true, twin: 'nope' })).status).toBe(404);
  });

  it('refuses missing, malformed, unknown and revoked keys with 401, journaled without the key', async () => {
    const { apiKey, keyId } = await s.people.createKey('user:abe', null, 'system');
    const secret = parseKey(apiKey)!.secret;
    expect((await call(`${url}/v1/kill-switch`, 'GET', apiKey)).status).toBe(200);
    await call(`${url}/v1/keys/${keyId}`, 'DELETE', keys.admin);
    for (const [header, reason] of [
      [`Bearer ${apiKey}`, 'revoked'],
      [`Bearer ${apiKey.slice(0, -2)}xx`, 'wrong_secret'],
      ['Bearer nonsense', 'malformed'],
      [`Basic ${apiKey}`, 'malformed'],
    ] as const) {
      const res = await fetch(`${url}/v1/kill-switch`, { headers: { authorization: header } });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="regent", error="invalid_token"');
      expect(await res.json()).toMatchObject({ status: 401, title: 'Authentication required' });
      const [last] = (await s.journal.list({ kind: 'auth.refused', limit: 10_000 })).slice(-1);
      expect(last).toMatchObject({ actor: 'system', data: { status: 401, reason, method: 'GET', path: '/v1/kill-switch' } });
    }
    const refusals = JSON.stringify(await s.journal.list({ kind: 'auth.refused', limit: 10_000 }));
    expect(refusals).not.toContain(secret);
    expect(refusals).not.toContain(secret.slice(0, -2));
  });

  it('journals a 403 with the caller and the missing capability', async () => {
    await call(`${url}/v1/users`, 'GET', keys.auditor);
    const [last] = (await s.journal.list({ kind: 'auth.refused', actor: 'user:aud', limit: 10_000 })).slice(-1);
    expect(last).toMatchObject({ data: { status: 403, capability: 'user.manage', method: 'GET', path: '/v1/users' } });
  });

  it.each([
    ['POST', '/v1/users', '{"name":'],
    ['POST', '/v1/twins', '{"id":"x",}'],
    ['PUT', '/v1/twins/dana-twin/mode', "{'mode':'execute'}"],
    ['POST', '/v1/kill-switch', 'true'],
    ['POST', '/v1/users/abe/keys', '"x"'],
  ])('answers malformed JSON to %s %s with 400 problem+json', async (method, path, raw) => {
    const r = await call(url + path, method, keys.admin, undefined, raw);
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(r.body!.detail).toMatch(/^malformed JSON body/);
  });

  it.each([
    ['POST', '/v1/users', { name: 'X', roles: ['approver'], admin: true }, 'body.admin'],
    ['POST', '/v1/users', { name: 'X', roles: ['cfo'] }, 'body.roles'],
    ['POST', '/v1/users', { name: 42, roles: ['approver'] }, 'body.name'],
    ['POST', '/v1/users', [], 'body'],
    ['POST', '/v1/users', undefined, 'body'],
    ['POST', '/v1/twins', { id: 'Bad Id!', owner: 'user:vic', authority: 'vic-twin' }, 'body.id'],
    ['POST', '/v1/twins', { id: 'vic-twin', owner: 'vic', authority: 'vic-twin' }, 'body.owner'],
    ['POST', '/v1/twins', { id: 'vic-3', owner: 'user:vic', authority: 'no-such' }, 'authority'],
    ['POST', '/v1/twins', { id: 'vic-3', owner: 'user:nobody', authority: 'vic-twin' }, 'owner'],
    ['PUT', '/v1/twins/dana-twin/mode', { mode: 'yolo' }, 'body.mode'],
    ['PUT', '/v1/twins/dana-twin/mode', { mode: 'execute', reason: 'x' }, 'body.reason'],
    ['POST', '/v1/kill-switch', { engaged: 'yes' }, 'body.engaged'],
    ['POST', '/v1/kill-switch', { engaged: true, twin: 7 }, 'body.twin'],
    ['POST', '/v1/users/abe/keys', { label: ['x'] }, 'body.label'],
    ['GET', '/v1/journal?limit=0', undefined, 'query.limit'],
    ['GET', '/v1/journal?afterSeq=-1', undefined, 'query.afterSeq'],
    ['GET', '/v1/journal?from=yesterday', undefined, 'query.from'],
    ['GET', '/v1/journal?kind=a&kind=b', undefined, 'query.kind'],
    ['GET', '/v1/journal?sort=desc', undefined, 'query.sort'],
    // What storage or the journal would refuse after a write is refused before it.
    ['POST', '/v1/users', { name: 'a\u0000b', roles: ['approver'] }, 'body.name'],
    ['POST', '/v1/users', { name: 'x\ud800', roles: ['approver'] }, 'body.name'],
    ['POST', '/v1/users/abe/keys', { label: 'a\u0000' }, 'body.label'],
    ['GET', '/v1/journal?kind=%00', undefined, 'query.kind'],
  ])('answers %s %s %j with 400 naming %s', async (method, path, body, field) => {
    const r = await call(url + path, method, keys.admin, body);
    expect({ status: r.status, field: r.body!.field }).toEqual({ status: 400, field });
    expect(r.body!.detail).toMatch(new RegExp(`^${field.replace('.', '\\.')}: `));
  });

  it.each([
    ['GET', '/v1/twins/%00'],
    ['PUT', '/v1/twins/%E2%98%83/mode'],
    ['POST', '/v1/users/%00/keys'],
    ['DELETE', '/v1/keys/%00'],
    ['DELETE', '/v1/keys/' + 'x'.repeat(500)],
  ])('answers %s %s, an id that cannot exist, with 404 rather than a storage error', async (method, path) => {
    const r = await call(url + path, method, keys.admin, method === 'PUT' ? { mode: 'execute' } : method === 'POST' ? {} : undefined);
    expect(r.status).toBe(404);
  });

  it('answers conflicts with 409 and unknown ids with 404', async () => {
    expect((await call(`${url}/v1/users`, 'POST', keys.admin, { id: 'dana', name: 'Dana Again', roles: ['approver'] })).status).toBe(409);
    expect((await call(`${url}/v1/users/nobody/keys`, 'POST', keys.admin, {})).status).toBe(404);
    expect((await call(`${url}/v1/keys/000000000000`, 'DELETE', keys.admin)).status).toBe(404);
    expect((await call(`${url}/v1/twins/nobody`, 'GET', keys.admin)).status).toBe(404);
  });

  it('adds a user over HTTP whose key signs in at once with the roles given', async () => {
    const r = await call(`${url}/v1/users`, 'POST', keys.admin, { name: 'Zoë Auditor', roles: ['auditor'] });
    expect(r).toMatchObject({ status: 201, body: { id: 'zoe-auditor', roles: ['auditor'], apiKey: expect.stringMatching(/^rgt_/) } });
    expect((await call(`${url}/v1/journal?limit=1`, 'GET', r.body!.apiKey)).status).toBe(200);
    const listed = (await call(`${url}/v1/users`, 'GET', keys.admin)).body!.users.find((u: { id: string }) => u.id === 'zoe-auditor');
    expect(listed.keys).toHaveLength(1);
    expect(JSON.stringify(listed)).not.toContain(r.body!.apiKey);
  });

  it('pages through the journal with filters and a cursor', async () => {
    const all = (await call(`${url}/v1/journal?kind=user.created&limit=1000`, 'GET', keys.auditor)).body!;
    expect(all.nextCursor).toBeNull();
    expect(all.entries.length).toBeGreaterThan(3);
    const seen: number[] = [];
    let cursor: number | null = 0;
    while (cursor !== null) {
      const page: { entries: { seq: number; kind: string }[]; nextCursor: number | null } = (
        await call(`${url}/v1/journal?kind=user.created&limit=2&afterSeq=${cursor}`, 'GET', keys.auditor)
      ).body as never;
      expect(page.entries.length).toBeLessThanOrEqual(2);
      for (const e of page.entries) expect(e.kind).toBe('user.created');
      seen.push(...page.entries.map((e) => e.seq));
      cursor = page.nextCursor;
    }
    expect(seen).toEqual(all.entries.map((e: { seq: number }) => e.seq));

    const byActor = (await call(`${url}/v1/journal?actor=user:dana&subject=twin:dana-twin&kind=twin.mode_changed`, 'GET', keys.auditor))
      .body!;
    expect(byActor.entries.length).toBeGreaterThan(0);
    for (const e of byActor.entries) expect(e).toMatchObject({ actor: 'user:dana', subject: 'twin:dana-twin' });
    const future = (await call(`${url}/v1/journal?from=2999-01-01T00:00:00Z`, 'GET', keys.auditor)).body!;
    expect(future).toEqual({ entries: [], nextCursor: null });
    const past = (await call(`${url}/v1/journal?to=2000-01-01T00:00:00%2B01:00`, 'GET', keys.auditor)).body!;
    expect(past.entries).toEqual([]);
  });

  it('verifies the live journal against the instance’s own key', async () => {
    const r = await call(`${url}/v1/journal/verify`, 'GET', keys.auditor);
    const head = await s.journal.head();
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ok: true, keySource: 'argument', vkey: s.journal.vkey, size: head.size, root: head.root });
  });
});
