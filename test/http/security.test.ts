import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../src/config/config';
import type { Database } from '../../src/db/database';
import { createHttpApp, type HttpDeps } from '../../src/http/app';
import { listen, type RunningServer } from '../../src/http/server';
import { call, startServices, type Services } from '../support/api';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from '../support/databases';
import { silentLog } from '../support/journal';

type Jose = typeof import('jose', { with: { 'resolution-mode': 'import' } });

describe('configuration of the HTTP guards', () => {
  it('defaults to CORS off, 600 requests a minute per key, 30 refused sign-ins a minute, 256 KiB bodies, no OIDC', () => {
    const c = loadConfig({});
    expect(c.http).toEqual({ corsOrigins: [], rateLimitPerMinute: 600, authFailuresPerMinute: 30, maxBodyBytes: 262144, metricsToken: undefined, trustProxy: [] });
    expect(c.oidc).toBeUndefined();
  });

  it('reads an origin allow-list and OIDC settings', () => {
    const c = loadConfig({
      REGENT_CORS_ORIGINS: 'https://a.example, http://127.0.0.1:8080',
      REGENT_OIDC_ISSUER: 'https://login.example/',
      REGENT_OIDC_AUDIENCE: 'regent',
      REGENT_OIDC_JWKS_URL: 'https://login.example/jwks',
      REGENT_OIDC_ROLES_CLAIM: 'realm_access.roles',
    });
    expect(c.http.corsOrigins).toEqual(['https://a.example', 'http://127.0.0.1:8080']);
    expect(loadConfig({ REGENT_TRUST_PROXY: 'loopback, 10.0.0.0/8, 2001:db8::1' }).http.trustProxy).toEqual(['loopback', '10.0.0.0/8', '2001:db8::1']);
    expect(c.oidc).toEqual({
      issuer: 'https://login.example/',
      audience: 'regent',
      jwksUrl: 'https://login.example/jwks',
      userClaim: 'sub',
      rolesClaim: 'realm_access.roles',
    });
  });

  it.each([
    [{ REGENT_CORS_ORIGINS: 'https://a.example/path' }, /^REGENT_CORS_ORIGINS: must be a comma-separated list of origins/],
    [{ REGENT_CORS_ORIGINS: '*' }, /^REGENT_CORS_ORIGINS: must be a comma-separated list of origins/],
    [{ REGENT_RATE_LIMIT_PER_MINUTE: 'lots' }, /^REGENT_RATE_LIMIT_PER_MINUTE: must be a whole number/],
    [{ REGENT_MAX_BODY_BYTES: '10' }, /^REGENT_MAX_BODY_BYTES: /],
    [{ REGENT_METRICS_TOKEN: 'short' }, /^REGENT_METRICS_TOKEN: must be at least 16 characters$/],
    [{ REGENT_TRUST_PROXY: 'true' }, /^REGENT_TRUST_PROXY: must be loopback, linklocal, uniquelocal, an IP address or a CIDR range/],
    [{ REGENT_TRUST_PROXY: '10.0.0.0/33' }, /^REGENT_TRUST_PROXY: must be loopback, linklocal, uniquelocal, an IP address or a CIDR range/],
    [{ REGENT_TRUST_PROXY: ' , ' }, /^REGENT_TRUST_PROXY: must name at least one proxy/],
    [{ REGENT_OIDC_ISSUER: 'https://login.example/' }, /^REGENT_OIDC_AUDIENCE: is required with the other REGENT_OIDC_ settings/],
    [
      { REGENT_OIDC_ISSUER: 'https://i/', REGENT_OIDC_AUDIENCE: 'a', REGENT_OIDC_JWKS_URL: 'http://login.example/jwks' },
      /^REGENT_OIDC_JWKS_URL: must be https unless it is on this machine/,
    ],
  ])('refuses %j with one line naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });
});

async function startWith(db: Database, http: HttpDeps['http'], extra: Partial<HttpDeps> = {}): Promise<Services & { server: RunningServer }> {
  const s = await startServices(db);
  const app = createHttpApp({ db, journal: s.journal, log: silentLog, people: s.people, twins: s.twins, http, ...extra });
  return { ...s, server: await listen(app, '127.0.0.1', 0, silentLog) };
}

describe('HTTP guards', () => {
  let tdb: TestDatabase;
  let db: Database;
  let s: Services & { server: RunningServer };
  let url: string;
  let admin: string;

  beforeAll(async () => {
    tdb = await createTestDatabase('embedded');
    db = await tdb.open();
    s = await startWith(db, { corsOrigins: ['https://console.example'], rateLimitPerMinute: 0, authFailuresPerMinute: 1000, maxBodyBytes: 2048 });
    url = s.server.url;
    admin = (await s.people.addUser({ id: 'ada', name: 'Ada', roles: ['admin'] }, 'system')).apiKey;
  });
  afterAll(async () => {
    await s?.server.close(1000);
    await s?.journal.stop();
    await db?.close();
    await tdb?.drop();
  });

  it('sends helmet’s headers with a same-origin CSP (scripts and styles from self only), and never caches API answers', async () => {
    for (const p of ['/healthz', '/docs', '/v1/kill-switch']) {
      const res = await fetch(url + p, { headers: { authorization: `Bearer ${admin}` } });
      const csp = res.headers.get('content-security-policy')!;
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("style-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("object-src 'none'");
      expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('x-powered-by')).toBeNull();
    }
    expect((await fetch(`${url}/v1/kill-switch`, { headers: { authorization: `Bearer ${admin}` } })).headers.get('cache-control')).toBe('no-store');
  });

  it('answers CORS for listed origins only', async () => {
    const allowed = await fetch(`${url}/v1/kill-switch`, { headers: { authorization: `Bearer ${admin}`, origin: 'https://console.example' } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://console.example');
    expect(allowed.headers.get('vary')).toMatch(/Origin/);
    expect(allowed.headers.get('access-control-allow-credentials')).toBeNull();
    const preflight = await fetch(`${url}/v1/twins`, {
      method: 'OPTIONS',
      headers: { origin: 'https://console.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
    expect(preflight.headers.get('access-control-allow-methods')).toMatch(/POST/);

    const other = await fetch(`${url}/v1/kill-switch`, { headers: { authorization: `Bearer ${admin}`, origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const otherPreflight = await fetch(`${url}/v1/twins`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(otherPreflight.status).toBe(403);
    expect(otherPreflight.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await otherPreflight.json()) as { detail: string }).detail).toBe(
      'origin https://evil.example may not call this API from a browser (it is not in REGENT_CORS_ORIGINS)',
    );
  });

  it('sends no CORS header at all by default', async () => {
    const other = await startWith(db, {});
    try {
      const res = await fetch(`${other.server.url}/v1/kill-switch`, { headers: { authorization: `Bearer ${admin}`, origin: 'https://console.example' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      const preflight = await fetch(`${other.server.url}/v1/twins`, { method: 'OPTIONS', headers: { origin: 'https://console.example', 'access-control-request-method': 'POST' } });
      expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await other.server.close(500);
    }
  });

  it('answers a body over the limit with 413 problem+json naming the limit', async () => {
    const r = await call(`${url}/v1/users`, 'POST', admin, { name: 'x'.repeat(4000), roles: ['auditor'] });
    expect(r.status).toBe(413);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(r.body).toMatchObject({ status: 413, title: 'Payload too large', detail: 'request body is larger than the limit of 2048 bytes' });
  });

  it.each([
    ['GET', '/v1/twins/%E0%A4%A', undefined, undefined, 400],
    ['GET', '/v1/journal/entries/%ZZ', undefined, undefined, 400],
    ['POST', '/v1/users', 'application/json; charset=utf-7', '{}', 400],
    ['POST', '/v1/users', 'application/json', '{"name":"x","roles":["auditor"],"__proto__":{"admin":true}}', 400],
    ['POST', '/v1/users', 'text/plain', 'name=x', 400],
    ['GET', '/v1/journal?limit=1&limit=2', undefined, undefined, 400],
    ['GET', '/v1/journal?kind[a]=b', undefined, undefined, 400],
  ])('answers %s %s (%s) with a 4xx problem, never a 5xx', async (method, p, type, body, status) => {
    const res = await fetch(url + p, { method, headers: { authorization: `Bearer ${admin}`, ...(type ? { 'content-type': type } : {}) }, body });
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await res.json()) as { detail: string }).detail).toEqual(expect.any(String));
  });

  it('records when each key was last used, at most once a minute', async () => {
    const { apiKey, keyId } = await s.people.createKey('user:ada', 'usage', 'system');
    const lastUsed = async () => (await s.people.listKeys('user:ada')).find((k) => k.id === keyId)!.lastUsedAt;
    expect(await lastUsed()).toBeNull();
    await call(`${url}/v1/kill-switch`, 'GET', apiKey);
    const first = await lastUsed();
    expect(first).not.toBeNull();
    expect(Date.now() - Date.parse(first!)).toBeLessThan(10_000);
    await new Promise((r) => setTimeout(r, 20));
    await call(`${url}/v1/kill-switch`, 'GET', apiKey);
    expect(await lastUsed()).toBe(first);
    const listed = (await call(`${url}/v1/users`, 'GET', admin)).body!.users.find((u: { id: string }) => u.id === 'ada');
    expect(listed.keys.find((k: { id: string }) => k.id === keyId).lastUsedAt).toBe(first);
  });
});

describeEachDatabase('rate limits', (getDb) => {
  let db: Database;
  let s: Services & { server: RunningServer };

  beforeAll(async () => {
    db = await getDb().open();
    s = await startWith(db, { rateLimitPerMinute: 3, authFailuresPerMinute: 2 });
  });
  afterAll(async () => {
    await s?.server.close(1000);
    await s?.journal.stop();
    await db?.close();
  });

  it('limits requests per API key with 429 problem+json and Retry-After; other keys are not affected', async () => {
    const a = (await s.people.addUser({ id: 'ann', name: 'Ann', roles: ['auditor'] }, 'system')).apiKey;
    const b = (await s.people.addUser({ id: 'bob', name: 'Bob', roles: ['auditor'] }, 'system')).apiKey;
    const url = `${s.server.url}/v1/kill-switch`;
    for (let i = 0; i < 3; i++) expect((await call(url, 'GET', a)).status).toBe(200);
    const limited = await call(url, 'GET', a);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.headers.get('ratelimit-policy')).toMatch(/3/);
    expect(limited.body).toMatchObject({ status: 429, title: 'Too many requests', errorId: expect.any(String) });
    expect(limited.body!.detail).toMatch(/^API key [0-9a-f]{12} made more than 3 requests in a minute; try again in \d+ s$/);
    expect((await call(url, 'GET', b)).status).toBe(200);
    // The first refused request of the window is journaled, not every one after it.
    expect((await call(url, 'GET', a)).status).toBe(429);
    const refused = (await s.journal.list({ kind: 'auth.refused', actor: 'user:ann', limit: 10_000 })).map((e) => e.data);
    expect(refused).toEqual([expect.objectContaining({ status: 429, reason: 'rate_limited', method: 'GET', path: '/v1/kill-switch', limitPerMinute: 3 })]);
  });

  it('limits refused sign-ins per address, journaling only the first one over the limit, and still lets good keys in', async () => {
    const good = (await s.people.addUser({ id: 'cy', name: 'Cy', roles: ['auditor'] }, 'system')).apiKey;
    const url = `${s.server.url}/v1/kill-switch`;
    const before = (await s.journal.list({ kind: 'auth.refused', limit: 10_000 })).length;
    expect((await call(url, 'GET', 'rgt_000000000000_' + 'x'.repeat(43))).status).toBe(401);
    expect((await call(url, 'GET', null)).status).toBe(401);
    const third = await call(url, 'GET', 'nonsense');
    expect(third.status).toBe(429);
    expect(third.body!.detail).toMatch(/^too many refused sign-ins from this address \(more than 2 a minute\); try again in \d+ s$/);
    expect((await call(url, 'GET', 'nonsense')).status).toBe(429);
    const refusals = (await s.journal.list({ kind: 'auth.refused', limit: 10_000 })).slice(before);
    expect(refusals.map((e) => (e.data as { status?: number }).status)).toEqual([401, 401, 429]);
    expect(refusals[2]!.data).toMatchObject({ rateLimited: true, reason: 'malformed' });
    expect((await call(url, 'GET', good)).status).toBe(200);
    // Not behind a trusted proxy: a client cannot escape the limit by claiming another address.
    const spoofed = await fetch(url, { headers: { authorization: 'Bearer nonsense', 'x-forwarded-for': '198.51.100.7' } });
    expect(spoofed.status).toBe(429);
  });

  it('behind a trusted proxy, counts refused sign-ins per client the proxy names', async () => {
    const behind = await startWith(db, { authFailuresPerMinute: 2, trustProxy: ['loopback'] });
    try {
      const url = `${behind.server.url}/v1/kill-switch`;
      const from = (client: string) => fetch(url, { headers: { authorization: 'Bearer nonsense', 'x-forwarded-for': client } }).then((r) => r.status);
      expect([await from('203.0.113.1'), await from('203.0.113.1'), await from('203.0.113.1')]).toEqual([401, 401, 429]);
      expect(await from('203.0.113.2')).toBe(401); // another client behind the same balancer
    } finally {
      await behind.server.close(1000);
      await behind.journal.stop();
    }
  });
});

describe('OIDC bearer tokens', () => {
  let jose: Jose;
  let tdb: TestDatabase;
  let db: Database;
  let s: Services & { server: RunningServer };
  let jwksServer: http.Server;
  let jwksUrl: string;
  let jwksUp = true;
  let key: CryptoKey;
  let stranger: CryptoKey;
  const issuer = 'https://login.test/';
  const audience = 'regent-test';

  beforeAll(async () => {
    jose = await import('jose');
    const pair = await jose.generateKeyPair('ES256', { extractable: true });
    key = pair.privateKey;
    stranger = (await jose.generateKeyPair('ES256')).privateKey;
    const jwk = { ...(await jose.exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    jwksServer = http.createServer((_req, res) => {
      if (!jwksUp) {
        res.statusCode = 500;
        res.end('down');
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
    jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;
    tdb = await createTestDatabase('embedded');
    db = await tdb.open();
    s = await startWith(db, { authFailuresPerMinute: 1000 }, { oidc: { issuer, audience, jwksUrl, userClaim: 'preferred_username', rolesClaim: undefined } });
    await s.people.addUser({ id: 'dana', name: 'Dana', roles: ['executive', 'cfo'] }, 'system');
    await s.people.addUser({ id: 'aud', name: 'Aud', roles: ['auditor'] }, 'system');
  });
  afterAll(async () => {
    await s?.server.close(1000);
    await s?.journal.stop();
    await db?.close();
    await tdb?.drop();
    await new Promise((r) => jwksServer?.close(r));
  });

  const token = (claims: Record<string, unknown>, opts: { exp?: string | number; iss?: string; aud?: string; signer?: CryptoKey; kid?: string } = {}) =>
    new jose.SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: opts.kid ?? 'k1' })
      .setIssuer(opts.iss ?? issuer)
      .setAudience(opts.aud ?? audience)
      .setSubject('idp-123')
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? '5m')
      .sign(opts.signer ?? key);

  const me = (t: string, base = s.server.url) => call(`${base}/v1/me`, 'GET', t);

  it('signs in a Regent user named by the configured claim, with the roles Regent records', async () => {
    const r = await me(await token({ preferred_username: 'dana' }));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ kind: 'user', id: 'dana', ref: 'user:dana', roles: ['executive', 'cfo'] });
    expect(r.body!.capabilities).toContain('twin.create');
    // And the principal is authorized like anyone with those roles.
    expect((await call(`${s.server.url}/v1/journal`, 'GET', await token({ preferred_username: 'dana' }))).status).toBe(403);
    expect((await call(`${s.server.url}/v1/journal`, 'GET', await token({ preferred_username: 'aud' }))).status).toBe(200);
  });

  it('signs in a twin named twin:<id> (a machine token issued to an agent); an unknown twin is refused', async () => {
    await s.people.addUser({ id: 'vic', name: 'Vic', roles: ['executive'] }, 'system').catch(() => undefined);
    await s.twins.create({ id: 'vic-twin', owner: 'user:vic', authority: 'vic-twin', mode: 'execute' }, 'user:vic');
    const r = await me(await token({ preferred_username: 'twin:vic-twin' }));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ kind: 'twin', id: 'vic-twin', ref: 'twin:vic-twin' });
    const none = await me(await token({ preferred_username: 'twin:nobody' }));
    expect(none.status).toBe(401);
    expect(none.body!.detail).toMatch(/names no Regent twin/);
  });

  it.each([
    ['expired', async () => token({ preferred_username: 'dana' }, { exp: Math.floor(Date.now() / 1000) - 3600 }), /^the bearer token was refused: the token expired at /],
    ['for another audience', async () => token({ preferred_username: 'dana' }, { aud: 'someone-else' }), /^the bearer token was refused: the token's aud claim is not accepted here/],
    ['from another issuer', async () => token({ preferred_username: 'dana' }, { iss: 'https://evil.test/' }), /^the bearer token was refused: the token's iss claim is not accepted here/],
    ['signed by a key the provider does not publish', async () => token({ preferred_username: 'dana' }, { signer: stranger, kid: 'k2' }), /signed with a key the identity provider does not publish/],
    ['with a forged signature', async () => token({ preferred_username: 'dana' }, { signer: stranger }), /signature does not verify/],
    ['naming nobody', async () => token({ preferred_username: 'nobody' }), /^the bearer token was refused: the token's preferred_username "nobody" names no Regent user$/],
    ['without the user claim', async () => token({}), /has no preferred_username claim/],
    [
      'with a shared-secret algorithm',
      async () =>
        new jose.SignJWT({ preferred_username: 'dana' })
          .setProtectedHeader({ alg: 'HS256' })
          .setIssuer(issuer)
          .setAudience(audience)
          .setExpirationTime('5m')
          .sign(new TextEncoder().encode('x'.repeat(32))),
      /signature algorithm is not accepted/,
    ],
  ])('refuses a token %s with 401, journaled without the token', async (_what, make, detail) => {
    const t = await make();
    const r = await me(t);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="regent", error="invalid_token"');
    expect(r.body!.detail).toMatch(detail);
    const [last] = (await s.journal.list({ kind: 'auth.refused', limit: 10_000 })).slice(-1);
    expect((last!.data as { reason?: string }).reason).toMatch(/^oidc_/);
    expect(JSON.stringify(last)).not.toContain(t.split('.')[2]!);
  });

  it('takes roles from the token when a roles claim is configured', async () => {
    const other = await startWith(db, {}, { oidc: { issuer, audience, jwksUrl, userClaim: 'preferred_username', rolesClaim: 'realm_access.roles' } });
    try {
      const r = await me(await token({ preferred_username: 'dana', realm_access: { roles: ['auditor', 'role:cfo', 'Not A Role'] } }), other.server.url);
      expect(r.body).toMatchObject({ id: 'dana', appRoles: ['auditor'] });
      expect((await call(`${other.server.url}/v1/journal`, 'GET', await token({ preferred_username: 'dana', realm_access: { roles: ['auditor'] } }))).status).toBe(200);
      const none = await me(await token({ preferred_username: 'dana' }), other.server.url);
      expect(none.status).toBe(401);
      expect(none.body!.detail).toMatch(/has no realm_access.roles claim/);
    } finally {
      await other.server.close(500);
    }
  });

  it('fails closed with 503 when the identity provider’s keys cannot be fetched', async () => {
    const fresh = await startWith(db, {}, { oidc: { issuer, audience, jwksUrl, userClaim: 'preferred_username', rolesClaim: undefined } });
    jwksUp = false;
    try {
      const r = await me(await token({ preferred_username: 'dana' }), fresh.server.url);
      expect(r.status).toBe(503);
      expect(r.body!.detail).toMatch(/^cannot verify the token right now: the identity provider's keys at http:\/\/127\.0\.0\.1:\d+\/jwks could not be fetched; try again$/);
    } finally {
      jwksUp = true;
      await fresh.server.close(500);
    }
  });

  it('refuses a JWT where OIDC is not configured, saying so', async () => {
    const plain = await startWith(db, {});
    try {
      const r = await me(await token({ preferred_username: 'dana' }), plain.server.url);
      expect(r.status).toBe(401);
      expect(r.body!.detail).toBe('this server takes Regent API keys (rgt_…) only: sign-in with identity provider tokens is not configured');
    } finally {
      await plain.server.close(500);
    }
  });
});
