/**
 * Calls without an idempotency key: a retry within the retry window is the same request, also
 * across a window's edge, whether the window before is looked up in the database (many
 * processes) or known from this process's own record (the embedded database).
 */
import { silentLog } from '../../test/support/journal';
import type { Proposal } from '../proposals/types';
import { createCallHandler, type CallDeps } from './calls';

const W = 60_000;

function fakeProposals() {
  const byKey = new Map<string, Proposal>();
  let n = 0;
  const lookups: string[] = [];
  const proposals: CallDeps['proposals'] = {
    async create(twin: string, input: { action: string; args: Record<string, unknown>; idempotencyKey: string }) {
      const k = `${twin}\u0000${input.idempotencyKey}`;
      const existing = byKey.get(k);
      if (existing) return { proposal: existing, created: false };
      const p = {
        id: `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`,
        twin,
        action: input.action,
        args: input.args,
        idempotencyKey: input.idempotencyKey,
        status: 'executed',
        decision: { outcome: 'execute', reasons: [] },
        result: { ok: true },
        createdAt: new Date(Date.now()).toISOString(),
      } as unknown as Proposal;
      byKey.set(k, p);
      return { proposal: p, created: true };
    },
    async get(id: string) {
      const p = [...byKey.values()].find((x) => x.id === id);
      if (!p) throw new Error('not found');
      return p;
    },
    async byIdempotencyKey(twin: string, key: string) {
      lookups.push(key);
      return byKey.get(`${twin}\u0000${key}`);
    },
  } as unknown as CallDeps['proposals'];
  return { proposals, lookups, byKey };
}

function handler(p: CallDeps['proposals'], extra: Partial<CallDeps> = {}) {
  return createCallHandler({
    proposals: p,
    journal: { append: async () => undefined } as unknown as CallDeps['journal'],
    log: silentLog,
    holdMs: 0,
    pollMs: 10,
    retryWindowMs: W,
    progressEveryMs: 1000,
    ...extra,
  });
}

const call = (h: ReturnType<typeof handler>, args: Record<string, unknown> = { account: 'acme', text: 'hello' }) =>
  h.call({
    twin: 'ops',
    tool: 'crm_note_create',
    action: 'crm.note.create',
    args,
    meta: undefined,
    client: { name: 'test', version: '1', protocol: '2026-07-28' },
    signal: new AbortController().signal,
  });

const proposalOf = (r: Awaited<ReturnType<typeof call>>) => (r.structuredContent as { proposal: string }).proposal;

describe('MCP calls without an idempotency key', () => {
  let now = 0;
  beforeEach(() => {
    // Just before a window's edge.
    now = 1_000 * W - 1_000;
    jest.spyOn(Date, 'now').mockImplementation(() => now);
  });
  afterEach(() => jest.restoreAllMocks());

  it('many processes: a retry across the window edge finds the first call in the database', async () => {
    const { proposals, lookups } = fakeProposals();
    // Two processes on one database; the retry reaches the other one.
    const first = await call(handler(proposals));
    now += 2_000; // the next window
    const retry = await call(handler(proposals));
    expect(proposalOf(retry)).toBe(proposalOf(first));
    expect(retry.content[0]!.text).toMatch(/made before/);
    expect(lookups.length).toBe(2);
  });

  it('one process: the retry is found in its own record, with no lookup', async () => {
    const { proposals, lookups } = fakeProposals();
    const seeded: Date[] = [];
    const h = handler(proposals, { derivedKeysSince: async (since) => (seeded.push(since), []) });
    const first = await call(h);
    now += 2_000;
    const retry = await call(h);
    expect(proposalOf(retry)).toBe(proposalOf(first));
    expect(lookups).toEqual([]);
    // Read once, two windows back.
    expect(seeded.map((d) => d.getTime())).toEqual([now - 2_000 - 2 * W]);
    // Different arguments are a different request.
    expect(proposalOf(await call(h, { account: 'acme', text: 'other' }))).not.toBe(proposalOf(first));
  });

  it('one process: calls made before a restart are read back once, and a retry of one is the same request', async () => {
    const before = fakeProposals();
    const first = await call(handler(before.proposals, { derivedKeysSince: async () => [] }));
    const firstKey = [...before.byKey.values()][0]!.idempotencyKey;
    now += 2_000;
    // A new process on the same data: the first call's key is in the database.
    const h = handler(before.proposals, { derivedKeysSince: async () => [{ key: firstKey, createdAt: now - 2_000 }] });
    const retry = await call(h);
    expect(proposalOf(retry)).toBe(proposalOf(first));
    expect(before.lookups).toEqual([]);
  });

  it('a call older than the retry window is not retried: a new request', async () => {
    const { proposals } = fakeProposals();
    const h = handler(proposals, { derivedKeysSince: async () => [] });
    const first = await call(h);
    now += W + 1;
    expect(proposalOf(await call(h))).not.toBe(proposalOf(first));
  });

  it('when the record cannot be read back, each call looks the window before up instead', async () => {
    const { proposals, lookups } = fakeProposals();
    const h = handler(proposals, {
      derivedKeysSince: async () => {
        throw new Error('storage down');
      },
    });
    const first = await call(h);
    now += 2_000;
    // The record of the first call is kept, so the retry needs no lookup; a new call does.
    expect(proposalOf(await call(h))).toBe(proposalOf(first));
    await call(h, { account: 'acme', text: 'new' });
    expect(lookups.length).toBe(2);
  });
});
