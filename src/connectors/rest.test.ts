import type { Database } from '../db/database';
import { createTestDatabase, type TestDatabase } from '../../test/support/databases';
import { loadConnectorsFromSources } from './load';
import { planRequest } from './rest';
import { startReceiver, type Receiver } from './testing/receiver';
import type { Connector } from './types';

const SECRET = 'crm-secret-4f1d9a';

function crmYaml(baseUrl: string, extra = '') {
  return `
kind: Connector
id: crm
type: rest
baseUrl: ${baseUrl}
auth: { header: Authorization, scheme: Bearer, secretEnv: CRM_TOKEN }
operations:
  - action: crm.discount.update
    method: POST
    path: /accounts/{account}/discount
    idempotent: true
    timeoutMs: 300
    retries: 2
    input:
      type: object
      required: [account, discountPct, amount]
      properties: { account: { type: string }, discountPct: { type: number }, amount: { type: string } }
    attributes: { counterparty: account, amount: amount, discountPct: discountPct }
  - action: crm.note.create
    method: POST
    path: /accounts/{account}/notes
    timeoutMs: 300
    input:
      type: object
      required: [account, text]
      properties: { account: { type: string }, text: { type: string } }
  - action: crm.account.get
    method: GET
    path: /accounts/{account}
    input:
      type: object
      required: [account]
      properties: { account: { type: string }, fields: { type: array, items: { type: string } } }
${extra}`;
}

let tdb: TestDatabase;
let db: Database;
let keyN = 0;
const newKey = () => `key-${process.pid}-${Date.now()}-${++keyN}`;

beforeAll(async () => {
  tdb = await createTestDatabase('embedded');
  db = await tdb.open();
});
afterAll(async () => {
  await db?.close();
  await tdb?.drop();
});

let receiver: Receiver | undefined;
afterEach(async () => {
  await receiver?.close();
  receiver = undefined;
});

function crm(baseUrl: string): Connector {
  const loaded = loadConnectorsFromSources(
    [{ file: 'policies/connectors/crm.yaml', text: crmYaml(baseUrl) }],
    { CRM_TOKEN: SECRET },
    { sql: db.sql, restBackoffMs: 5 },
  );
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  return loaded.registry.connectors.get('crm')!;
}

const discount = { account: 'acme', discountPct: 12, amount: '12000.00' };

describe('the REST connector', () => {
  test('sends the input as the JSON body to the URL-encoded path with the idempotency key and its bearer secret', async () => {
    receiver = await startReceiver();
    const key = newKey();
    const result = await crm(receiver.url).execute('crm.discount.update', { ...discount, account: 'a b/c?d' }, key);
    expect(result).toEqual({ ok: true, result: { status: 200, body: { ok: true, n: 1 } } });
    expect(receiver.requests).toHaveLength(1);
    const [req] = receiver.requests;
    expect(req!.method).toBe('POST');
    expect(req!.url).toBe('/accounts/a%20b%2Fc%3Fd/discount');
    expect(req!.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(req!.headers['idempotency-key']).toBe(key);
    expect(req!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(req!.body)).toEqual({ ...discount, account: 'a b/c?d' });
  });

  test('the CRM receives exactly one request per idempotency key, and a repeat returns the recorded answer', async () => {
    receiver = await startReceiver();
    const c = crm(receiver.url);
    const key = newKey();
    const first = await c.execute('crm.discount.update', discount, key);
    const second = await c.execute('crm.discount.update', discount, key);
    const other = await c.execute('crm.discount.update', discount, newKey());
    expect(second).toEqual(first);
    expect(other.ok).toBe(true);
    expect(receiver.requests.map((r) => r.headers['idempotency-key'])).toEqual([key, expect.not.stringMatching(key)]);
  });

  test('an idempotent operation is retried on 503 with the same key until it succeeds', async () => {
    receiver = await startReceiver((_req, n) => (n < 3 ? { status: 503, body: 'busy' } : {}));
    const key = newKey();
    const result = await crm(receiver.url).execute('crm.discount.update', discount, key);
    expect(result.ok).toBe(true);
    expect(receiver.requests).toHaveLength(3);
    expect(new Set(receiver.requests.map((r) => r.headers['idempotency-key']))).toEqual(new Set([key]));
  });

  test('an idempotent operation that keeps failing with 5xx gives up after its retries, retryable', async () => {
    receiver = await startReceiver(() => ({ status: 500, body: 'down' }));
    const result = await crm(receiver.url).execute('crm.discount.update', discount, newKey());
    expect(result).toEqual({ ok: false, retryable: true, error: expect.stringContaining('HTTP 500') });
    expect(receiver.requests).toHaveLength(3); // 1 + retries: 2
  });

  test('a non-idempotent POST is never retried on 503, and the uncertain outcome is not retryable', async () => {
    receiver = await startReceiver(() => ({ status: 503, body: 'busy' }));
    const key = newKey();
    const result = await crm(receiver.url).execute('crm.note.create', { account: 'acme', text: 'hi' }, key);
    expect(receiver.requests).toHaveLength(1);
    expect(result).toMatchObject({ ok: false, retryable: false, inDoubt: { lastHeard: expect.stringContaining('HTTP 503') } });
    expect(!result.ok && result.error).toContain(`check crm for idempotency key ${key}`);
    // and the outbox asking again with the same key does not send it again
    await crm(receiver.url).execute('crm.note.create', { account: 'acme', text: 'hi' }, key);
    expect(receiver.requests).toHaveLength(1);
  });

  test('a 4xx answer is a non-retryable failure with the status and a truncated body', async () => {
    receiver = await startReceiver(() => ({ status: 422, body: `discount too deep ${'x'.repeat(5000)}` }));
    const result = await crm(receiver.url).execute('crm.discount.update', discount, newKey());
    expect(receiver.requests).toHaveLength(1); // idempotent, yet a refusal is not retried
    expect(result).toMatchObject({ ok: false, retryable: false });
    const error = !result.ok ? result.error : '';
    expect(error).toContain('HTTP 422 from crm for POST /accounts/acme/discount: discount too deep');
    expect(error.length).toBeLessThan(500);
  });

  test('a request that outlives its timeout is abandoned, and retried only when idempotent', async () => {
    receiver = await startReceiver(() => ({ delayMs: 2000 }));
    const c = crm(receiver.url);
    const idem = await c.execute('crm.discount.update', discount, newKey());
    // No answer to the last attempt: should retries run out, it may have acted (in doubt, not failed).
    expect(idem).toEqual({
      ok: false,
      retryable: true,
      maybeSent: true,
      error: expect.stringContaining('did not answer POST /accounts/acme/discount within 300 ms'),
    });
    expect(receiver.requests).toHaveLength(3);
    const onceKey = newKey();
    const once = await c.execute('crm.note.create', { account: 'acme', text: 'hi' }, onceKey, { executor: 'executor-t' });
    expect(once).toMatchObject({
      ok: false,
      retryable: false,
      error: expect.stringContaining('outcome unknown'),
      inDoubt: {
        sentBy: 'executor-t',
        sentAt: expect.any(String),
        lastHeard: expect.stringContaining('did not answer POST /accounts/acme/notes within 300 ms'),
        checkIn: `crm for idempotency key ${onceKey}`,
      },
    });
    expect(receiver.requests).toHaveLength(4);
  });

  test('a refused connection is retryable even for a non-idempotent operation, since nothing was sent', async () => {
    receiver = await startReceiver();
    const url = receiver.url;
    await receiver.close();
    receiver = undefined;
    const result = await crm(url).execute('crm.note.create', { account: 'acme', text: 'hi' }, newKey());
    expect(result).toEqual({ ok: false, retryable: true, error: expect.stringContaining('crm unreachable') });
  });

  test('GET sends what the path does not take as the query string, without a body', async () => {
    receiver = await startReceiver(() => ({ body: { id: 'acme' } }));
    const result = await crm(receiver.url).execute('crm.account.get', { account: 'acme', fields: ['tier', 'owner'] }, newKey());
    expect(result).toEqual({ ok: true, result: { status: 200, body: { id: 'acme' } } });
    expect(receiver.requests[0]).toMatchObject({ method: 'GET', url: '/accounts/acme?fields=tier&fields=owner', body: '' });
  });

  test('host and path escapes through input values are refused or stay encoded under the declared path', async () => {
    receiver = await startReceiver();
    const c = crm(receiver.url);
    const attempts = [
      '..',
      '.',
      '',
      '../../admin',
      '//evil.example/x',
      'http://evil.example',
      '@evil.example',
      '%2e%2e',
      '..\\..\\admin',
      'acme#frag',
      'acme?x=1',
    ];
    const results = [];
    for (const account of attempts)
      results.push({ account, r: await c.execute('crm.discount.update', { ...discount, account }, newKey()) });
    for (const { account, r } of results) {
      if (['..', '.', ''].includes(account)) expect(r).toMatchObject({ ok: false, retryable: false });
      else expect(r.ok).toBe(true);
    }
    // Everything that arrived is one encoded segment under /accounts/…/discount on this host.
    expect(receiver.requests).toHaveLength(attempts.length - 3);
    for (const req of receiver.requests) {
      expect(req.url).toMatch(/^\/accounts\/[^/?#]+\/discount$/);
      expect(req.headers.host).toBe(new URL(receiver.url).host);
    }
  });

  test('a planned request never leaves the declared origin, whatever the value', () => {
    const values = [
      '..',
      '../x',
      '/\\evil',
      '//evil.example',
      'http://evil.example/',
      '\u0000',
      '%2F..%2F',
      '\\\\evil',
      '.%2e',
      'a/../../b',
      '\n..',
    ];
    for (const account of values) {
      try {
        const p = planRequest('http://127.0.0.1:9911/api', { method: 'POST', path: '/accounts/{account}/discount' }, { account });
        expect(p.url.origin).toBe('http://127.0.0.1:9911');
        expect(p.url.pathname.startsWith('/api/accounts/')).toBe(true);
        expect(p.url.pathname.endsWith('/discount')).toBe(true);
      } catch (err) {
        expect((err as Error).message).toMatch(/cannot be used in a URL path|would leave/);
      }
    }
  });

  test('a redirect is not followed, so the credential never reaches another host', async () => {
    const elsewhere = await startReceiver();
    try {
      receiver = await startReceiver(() => ({ status: 307, headers: { Location: `${elsewhere.url}/steal` }, body: '' }));
      const result = await crm(receiver.url).execute('crm.discount.update', discount, newKey());
      expect(result).toMatchObject({ ok: false, retryable: false, error: expect.stringContaining('HTTP 307') });
      expect(elsewhere.requests).toHaveLength(0);
    } finally {
      await elsewhere.close();
    }
  });

  test('simulate shows the request that would be sent, without sending it or its credential', async () => {
    receiver = await startReceiver();
    const sim = await crm(receiver.url).simulate('crm.discount.update', discount);
    expect(sim).toEqual({
      summary: `POST ${receiver.url}/accounts/acme/discount`,
      details: {
        connector: 'crm',
        action: 'crm.discount.update',
        method: 'POST',
        url: `${receiver.url}/accounts/acme/discount`,
        headers: { Authorization: 'Bearer ***', 'Idempotency-Key': '(the idempotency key)', 'Content-Type': 'application/json' },
        body: discount,
      },
    });
    expect(receiver.requests).toHaveLength(0);
  });

  test('input that fails the declared schema is refused before anything is sent', async () => {
    receiver = await startReceiver();
    const c = crm(receiver.url);
    const r = await c.execute('crm.discount.update', { account: 'acme', discountPct: '12', amount: '1', extra: true }, newKey());
    expect(r).toMatchObject({ ok: false, retryable: false, error: expect.stringMatching(/discountPct.*extra|extra.*discountPct/s) });
    await expect(c.simulate('crm.discount.update', { account: 'acme' })).rejects.toThrow(/invalid input for crm.discount.update/);
    expect(receiver.requests).toHaveLength(0);
  });

  test('after a crash mid-call an idempotent operation is resent with the same key; a non-idempotent one is reported, not resent', async () => {
    receiver = await startReceiver();
    const c = crm(receiver.url);
    const idemKey = newKey();
    const onceKey = newKey();
    // What a process that died after recording `started` leaves behind.
    for (const [key, action] of [
      [idemKey, 'crm.discount.update'],
      [onceKey, 'crm.note.create'],
    ]) {
      await db.sql.query(`INSERT INTO connector_calls (idempotency_key, connector, action, status) VALUES ($1, 'crm', $2, 'started')`, [
        key,
        action,
      ]);
    }
    expect(await c.execute('crm.discount.update', discount, idemKey)).toMatchObject({ ok: true });
    expect(receiver.requests.map((r) => r.headers['idempotency-key'])).toEqual([idemKey]);
    const r = await c.execute('crm.note.create', { account: 'acme', text: 'hi' }, onceKey);
    expect(r).toMatchObject({ ok: false, retryable: false, inDoubt: { lastHeard: null, checkIn: `crm for idempotency key ${onceKey}` } });
    expect(!r.ok && r.error).toMatch(new RegExp(`^outcome unknown after a crash.*check crm for idempotency key ${onceKey}`));
    expect(receiver.requests).toHaveLength(1);
  });

  test('the operation exposes its schema and the attributes the policy sees', () => {
    const op = crm('http://127.0.0.1:9911').operations.get('crm.discount.update')!;
    expect(op.idempotent).toBe(true);
    expect(op.attributes({ ...discount })).toEqual({ counterparty: 'acme', amount: '12000.00', discountPct: 12 });
    expect(op.inputJsonSchema).toMatchObject({
      type: 'object',
      additionalProperties: false,
      required: ['account', 'discountPct', 'amount'],
    });
    expect(crm('http://127.0.0.1:9911').operations.get('crm.note.create')!.idempotent).toBe(false);
    expect(crm('http://127.0.0.1:9911').operations.get('crm.account.get')!.idempotent).toBe(true);
  });
});
