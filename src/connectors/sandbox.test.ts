import path from 'node:path';
import type { Database } from '../db/database';
import { describeEachDatabase } from '../../test/support/databases';
import { callStatus } from './calls';
import { loadConnectors, loadConnectorsFromSources } from './load';
import { listSandboxRecords, readSandboxRecord, seedSandbox } from './sandbox';
import type { Connector, ConnectorRegistry } from './types';

const POLICIES = path.join(__dirname, '../../policies');
let keyN = 0;
const newKey = () => `sbx-${process.pid}-${Date.now()}-${++keyN}`;
const account = (sql: Database['sql'], key: string) => readSandboxRecord(sql, { system: 'crm', kind: 'account', key });

describeEachDatabase('the sandbox connector', (getDb) => {
  let db: Database;
  let registry: ConnectorRegistry;
  let sandbox: Connector;

  beforeAll(async () => {
    db = await getDb().open();
    // The shipped default: policies/connectors/sandbox.yaml, with nothing set in the environment.
    const loaded = loadConnectors(POLICIES, {}, { sql: db.sql });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    registry = loaded.registry;
    sandbox = registry.resolve('crm.discount.update')!.connector;
  });
  afterAll(async () => {
    await registry?.close();
    await db?.close();
  });

  test('before the first execution, simulate previews against the demo data without writing anything', async () => {
    const sim = await sandbox.simulate('crm.discount.update', { account: 'acme', discountPct: 7, amount: '100', currency: 'EUR' });
    expect(sim.summary).toBe("Set acme's discount from 5% to 7% (worth 100 EUR)");
    expect(await listSandboxRecords(db.sql)).toEqual([]);
    expect(await db.sql.query('SELECT * FROM connector_calls')).toEqual([]);
  });

  test('seeding creates the demo accounts, suppliers and assets once and never overwrites them', async () => {
    await seedSandbox(db.sql);
    const accounts = await listSandboxRecords(db.sql, { system: 'crm', kind: 'account' });
    expect(accounts.map((a) => a.key)).toEqual(expect.arrayContaining(['acme', 'globex', 'initech', 'umbrella']));
    expect((await listSandboxRecords(db.sql, { system: 'erp', kind: 'supplier' })).length).toBeGreaterThan(0);
    expect((await listSandboxRecords(db.sql, { system: 'maintenance', kind: 'asset' })).length).toBeGreaterThan(0);
    expect(await seedSandbox(db.sql)).toBe(0);
  });

  test('crm.discount.update changes the account for real and records the change in its history', async () => {
    const before = (await account(db.sql, 'globex'))!;
    const key = newKey();
    const r = await sandbox.execute(
      'crm.discount.update',
      { account: 'globex', discountPct: 12.5, amount: '8000.00', currency: 'EUR' },
      key,
    );
    expect(r).toMatchObject({ ok: true, result: { summary: "Set globex's discount from 8% to 12.5% (worth 8000.00 EUR)" } });
    const after = (await account(db.sql, 'globex'))!;
    expect(after.version).toBe(before.version + 1);
    expect(after.data.discountPct).toBe(12.5);
    expect(after.data.discountHistory).toEqual([{ from: 8, to: 12.5, amount: '8000.00', currency: 'EUR', at: expect.any(String), key }]);
    expect(await callStatus(db.sql, key)).toEqual({ status: 'succeeded', error: null });
  });

  test('simulate shows the record before and after and writes nothing', async () => {
    await seedSandbox(db.sql);
    const snapshot = await listSandboxRecords(db.sql);
    const calls = await db.sql.query('SELECT count(*)::int AS n FROM connector_calls');
    const sim = await sandbox.simulate('crm.discount.update', { account: 'acme', discountPct: 10, amount: '5000', currency: 'EUR' });
    expect(sim.summary).toBe("Set acme's discount from 5% to 10% (worth 5000 EUR)");
    const [change] = sim.details.changes as { record: string; before: Record<string, unknown>; after: Record<string, unknown> }[];
    expect(change!.record).toBe('crm/account/acme');
    expect(change!.before.discountPct).toBe(5);
    expect(change!.after.discountPct).toBe(10);
    expect(await listSandboxRecords(db.sql)).toEqual(snapshot);
    expect(await db.sql.query('SELECT count(*)::int AS n FROM connector_calls')).toEqual(calls);
  });

  test('the same idempotency key changes nothing twice, even when requests race', async () => {
    const before = (await account(db.sql, 'initech'))!;
    const key = newKey();
    const input = { account: 'initech', discountPct: 4, amount: '1200.00', currency: 'EUR' };
    const results = await Promise.all(Array.from({ length: 5 }, () => sandbox.execute('crm.discount.update', input, key)));
    results.push(await sandbox.execute('crm.discount.update', input, key));
    for (const r of results) expect(r).toEqual(results[0]);
    const after = (await account(db.sql, 'initech'))!;
    expect(after.version).toBe(before.version + 1);
    expect(after.data.discountHistory).toHaveLength((before.data.discountHistory as unknown[]).length + 1);
  });

  test('an unknown account is refused with nothing written, and the same key gets the same answer', async () => {
    const snapshot = await listSandboxRecords(db.sql);
    const key = newKey();
    const input = { account: 'megacorp', discountPct: 4, amount: '1', currency: 'EUR' };
    const r = await sandbox.execute('crm.discount.update', input, key);
    expect(r).toEqual({ ok: false, retryable: false, error: 'no account "megacorp" in the sandbox CRM' });
    expect(await sandbox.execute('crm.discount.update', input, key)).toEqual(r);
    expect(await listSandboxRecords(db.sql)).toEqual(snapshot);
    expect((await sandbox.simulate('crm.discount.update', input)).summary).toBe(
      'Would be refused: no account "megacorp" in the sandbox CRM',
    );
  });

  test('input is validated: amounts are decimal strings valid in their currency', async () => {
    const r = await sandbox.execute(
      'crm.discount.update',
      { account: 'acme', discountPct: 4, amount: '10.005', currency: 'EUR' },
      newKey(),
    );
    expect(r).toMatchObject({ ok: false, retryable: false, error: expect.stringContaining('amount') });
    await expect(
      sandbox.simulate('crm.discount.update', { account: 'acme', discountPct: 4, amount: 1000, currency: 'EUR' }),
    ).rejects.toThrow(/amount/);
    const op = registry.resolve('crm.discount.update')!.operation;
    expect(op.attributes({ account: 'acme', discountPct: 4, amount: '10', currency: 'EUR' })).toEqual({
      counterparty: 'acme',
      discountPct: 4,
      amount: '10',
      currency: 'EUR',
    });
    expect(op.inputJsonSchema).toMatchObject({
      type: 'object',
      required: ['account', 'discountPct', 'amount', 'currency'],
      additionalProperties: false,
    });
  });

  test('crm.note.create adds a note keyed by the idempotency key', async () => {
    const key = newKey();
    expect(await sandbox.execute('crm.note.create', { account: 'acme', text: 'Called about renewal' }, key)).toMatchObject({ ok: true });
    expect((await readSandboxRecord(db.sql, { system: 'crm', kind: 'note', key }))!.data).toEqual({
      account: 'acme',
      text: 'Called about renewal',
      at: expect.any(String),
    });
  });

  test('erp.supplier.reprice changes the item price and records the old one', async () => {
    const key = newKey();
    const r = await sandbox.execute(
      'erp.supplier.reprice',
      { supplier: 'northwind', item: 'steel-coil', price: '799.00', currency: 'EUR', amount: '26000' },
      key,
    );
    expect(r).toMatchObject({ ok: true, result: { summary: 'Reprice steel-coil at northwind from 812.50 EUR to 799.00 EUR' } });
    const sup = (await readSandboxRecord(db.sql, { system: 'erp', kind: 'supplier', key: 'northwind' }))!;
    expect((sup.data.items as Record<string, unknown>)['steel-coil']).toEqual({ price: '799.00', currency: 'EUR' });
    expect(sup.data.priceHistory).toEqual([
      expect.objectContaining({ item: 'steel-coil', from: { price: '812.50', currency: 'EUR' }, key }),
    ]);
  });

  test('maintenance.workorder.create schedules a work order and marks the asset', async () => {
    const key = newKey();
    const input = { asset: 'press-7', window: '2026-11-12T06:00Z/2026-11-12T10:00Z', priority: 'high', amount: '4200', currency: 'EUR' };
    expect(registry.resolve('maintenance.workorder.create')!.operation.attributes(input)).toEqual({
      counterparty: 'press-7',
      asset: 'press-7',
      priority: 'high',
      amount: '4200',
      currency: 'EUR',
    });
    expect(await sandbox.execute('maintenance.workorder.create', input, key)).toMatchObject({ ok: true });
    expect((await readSandboxRecord(db.sql, { system: 'maintenance', kind: 'workorder', key }))!.data).toMatchObject({
      asset: 'press-7',
      status: 'scheduled',
      priority: 'high',
    });
    const asset = (await readSandboxRecord(db.sql, { system: 'maintenance', kind: 'asset', key: 'press-7' }))!;
    expect(asset.data).toMatchObject({ status: 'maintenance scheduled', workOrders: [key] });
  });

  test('sandbox.email.send records the message in the sandbox mailbox', async () => {
    const key = newKey();
    const msg = { to: ['buyer@acme.example'], subject: 'Renewal', body: 'Hello', dataClass: 'public' };
    expect(registry.resolve('sandbox.email.send')!.operation.attributes(msg)).toMatchObject({
      recipientDomains: ['acme.example'],
      dataClass: 'public',
    });
    expect(await sandbox.execute('sandbox.email.send', msg, key)).toMatchObject({ ok: true });
    expect((await readSandboxRecord(db.sql, { system: 'mail', kind: 'message', key }))!.data).toMatchObject(msg);
  });

  test('a simulated operation can be offered under another action name, for dry runs next to a real system', async () => {
    const text = `
kind: Connector
id: dry-run
type: sandbox
operations:
  - { action: dryrun.crm.discount.update, simulates: crm.discount.update }
`;
    const loaded = loadConnectorsFromSources([{ file: 'policies/connectors/dry-run.yaml', text }], {}, { sql: db.sql });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    const dry = loaded.registry.connectors.get('dry-run')!;
    const before = (await account(db.sql, 'umbrella'))!;
    expect(
      await dry.execute('dryrun.crm.discount.update', { account: 'umbrella', discountPct: 6, amount: '10', currency: 'EUR' }, newKey()),
    ).toMatchObject({ ok: true });
    expect((await account(db.sql, 'umbrella'))!.data.discountPct).toBe(6);
    expect((await account(db.sql, 'umbrella'))!.version).toBe(before.version + 1);
  });
});
