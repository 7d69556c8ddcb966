/**
 * The sandbox's operations: for each, its input schema, its risk attributes, and a plan made from
 * the records it reads (the before and after of every write), which simulate shows and execute applies.
 */
import { z } from 'zod';
import { DECIMAL_PATTERN, decimalProblem, parseAmount } from '../policy/amount';
import { BusinessFailure } from './calls';
import { MessageInput, messageAttributes } from './message';
import type { Ref, SandboxRecord } from './sandbox-records';
import type { RiskAttributes } from './types';

export const SANDBOX_OPERATIONS = [
  'crm.discount.update',
  'crm.note.create',
  'erp.supplier.reprice',
  'maintenance.workorder.create',
  'sandbox.email.send',
] as const;
export type SandboxOperationName = (typeof SANDBOX_OPERATIONS)[number];

/** A record read by an operation: from `sql` when simulating, locked in `tx` when executing. */
export type Read = (ref: Ref) => Promise<SandboxRecord | undefined>;

export interface Plan {
  summary: string;
  writes: { ref: Ref; before: Record<string, unknown> | null; after: Record<string, unknown> }[];
}

export interface SandboxOperation {
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

export const OPERATIONS: Record<SandboxOperationName, SandboxOperation> = {
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
