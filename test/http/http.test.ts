import { PassThrough } from 'node:stream';
import type { Database } from '../../src/db/database';
import { createHttpApp } from '../../src/http/app';
import { listen, type RunningServer } from '../../src/http/server';
import { createLogger } from '../../src/log/logger';
import type { JournalService } from '../../src/journal/service';
import { createTestDatabase, type TestDatabase } from '../support/databases';
import { startJournal } from '../support/journal';

describe('the HTTP server', () => {
  let tdb: TestDatabase;
  let db: Database;
  let journal: JournalService;
  let server: RunningServer;
  const logLines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase('embedded');
    db = await tdb.open();
    journal = await startJournal(db);
    const stream = new PassThrough();
    stream.on('data', (chunk) => {
      for (const line of String(chunk).split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
    });
    const log = createLogger('http', { stream });
    server = await listen(createHttpApp({ db, journal, log }), '127.0.0.1', 0, log);
  });
  afterAll(async () => {
    await server?.close(1000);
    await journal?.stop();
    await db?.close();
    await tdb?.drop();
  });

  it('answers /healthz with ok and the version', async () => {
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', version: expect.any(String) });
  });

  it('answers /readyz with ok once the database is reachable and migrated', async () => {
    const res = await fetch(`${server.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', database: 'embedded', migrations: 'applied' });
  });

  it('echoes a sane request id and logs it with the request', async () => {
    const res = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'req-abc.1' } });
    expect(res.headers.get('x-request-id')).toBe('req-abc.1');
    await new Promise((r) => setTimeout(r, 20));
    expect(logLines.some((l) => l.requestId === 'req-abc.1' && l.path === '/healthz')).toBe(true);
  });

  it('replaces an unsafe request id with a fresh one', async () => {
    const res = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'x'.repeat(300) } });
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers an unknown route with problem+json whose error id is also in the log', async () => {
    const res = await fetch(`${server.url}/nope`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const body = (await res.json()) as { errorId: string; detail: string; status: number };
    expect(body).toMatchObject({ status: 404, detail: 'no route for GET /nope' });
    expect(body.errorId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers malformed JSON with 400 problem+json, no stack trace, and logs the same error id', async () => {
    const res = await fetch(`${server.url}/v1/anything`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":' });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(text).not.toMatch(/at .*\.js:\d+/);
    const body = JSON.parse(text) as { errorId: string; detail: string };
    expect(body.detail).toMatch(/^malformed JSON body/);
    await new Promise((r) => setTimeout(r, 20));
    expect(logLines.some((l) => l.errorId === body.errorId)).toBe(true);
  });

  it('answers a body over the size limit with 413 problem+json', async () => {
    const res = await fetch(`${server.url}/v1/anything`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ x: 'y'.repeat(300_000) }) });
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/larger than the limit/);
  });

  it('reports not ready when no valid policy bundle is in force, and ready with its version otherwise', async () => {
    const log = createLogger('error', { silent: true });
    for (const [version, status] of [[null, 503], ['sha256:' + 'a'.repeat(64), 200]] as const) {
      const s = await listen(createHttpApp({ db, journal, policy: { version: () => version }, log }), '127.0.0.1', 0, log);
      const res = await fetch(`${s.url}/readyz`);
      expect(res.status).toBe(status);
      const body = (await res.json()) as Record<string, unknown>;
      if (version) expect(body.policyVersion).toBe(version);
      else expect(body.reason).toMatch(/no valid policy bundle/);
      await s.close(500);
    }
  });

  it('reports not ready, with the reason, when the database is gone', async () => {
    const other = await createTestDatabase('embedded');
    const odb = await other.open();
    const oj = await startJournal(odb);
    const log = createLogger('error', { silent: true });
    const s = await listen(createHttpApp({ db: odb, journal: oj, log }), '127.0.0.1', 0, log);
    await oj.stop();
    await odb.close();
    const res = await fetch(`${s.url}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: 'unavailable', reason: expect.stringMatching(/database unreachable/) });
    await s.close(500);
    await other.drop();
  });
});
