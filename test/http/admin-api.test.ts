import fs from 'node:fs';
import path from 'node:path';
import { call } from '../support/api';
import { describeEachDatabase } from '../support/databases';
import { startRegentApi, type RegentApi } from '../support/regent-api';

const SECRET = 'billing-secret-7d1e0c55aa';

const BILLING = `kind: Connector
id: billing
type: rest
baseUrl: http://127.0.0.1:9
auth: { header: Authorization, scheme: Bearer, secretEnv: REGENT_TEST_BILLING_TOKEN }
operations:
  - action: billing.invoice.send
    method: POST
    path: /invoices/{invoice}/send
    input:
      type: object
      required: [invoice]
      properties: { invoice: { type: string } }
    attributes: { counterparty: invoice }
`;

describeEachDatabase('the admin views: connectors and policies', (getDb) => {
  let api: RegentApi;

  beforeAll(async () => {
    process.env.REGENT_TEST_BILLING_TOKEN = SECRET;
    api = await startRegentApi(getDb(), { extraPolicies: { 'connectors/billing.yaml': BILLING } });
  });
  afterAll(async () => {
    await api?.close();
    delete process.env.REGENT_TEST_BILLING_TOKEN;
  });

  const get = (p: string) => call(api.url + p, 'GET', api.adminKey);

  it('lists connectors with their operations and input schemas, never a credential', async () => {
    const r = await get('/v1/connectors');
    expect(r.status).toBe(200);
    expect(r.body!.loaded).toBe(true);
    expect(r.body!.connectors.map((c: { id: string }) => c.id)).toEqual(['billing', 'sandbox']);
    const billing = r.body!.connectors[0];
    expect(billing).toEqual({
      id: 'billing',
      type: 'rest',
      health: null,
      operations: [
        { action: 'billing.invoice.send', description: null, idempotent: false, input: expect.objectContaining({ type: 'object' }), unavailable: null, suspended: false },
      ],
      pins: [],
    });
    expect(r.text).not.toContain(SECRET);
    expect(r.text).not.toContain('REGENT_TEST_BILLING_TOKEN');
    const sandbox = r.body!.connectors[1];
    expect(sandbox.operations.map((o: { action: string }) => o.action)).toContain('crm.discount.update');
  });

  it('shows policy files with their validation status against the version in force', async () => {
    const inForce = api.regent.policy!.version();
    const clean = await get('/v1/policies');
    expect(clean.status).toBe(200);
    expect(clean.body!.inForce).toMatchObject({ version: inForce, loadedBy: 'system' });
    expect(clean.body!.disk).toEqual({ valid: true, version: inForce, matchesInForce: true });
    const cfo = clean.body!.files.find((f: { file: string }) => f.file === 'policies/authorities/cfo-twin.yaml');
    expect(cfo).toMatchObject({ kind: 'authority', valid: true, errors: [], inForce: true, text: expect.stringContaining('kind: Authority') });
    expect(clean.body!.files.find((f: { file: string }) => f.file === 'policies/connectors/billing.yaml')).toMatchObject({ kind: 'connector', valid: true, inForce: null });
    expect(clean.body!.files.some((f: { file: string }) => f.file.endsWith('.example'))).toBe(false);

    // An edit that does not validate: shown with its line, while the version in force stays.
    const broken = path.join(api.policiesDir, 'authorities', 'broken.yaml');
    fs.writeFileSync(broken, 'kind: Authority\nid: broken\nversion: one\n');
    try {
      const r = await get('/v1/policies');
      expect(r.body!.inForce.version).toBe(inForce);
      expect(r.body!.disk).toEqual({ valid: false, version: null, matchesInForce: false });
      const file = r.body!.files.find((f: { file: string }) => f.file === 'policies/authorities/broken.yaml');
      expect(file.valid).toBe(false);
      expect(file.inForce).toBe(false);
      expect(file.errors.length).toBeGreaterThan(0);
      expect(file.errors[0]).toEqual({ line: expect.any(Number), message: expect.any(String) });
      expect(r.body!.errors[0].file).toBe('policies/authorities/broken.yaml');
      expect(r.body!.files.find((f: { file: string }) => f.file === 'policies/authorities/cfo-twin.yaml').valid).toBe(true);
    } finally {
      fs.rmSync(broken);
    }
  });

  it('lists the versions that have been in force, and shows one with its files', async () => {
    const inForce = api.regent.policy!.version()!;
    const list = await get('/v1/policies/versions');
    expect(list.body!.inForce).toBe(inForce);
    expect(list.body!.versions[0]).toMatchObject({ version: inForce, inForce: true, loadedBy: 'system', summary: { authorities: expect.arrayContaining(['cfo-twin']) } });
    const one = await get(`/v1/policies/versions/${inForce}`);
    expect(one.status).toBe(200);
    expect(one.body!.sources.map((s: { file: string }) => s.file)).toContain('policies/authorities/cfo-twin.yaml');
    const unknown = await get(`/v1/policies/versions/sha256:${'0'.repeat(64)}`);
    expect(unknown.status).toBe(404);
    expect(unknown.body!.detail).toMatch(/^no recorded policy version sha256:0+ /);
    const bad = await get('/v1/policies/versions/latest');
    expect(bad).toMatchObject({ status: 400, body: { field: 'path.version' } });
    expect((await get('/v1/policies/versions?limit=0')).body!.field).toBe('query.limit');
  });
});
