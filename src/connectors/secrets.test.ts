/**
 * A connector's secret is visible to that connector alone (DESIGN.md, Connectors): it is sent to
 * the connector's own host and appears nowhere else — not in simulations, errors, recorded calls,
 * the objects a caller holds, or another connector's requests.
 */
import util from 'node:util';
import type { Database } from '../db/database';
import { createTestDatabase, type TestDatabase } from '../../test/support/databases';
import { checkConnectorSources, formatConnectorErrors, loadConnectorsFromSources } from './load';
import { startReceiver, type Receiver } from './testing/receiver';
import { startSmtpReceiver } from './testing/smtp';
import type { ConnectorRegistry } from './types';

const CRM_SECRET = 'crm-Secret-9a8b7c6d';
const ERP_SECRET = 'erp-Secret-1f2e3d4c';
const SMTP_PASS = 'smtp-Secret-55aa66bb';
const ALL = [CRM_SECRET, ERP_SECRET, SMTP_PASS];

const rest = (id: string, baseUrl: string, envName: string, header = 'Authorization', scheme = 'scheme: Bearer, ') => `
kind: Connector
id: ${id}
type: rest
baseUrl: ${baseUrl}
auth: { header: ${header}, ${scheme}secretEnv: ${envName} }
operations:
  - action: ${id}.record.update
    method: PUT
    path: /${id}/{record}
    retries: 0
    input:
      type: object
      required: [record]
      properties: { record: { type: string }, value: { type: string } }
`;

/** Fails the test if any secret occurs anywhere in `value` (as text, JSON or inspected object). */
function expectNoSecret(value: unknown, secrets = ALL) {
  const texts = [
    typeof value === 'string' ? value : '',
    JSON.stringify(value) ?? '',
    util.inspect(value, { depth: Infinity, showHidden: true }),
  ];
  for (const t of texts) for (const s of secrets) expect(t).not.toContain(s);
}

let tdb: TestDatabase;
let db: Database;
let receiver: Receiver;
let registry: ConnectorRegistry;
let keyN = 0;
const newKey = () => `sec-${process.pid}-${Date.now()}-${++keyN}`;

beforeAll(async () => {
  tdb = await createTestDatabase('embedded');
  db = await tdb.open();
  // One receiver for both systems; it echoes every header back, as a careless or hostile server might.
  receiver = await startReceiver((req) => ({
    status: req.url.includes('/deny') ? 401 : 200,
    body: { youSent: req.headers, url: req.url },
  }));
  const loaded = loadConnectorsFromSources(
    [
      { file: 'policies/connectors/crm.yaml', text: rest('crm', receiver.url, 'CRM_TOKEN') },
      { file: 'policies/connectors/erp.yaml', text: rest('erp', receiver.url, 'ERP_KEY', 'X-Api-Key', '') },
    ],
    { CRM_TOKEN: CRM_SECRET, ERP_KEY: ERP_SECRET, UNRELATED: SMTP_PASS },
    { sql: db.sql, restBackoffMs: 1 },
  );
  if (!loaded.ok) throw new Error(formatConnectorErrors(loaded.errors));
  registry = loaded.registry;
});
afterAll(async () => {
  await registry?.close();
  await receiver?.close();
  await db?.close();
  await tdb?.drop();
});

describe("a connector's secret", () => {
  test('each request carries its own connector’s secret and never the other’s', async () => {
    const crm = registry.connectors.get('crm')!;
    const erp = registry.connectors.get('erp')!;
    await crm.execute('crm.record.update', { record: 'a', value: 'x' }, newKey());
    await erp.execute('erp.record.update', { record: 'b', value: 'y' }, newKey());
    const [toCrm, toErp] = receiver.requests.slice(-2);
    expect(toCrm!.headers.authorization).toBe(`Bearer ${CRM_SECRET}`);
    expect(toCrm!.headers['x-api-key']).toBeUndefined();
    expect(toErp!.headers['x-api-key']).toBe(ERP_SECRET);
    expect(toErp!.headers.authorization).toBeUndefined();
    expectNoSecret(toCrm, [ERP_SECRET, SMTP_PASS]);
    expectNoSecret(toErp, [CRM_SECRET, SMTP_PASS]);
  });

  test('never appears in a simulation', async () => {
    for (const [id, masked] of [
      ['crm', { Authorization: 'Bearer ***' }],
      ['erp', { 'X-Api-Key': '***' }],
    ] as const) {
      const sim = await registry.connectors.get(id)!.simulate(`${id}.record.update`, { record: 'r', value: 'v' });
      expect(sim.details.headers).toMatchObject(masked);
      expectNoSecret(sim);
    }
  });

  test('never appears in a result or error, even when the server echoes it back', async () => {
    const crm = registry.connectors.get('crm')!;
    const ok = await crm.execute('crm.record.update', { record: 'echo', value: 'x' }, newKey());
    expect(ok.ok).toBe(true);
    expect(JSON.stringify(ok)).toContain('Bearer ***'); // the echo arrived, masked
    const denied = await crm.execute('crm.record.update', { record: 'deny', value: 'x' }, newKey());
    expect(denied).toMatchObject({ ok: false, retryable: false, error: expect.stringContaining('HTTP 401') });
    expectNoSecret(ok);
    expectNoSecret(denied);
  });

  test('never appears in thrown errors or refusals', async () => {
    const crm = registry.connectors.get('crm')!;
    const thrown = await crm.simulate('crm.record.update', { record: '..' }).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(Error);
    expectNoSecret(thrown);
    expectNoSecret((thrown as Error).message);
    expectNoSecret(await crm.execute('crm.record.update', { bad: CRM_SECRET.length }, newKey()));
    expectNoSecret(await crm.execute('crm.nope', {}, newKey()));
    const unreachable = loadConnectorsFromSources(
      [{ file: 'x.yaml', text: rest('crm', 'http://127.0.0.1:1', 'CRM_TOKEN') }],
      { CRM_TOKEN: CRM_SECRET },
      { sql: db.sql },
    );
    expect(unreachable.ok).toBe(true);
    if (unreachable.ok)
      expectNoSecret(await unreachable.registry.connectors.get('crm')!.execute('crm.record.update', { record: 'a' }, newKey()));
  });

  test('never appears in the recorded connector calls', async () => {
    const rows = await db.sql.query('SELECT * FROM connector_calls');
    expect(rows.length).toBeGreaterThan(0);
    expectNoSecret(rows);
  });

  test('is not exposed by the registry, the connectors or their operations', () => {
    expectNoSecret(registry);
    for (const c of registry.connectors.values()) {
      expectNoSecret(c);
      expectNoSecret(Object.fromEntries(Object.entries(c)));
      for (const op of c.operations.values()) expectNoSecret({ ...op, schema: op.inputJsonSchema });
    }
    expectNoSecret(registry.resolve('crm.record.update'));
  });

  test('is never named by a loader error, only its variable', () => {
    // A document that fails for other reasons, with every variable set.
    const r = checkConnectorSources([{ file: 'policies/connectors/crm.yaml', text: rest('crm', 'ftp://x', 'CRM_TOKEN') }], {
      CRM_TOKEN: CRM_SECRET,
    });
    expect(r.ok).toBe(false);
    expectNoSecret(r);
    const missing = checkConnectorSources([{ file: 'policies/connectors/crm.yaml', text: rest('crm', 'http://x', 'CRM_TOKEN') }], {
      OTHER: CRM_SECRET,
    });
    expect(missing.ok ? '' : formatConnectorErrors(missing.errors)).toContain('environment variable CRM_TOKEN (auth.secretEnv) is not set');
    expectNoSecret(missing);
  });

  test('an SMTP password is used to sign in and appears in no result or error', async () => {
    const smtp = await startSmtpReceiver({ auth: { user: 'mailer', pass: 'the-right-one' } });
    try {
      const text = `
kind: Connector
id: email
type: email
smtp: { host: 127.0.0.1, port: ${smtp.port}, auth: { userEnv: SMTP_USER, passEnv: SMTP_PASS }, timeoutMs: 2000 }
from: twin@regent.example
operations: [{ action: email.send }]
`;
      const loaded = loadConnectorsFromSources([{ file: 'email.yaml', text }], { SMTP_USER: 'mailer', SMTP_PASS }, { sql: db.sql });
      if (!loaded.ok) throw new Error(formatConnectorErrors(loaded.errors));
      const email = loaded.registry.connectors.get('email')!;
      const msg = { to: ['a@acme.example'], subject: 'Hi', body: 'Hello', dataClass: 'public' };
      const r = await email.execute('email.send', msg, newKey());
      expect(smtp.failedLogins).toEqual([{ user: 'mailer', pass: SMTP_PASS }]); // it was sent, to that server only
      expect(r).toMatchObject({ ok: false, retryable: false });
      expectNoSecret(r);
      expectNoSecret(await email.simulate('email.send', msg));
      expectNoSecret(loaded.registry);
      expectNoSecret(email);
      await loaded.registry.close();
    } finally {
      await smtp.close();
    }
  });
});
