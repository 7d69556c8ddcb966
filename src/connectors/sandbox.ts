/**
 * The sandbox connector: simulated business systems (a CRM, an ERP, a maintenance planner, a
 * mailbox) kept in Regent's own database (`sandbox_records`), with real state changes, so the
 * product can be tried offline and dry runs have somewhere to run.
 *
 * Each operation is planned from the records it reads (which gives `simulate` its before/after
 * without writing) and applied in one transaction together with its `connector_calls` record, so
 * the same idempotency key never changes anything twice, even across a crash.
 */
import { z } from 'zod';
import type { Sql, SqlTx } from '../db/sql';
import { DECIMAL_PATTERN, decimalProblem, parseAmount } from '../policy/amount';
import { InputError } from '../errors/errors';
import { BusinessFailure, runOnceAtomically } from './calls';
import { parseInput } from './input';
import { MessageInput, messageAttributes } from './message';
import type { Connector, ExecutionResult, Operation, RiskAttributes, Simulation, WithinGate, WithinItem, WithinOutcome } from './types';

/** A gate that admits every item (one action executed on its own). */
const EVERY_ITEM: WithinGate = { admit: () => true, applied: () => undefined };

export const SANDBOX_OPERATIONS = [
  'crm.discount.update',
  'crm.note.create',
  'erp.supplier.reprice',
  'maintenance.workorder.create',
  'sandbox.email.send',
] as const;
export type SandboxOperationName = (typeof SANDBOX_OPERATIONS)[number];

/** What a sandbox connector document says (the loader has validated it). */
export interface SandboxConnectorSpec {
  id: string;
  operations: { action: string; simulates?: SandboxOperationName; description?: string }[];
}

// ---------------------------------------------------------------------------------------------
// Records

export interface SandboxRecord {
  system: string;
  kind: string;
  key: string;
  data: Record<string, unknown>;
  version: number;
  updatedAt: string;
}

type Ref = { system: string; kind: string; key: string };
const refText = (r: Ref) => `${r.system}/${r.kind}/${r.key}`;

interface RecordRow {
  system: string;
  kind: string;
  key: string;
  data: Record<string, unknown>;
  version: number;
  updated_at: Date | string;
}

const toRecord = (r: RecordRow): SandboxRecord => ({
  system: r.system,
  kind: r.kind,
  key: r.key,
  data: r.data,
  version: r.version,
  updatedAt: new Date(r.updated_at).toISOString(),
});

export async function readSandboxRecord(
  sql: Pick<Sql, 'query'>,
  ref: Ref,
  opts: { lock?: boolean } = {},
): Promise<SandboxRecord | undefined> {
  const rows = await sql.query<RecordRow>(
    `SELECT system, kind, key, data, version, updated_at FROM sandbox_records WHERE system = $1 AND kind = $2 AND key = $3${opts.lock ? ' FOR UPDATE' : ''}`,
    [ref.system, ref.kind, ref.key],
  );
  return rows[0] && toRecord(rows[0]);
}

export async function listSandboxRecords(
  sql: Pick<Sql, 'query'>,
  filter: { system?: string; kind?: string } = {},
): Promise<SandboxRecord[]> {
  const rows = await sql.query<RecordRow>(
    `SELECT system, kind, key, data, version, updated_at FROM sandbox_records
      WHERE ($1::text IS NULL OR system = $1) AND ($2::text IS NULL OR kind = $2) ORDER BY system, kind, key`,
    [filter.system ?? null, filter.kind ?? null],
  );
  return rows.map(toRecord);
}

/** Several records in one statement, locked (in key order, as every writer locks them) when asked. */
async function readSandboxRecords(tx: SqlTx, refs: readonly Ref[], opts: { lock?: boolean } = {}): Promise<SandboxRecord[]> {
  if (refs.length === 0) return [];
  const rows = await tx.query<RecordRow>(
    `SELECT system, kind, key, data, version, updated_at FROM sandbox_records
      WHERE (system, kind, key) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))
      ORDER BY system, kind, key${opts.lock ? ' FOR UPDATE' : ''}`,
    [refs.map((r) => r.system), refs.map((r) => r.kind), refs.map((r) => r.key)],
  );
  return rows.map(toRecord);
}

/**
 * Writes each record's final state of a batch with the version it reached, in one statement.
 * The versions were counted from rows this transaction holds locked; a record created by
 * another writer since it was found missing makes the batch fail, and the caller rolls back.
 */
async function writeRecords(tx: SqlTx, writes: readonly { ref: Ref; data: Record<string, unknown>; version: number; created: boolean }[]): Promise<void> {
  if (writes.length === 0) return;
  const rows = await tx.query<{ system: string; kind: string; key: string; created: boolean }>(
    `INSERT INTO sandbox_records (system, kind, key, data, version)
     SELECT x.system, x.kind, x.key, x.data, x.version FROM jsonb_to_recordset($1::jsonb) AS x(system text, kind text, key text, data jsonb, version int)
     ON CONFLICT (system, kind, key) DO UPDATE SET data = EXCLUDED.data, version = EXCLUDED.version, updated_at = now()
     RETURNING system, kind, key, (xmax = 0) AS created`,
    [JSON.stringify(writes.map((w) => ({ ...w.ref, data: w.data, version: w.version })))],
  );
  const created = new Map(rows.map((r) => [refText(r), r.created]));
  for (const w of writes) {
    if (created.get(refText(w.ref)) !== w.created) throw new Error(`sandbox record ${refText(w.ref)} was created by another writer during the batch`);
  }
}

// ---------------------------------------------------------------------------------------------
// Seed data

const SEED: (Ref & { data: Record<string, unknown> })[] = [
  {
    system: 'crm',
    kind: 'account',
    key: 'acme',
    data: { name: 'Acme Corporation', tier: 'key', currency: 'EUR', discountPct: 5, discountHistory: [] },
  },
  {
    system: 'crm',
    kind: 'account',
    key: 'globex',
    data: { name: 'Globex', tier: 'key', currency: 'EUR', discountPct: 8, discountHistory: [] },
  },
  {
    system: 'crm',
    kind: 'account',
    key: 'initech',
    data: { name: 'Initech', tier: 'standard', currency: 'EUR', discountPct: 0, discountHistory: [] },
  },
  {
    system: 'crm',
    kind: 'account',
    key: 'umbrella',
    data: { name: 'Umbrella Corporation', tier: 'standard', currency: 'EUR', discountPct: 3, discountHistory: [] },
  },
  {
    system: 'erp',
    kind: 'supplier',
    key: 'northwind',
    data: {
      name: 'Northwind Traders',
      country: 'DE',
      currency: 'EUR',
      items: { 'steel-coil': { price: '812.50', currency: 'EUR' }, 'bearing-6204': { price: '3.20', currency: 'EUR' } },
      priceHistory: [],
    },
  },
  {
    system: 'erp',
    kind: 'supplier',
    key: 'contoso',
    data: {
      name: 'Contoso Components',
      country: 'NL',
      currency: 'EUR',
      items: { 'pcb-a7': { price: '14.90', currency: 'EUR' } },
      priceHistory: [],
    },
  },
  {
    system: 'maintenance',
    kind: 'asset',
    key: 'press-7',
    data: { name: 'Hydraulic press 7', site: 'plant-berlin', status: 'running', workOrders: [] },
  },
  {
    system: 'maintenance',
    kind: 'asset',
    key: 'pump-3',
    data: { name: 'Coolant pump 3', site: 'plant-berlin', status: 'running', workOrders: [] },
  },
  {
    system: 'maintenance',
    kind: 'asset',
    key: 'chiller-2',
    data: { name: 'Chiller 2', site: 'plant-lyon', status: 'running', workOrders: [] },
  },
];

/** A seed record as it will be once written, for previews before the first execution. */
function seedRecord(ref: Ref): SandboxRecord | undefined {
  const r = SEED.find((s) => s.system === ref.system && s.kind === ref.kind && s.key === ref.key);
  return r && { ...r, data: structuredClone(r.data), version: 0, updatedAt: new Date(0).toISOString() };
}

/** Creates the demo accounts, suppliers and assets that are absent; never overwrites a record. */
export async function seedSandbox(sql: Pick<Sql, 'query'>): Promise<number> {
  let created = 0;
  for (const r of SEED) {
    const rows = await sql.query(
      'INSERT INTO sandbox_records (system, kind, key, data) VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (system, kind, key) DO NOTHING RETURNING key',
      [r.system, r.kind, r.key, JSON.stringify(r.data)],
    );
    created += rows.length;
  }
  return created;
}

// ---------------------------------------------------------------------------------------------
// Operations

/** A record read by an operation: from `sql` when simulating, locked in `tx` when executing. */
type Read = (ref: Ref) => Promise<SandboxRecord | undefined>;

interface Plan {
  summary: string;
  writes: { ref: Ref; before: Record<string, unknown> | null; after: Record<string, unknown> }[];
}

interface SandboxOperation {
  description: string;
  input: z.ZodType<Record<string, unknown>>;
  attributes(input: Record<string, unknown>): RiskAttributes;
  /** `key` is the idempotency key when executing, undefined when simulating. */
  plan(input: any, read: Read, ctx: { key: string | undefined; now: string }): Promise<Plan>;
}

const RecordId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9._-]*$/, { error: 'ids are lower-case letters, digits, ".", "_" and "-", e.g. acme' });
const Currency = z.string().regex(/^[A-Z]{3}$/, { error: 'a currency is an ISO 4217 code such as EUR' });
const Amount = z
  .string()
  .regex(DECIMAL_PATTERN, { error: (iss) => decimalProblem(iss.input) ?? 'not a decimal string' })
  .describe('Decimal string, e.g. "12000.00"');

/** Amount and currency together: the amount must be valid in that currency (no half cents). */
const amountInCurrency = (v: { amount?: string; currency?: string }, ctx: z.RefinementCtx, field = 'amount') => {
  const text = (v as Record<string, string | undefined>)[field];
  if (text === undefined || v.currency === undefined) return;
  const r = parseAmount(text, v.currency);
  if (!r.ok) ctx.addIssue({ code: 'custom', path: [field], message: r.message });
};

/** Keeps records bounded however long a demo runs. */
const HISTORY = 50;
const append = (list: unknown, item: unknown) => [...(Array.isArray(list) ? list : []), item].slice(-HISTORY);
const PENDING_KEY = '(the idempotency key)';

async function mustRead(read: Read, ref: Ref, what: string): Promise<SandboxRecord> {
  const r = await read(ref);
  if (!r) throw new BusinessFailure(`no ${what} "${ref.key}" in the sandbox ${ref.system.toUpperCase()}`);
  return r;
}

const OPERATIONS: Record<SandboxOperationName, SandboxOperation> = {
  'crm.discount.update': {
    description: "Sets an account's discount in the sandbox CRM and records it in the account's history.",
    input: z
      .object({
        account: RecordId.describe('CRM account id, e.g. acme'),
        discountPct: z.number().min(0).max(100).describe('New discount in percent'),
        amount: Amount.describe('Value of the discount over the contract, e.g. "12000.00"'),
        currency: Currency,
      })
      .strict()
      .superRefine((v, ctx) => amountInCurrency(v, ctx)),
    attributes: (i) => ({ counterparty: i.account, discountPct: i.discountPct, amount: i.amount, currency: i.currency }),
    async plan(i: { account: string; discountPct: number; amount: string; currency: string }, read, { key, now }) {
      const ref = { system: 'crm', kind: 'account', key: i.account };
      const acc = await mustRead(read, ref, 'account');
      const entry = {
        from: acc.data.discountPct ?? null,
        to: i.discountPct,
        amount: i.amount,
        currency: i.currency,
        at: now,
        key: key ?? PENDING_KEY,
      };
      return {
        summary: `Set ${i.account}'s discount from ${entry.from ?? 'none'}% to ${i.discountPct}% (worth ${i.amount} ${i.currency})`,
        writes: [
          {
            ref,
            before: acc.data,
            after: { ...acc.data, discountPct: i.discountPct, discountHistory: append(acc.data.discountHistory, entry) },
          },
        ],
      };
    },
  },

  'crm.note.create': {
    description: 'Adds a note to an account in the sandbox CRM.',
    input: z.object({ account: RecordId.describe('CRM account id, e.g. acme'), text: z.string().min(1).max(10_000) }).strict(),
    attributes: (i) => ({ counterparty: i.account }),
    async plan(i: { account: string; text: string }, read, { key, now }) {
      await mustRead(read, { system: 'crm', kind: 'account', key: i.account }, 'account');
      const ref = { system: 'crm', kind: 'note', key: key ?? PENDING_KEY };
      return {
        summary: `Add a note to ${i.account}: ${clip(i.text, 80)}`,
        writes: [{ ref, before: null, after: { account: i.account, text: i.text, at: now } }],
      };
    },
  },

  'erp.supplier.reprice': {
    description: "Changes an item's price at a supplier in the sandbox ERP and records the change.",
    input: z
      .object({
        supplier: RecordId.describe('ERP supplier id, e.g. northwind'),
        item: RecordId.describe('Item number, e.g. steel-coil'),
        price: Amount.describe('New unit price, e.g. "799.00"'),
        currency: Currency,
        amount: Amount.describe('Value of the change over the contract, e.g. "25000.00"'),
      })
      .strict()
      .superRefine((v, ctx) => {
        amountInCurrency(v, ctx);
        amountInCurrency(v, ctx, 'price');
      }),
    attributes: (i) => ({ counterparty: i.supplier, item: i.item, price: i.price, amount: i.amount, currency: i.currency }),
    async plan(i: { supplier: string; item: string; price: string; currency: string; amount: string }, read, { key, now }) {
      const ref = { system: 'erp', kind: 'supplier', key: i.supplier };
      const sup = await mustRead(read, ref, 'supplier');
      const items = (sup.data.items ?? {}) as Record<string, { price: string; currency: string }>;
      const old = items[i.item] ?? null;
      const entry = {
        item: i.item,
        from: old,
        to: { price: i.price, currency: i.currency },
        amount: i.amount,
        at: now,
        key: key ?? PENDING_KEY,
      };
      return {
        summary: `Reprice ${i.item} at ${i.supplier} from ${old ? `${old.price} ${old.currency}` : 'unlisted'} to ${i.price} ${i.currency}`,
        writes: [
          {
            ref,
            before: sup.data,
            after: {
              ...sup.data,
              items: { ...items, [i.item]: { price: i.price, currency: i.currency } },
              priceHistory: append(sup.data.priceHistory, entry),
            },
          },
        ],
      };
    },
  },

  'maintenance.workorder.create': {
    description: 'Schedules a maintenance work order for an asset in the sandbox planner.',
    input: z
      .object({
        asset: RecordId.describe('Asset id, e.g. press-7'),
        window: z.string().min(1).max(100).describe('When, e.g. an ISO 8601 interval 2026-11-12T06:00Z/2026-11-12T10:00Z'),
        priority: z.enum(['low', 'normal', 'high', 'urgent']),
        amount: Amount.optional().describe('Estimated cost'),
        currency: Currency.optional(),
      })
      .strict()
      .superRefine((v, ctx) => {
        if (v.amount !== undefined && v.currency === undefined)
          ctx.addIssue({ code: 'custom', path: ['currency'], message: 'an amount needs its currency' });
        amountInCurrency(v, ctx);
      }),
    attributes: (i) => ({
      counterparty: i.asset,
      asset: i.asset,
      priority: i.priority,
      ...(i.amount !== undefined ? { amount: i.amount, currency: i.currency } : {}),
    }),
    async plan(i: { asset: string; window: string; priority: string; amount?: string; currency?: string }, read, { key, now }) {
      const assetRef = { system: 'maintenance', kind: 'asset', key: i.asset };
      const asset = await mustRead(read, assetRef, 'asset');
      const id = key ?? PENDING_KEY;
      const order = {
        asset: i.asset,
        window: i.window,
        priority: i.priority,
        amount: i.amount ?? null,
        currency: i.currency ?? null,
        status: 'scheduled',
        at: now,
      };
      return {
        summary: `Schedule ${i.priority} maintenance of ${i.asset} in ${i.window}${i.amount ? ` (estimated ${i.amount} ${i.currency})` : ''}`,
        writes: [
          { ref: { system: 'maintenance', kind: 'workorder', key: id }, before: null, after: order },
          {
            ref: assetRef,
            before: asset.data,
            after: { ...asset.data, status: 'maintenance scheduled', workOrders: append(asset.data.workOrders, id) },
          },
        ],
      };
    },
  },

  'sandbox.email.send': {
    description: 'Records an email in the sandbox mailbox instead of sending it (demos without SMTP).',
    input: MessageInput,
    attributes: messageAttributes,
    async plan(i: z.infer<typeof MessageInput>, _read, { key, now }) {
      const ref = { system: 'mail', kind: 'message', key: key ?? PENDING_KEY };
      return {
        summary: `Email "${clip(i.subject, 60)}" to ${[...i.to, ...(i.cc ?? [])].join(', ')} (${i.dataClass})`,
        writes: [{ ref, before: null, after: { ...i, at: now } }],
      };
    },
  },
};

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/**
 * What an executed write changed, as recorded in the proposal's result and the journal: the
 * fields that changed, before and after, and for a list that grew the entries added (not the
 * whole list twice). A new record is recorded whole.
 */
export function describeChange(
  record: string,
  version: number,
  before: Record<string, unknown> | null,
  after: Record<string, unknown>,
): { record: string; version: number; before: Record<string, unknown> | null; after: Record<string, unknown>; appended?: Record<string, unknown[]> } {
  if (before === null) return { record, version, before: null, after };
  const was: Record<string, unknown> = {};
  const now: Record<string, unknown> = {};
  const appended: Record<string, unknown[]> = {};
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const b = before[k];
    const a = after[k];
    // A plan keeps what it does not change (the same values), so most fields end here cheaply.
    if (a === b) continue;
    const added = Array.isArray(b) && Array.isArray(a) ? appendedTo(b, a) : undefined;
    if (added) appended[k] = added;
    else if (!same(a, b)) {
      if (k in before) was[k] = b;
      if (k in after) now[k] = a;
    }
  }
  return { record, version, before: was, after: now, ...(Object.keys(appended).length ? { appended } : {}) };
}

const same = (a: unknown, b: unknown) => a === b || JSON.stringify(a) === JSON.stringify(b);

/**
 * The entries `after` adds at the end of `before` (whose oldest entries may have been dropped),
 * if that is all it does. Kept entries are usually the very same values, compared by reference
 * before by content.
 */
function appendedTo(before: unknown[], after: unknown[]): unknown[] | undefined {
  for (let m = Math.min(after.length - 1, before.length); m >= 0; m--) {
    let ok = true;
    for (let i = 0; i < m && ok; i++) ok = same(after[i], before[before.length - m + i]);
    if (ok) return m === 0 && before.length > 0 ? undefined : after.slice(m);
  }
  return undefined;
}

const describeWrites = (plan: Plan) => plan.writes.map((w) => ({ record: refText(w.ref), before: w.before, after: w.after }));

// ---------------------------------------------------------------------------------------------
// The connector

export function createSandboxConnector(spec: SandboxConnectorSpec, deps: { sql: Sql }): Connector {
  const { sql } = deps;
  const bound = new Map<string, SandboxOperation>();
  const operations = new Map<string, Operation>();
  for (const op of spec.operations) {
    const impl = OPERATIONS[op.simulates ?? (op.action as SandboxOperationName)];
    if (!impl) throw new Error(`${op.action} is not a sandbox operation`); // the loader refuses this first
    bound.set(op.action, impl);
    operations.set(op.action, {
      action: op.action,
      input: impl.input,
      inputJsonSchema: z.toJSONSchema(impl.input) as Record<string, unknown>,
      idempotent: true, // effect and record commit together, so a repeat is always answered from the record
      description: op.description ?? impl.description,
      attributes: impl.attributes,
    });
  }

  // The demo data is written the first time an operation executes (a failure is retried next
  // time); until then simulate reads the seed in memory, so a preview never writes anything.
  let seeded: Promise<unknown> | undefined;
  let seedDone = false;
  const ensureSeeded = () =>
    (seeded ??= seedSandbox(sql).then(
      () => (seedDone = true),
      (err) => ((seeded = undefined), Promise.reject(err)),
    ));

  /**
   * Applies `items` in order in `tx`, each planned from the records as the items before it left
   * them: the records each plan reads first are fetched (and locked) in one statement, and every
   * record's final state is written in one. The one mechanism behind execute (one item, its own
   * transaction) and executeManyWithin (a batch, the caller's transaction).
   */
  async function applyInOrder(tx: SqlTx, items: readonly WithinItem[], gate: WithinGate): Promise<WithinOutcome[]> {
    const now = new Date().toISOString();
    const resolved = items.map((it) => resolve(it.action, it.input));
    // The records each plan reads first, fetched (and locked) in one statement: a plan is run
    // up to its first read, which names the record and stops it.
    const wanted = new Map<string, Ref>();
    const stop = new Error('prefetch');
    await Promise.all(
      resolved.map((r, i) =>
        r.ok
          ? r.impl.plan(r.input, async (ref) => (wanted.set(refText(ref), ref), Promise.reject(stop)), { key: items[i]!.idempotencyKey, now }).catch((err) => {
              if (err !== stop && !(err instanceof BusinessFailure)) throw err;
            })
          : undefined,
      ),
    );
    const held = new Map<string, SandboxRecord | undefined>([...wanted.keys()].map((k) => [k, undefined]));
    for (const rec of await readSandboxRecords(tx, [...wanted.values()], { lock: true })) held.set(refText(rec), rec);
    // Each plan sees the records as the items before it left them.
    const written = new Map<string, { ref: Ref; data: Record<string, unknown>; version: number; created: boolean }>();
    const read: Read = async (ref) => {
      const k = refText(ref);
      const w = written.get(k);
      if (w) return { ...ref, data: w.data, version: w.version, updatedAt: now };
      if (!held.has(k)) held.set(k, await readSandboxRecord(tx, ref, { lock: true }));
      return held.get(k);
    };
    const out: WithinOutcome[] = [];
    for (let i = 0; i < items.length; i++) {
      const r = resolved[i]!;
      if (!r.ok) {
        out.push({ ok: false, refused: r.error });
        continue;
      }
      if (!gate.admit(i)) {
        out.push(null);
        continue;
      }
      let plan: Plan;
      try {
        plan = await r.impl.plan(r.input, read, { key: items[i]!.idempotencyKey, now });
      } catch (err) {
        if (!(err instanceof BusinessFailure)) throw err;
        out.push({ ok: false, refused: err.message });
        continue;
      }
      const changes = plan.writes.map((w) => {
        const k = refText(w.ref);
        const before = held.get(k);
        const version = (written.get(k)?.version ?? before?.version ?? 0) + 1;
        written.set(k, { ref: w.ref, data: w.after, version, created: before === undefined });
        return describeChange(k, version, w.before, w.after);
      });
      out.push({ ok: true, result: { summary: plan.summary, changes } });
      gate.applied(i);
    }
    await writeRecords(tx, [...written.values()]);
    return out;
  }

  /** The operation and the validated input, or why not (never reaching a plan with bad input). */
  function resolve(action: string, input: Record<string, unknown>) {
    const impl = bound.get(action);
    const op = operations.get(action);
    if (!impl || !op) return { ok: false as const, error: `${spec.id} has no operation ${action}` };
    const parsed = parseInput(op, input);
    return parsed.ok ? { ok: true as const, impl, input: parsed.input } : parsed;
  }

  return {
    id: spec.id,
    type: 'sandbox',
    operations,

    async simulate(action, input): Promise<Simulation> {
      const r = resolve(action, input);
      if (!r.ok) throw new InputError(r.error);
      const read: Read = async (ref) => (await readSandboxRecord(sql, ref)) ?? (seeded ? undefined : seedRecord(ref));
      try {
        const plan = await r.impl.plan(r.input, read, { key: undefined, now: new Date().toISOString() });
        return { summary: plan.summary, details: { connector: spec.id, action, changes: describeWrites(plan) } };
      } catch (err) {
        if (!(err instanceof BusinessFailure)) throw err;
        return { summary: `Would be refused: ${err.message}`, details: { connector: spec.id, action, refused: err.message, changes: [] } };
      }
    },

    async execute(action, input, idempotencyKey): Promise<ExecutionResult> {
      const r = resolve(action, input);
      if (!r.ok) return { ok: false, retryable: false, error: r.error };
      await ensureSeeded();
      return runOnceAtomically(sql, { idempotencyKey, connector: spec.id, action }, async (tx) => {
        const [o] = await applyInOrder(tx, [{ action, input: r.input, idempotencyKey }], EVERY_ITEM);
        if (!o?.ok) throw new BusinessFailure(o ? o.refused : `${action} was not applied`);
        return o.result;
      });
    },

    async executeManyWithin(tx, items, gate) {
      // The demo data is written with the first execution, in its transaction; once it was
      // there before this transaction began (this process or another wrote it), never again.
      if (!seedDone && (await seedSandbox(tx)) === 0) seedDone = true;
      return applyInOrder(tx, items, gate);
    },
  };
}
