import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import {
  CANONICAL_BODY_FIELDS,
  checkEntryShape,
  dataProblem,
  ENTRY_DATA,
  ENTRY_FIELDS,
  JOURNAL_KINDS,
  type EntryData,
  type JournalKind,
} from './contract';
import { canonicalBody, exportLine, type JournalEntryBody } from './hash';
import { makeExport } from './testing/make-export';
import { verifyExport } from './verify';

const SRC = path.resolve(__dirname, '..');

/** Every .ts file under src/ that is not a test or generated code. */
function sources(dir = SRC): string[] {
  const out: string[] = [];
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) {
      if (d.name !== 'generated' && d.name !== 'testing') out.push(...sources(p));
    } else if (d.name.endsWith('.ts') && !d.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const V = `sha256:${'ab'.repeat(32)}`;
const AT = '2026-11-22T09:00:00.250Z';
const inDoubt = {
  since: AT,
  sentAt: AT,
  executor: 'executor-1',
  connector: 'crm',
  checkIn: 'crm for idempotency key p-1',
  lastHeard: null,
  error: 'cut off',
};

/** Data as Regent's own appenders write it, one example (or more) per kind. */
const EXAMPLES: { [K in JournalKind]: EntryData<K>[] } = {
  'audit.note': [{ text: 'checked the March batch' }, {}, { n: 1, anything: ['goes'] }],
  'system.started': [{ version: '0.1.0', database: 'embedded', pid: 4242 }],
  'system.stopped': [{ signal: 'SIGTERM' }],
  'journal.exported': [
    { size: 10, root: 'ab'.repeat(32) },
    { size: 10, root: 'ab'.repeat(32), format: 'bundle' },
    { size: 10, root: 'ab'.repeat(32), format: 'csv', filters: { kind: 'audit.note', twin: 'cfo-twin' } },
  ],
  'policy.loaded': [
    { version: V, authorities: ['cfo'], files: ['cfo.yaml'], previous: null, added: ['cfo.yaml'], removed: [], changed: [] },
  ],
  'policy.refused': [{ errors: [{ file: 'cfo.yaml', line: 3, message: 'bad' }], inForce: V }],
  'policy.rolled_back': [{ version: V, authorities: [], files: [], previous: V, added: [], removed: ['x.yaml'], changed: [] }],
  'policy.decided': [
    {
      twin: 'cfo-twin',
      request: {
        principal: 'twin:cfo-twin',
        action: 'crm.discount.update',
        resource: { amount: '100.00', currency: 'EUR' },
        at: AT,
        twinMode: 'execute',
        authority: 'cfo',
      },
      outcome: 'approve',
      reasons: [{ code: 'approval_tier', message: 'over 50.00 EUR', source: 'cfo.yaml:12' }],
      authority: 'cfo',
      approval: { approvers: ['user:vic'], quorum: 1, expiresAt: AT },
    },
    {
      twin: 'cfo-twin',
      request: { principal: 'twin:cfo-twin', action: 'x.y', resource: {}, at: AT },
      outcome: 'deny',
      reasons: [],
      authority: null,
      approval: null,
    },
  ],
  'user.created': [
    { name: 'Dana', roles: ['auditor'], keyId: '0123456789ab' },
    { name: 'Administrator', roles: ['admin'], keyId: 'k', firstStart: true },
  ],
  'user.key_created': [{ principal: 'user:dana', label: null }],
  'user.key_revoked': [{ principal: 'user:dana' }],
  'twin.created': [{ owner: 'user:vic', authority: 'cfo', mode: 'propose', keyId: 'k' }],
  'twin.mode_changed': [{ from: 'propose', to: 'execute' }],
  'kill_switch.changed': [{ scope: 'global', engaged: true, previous: false, changed: true }],
  'auth.refused': [
    { method: 'GET', path: '/v1/twins', status: 401, reason: 'unknown', keyId: '0123456789ab' },
    { method: 'POST', path: '/v1/users', status: 403, capability: 'user.manage' },
    { method: 'GET', path: '/v1/me', status: 429, reason: 'rate_limited', limitPerMinute: 60 },
  ],
  'proposal.refused': [
    { reason: 'args.amount: required', action: null },
    { reason: 'x', action: 'crm.discount.update', idempotencyKey: 'k-1' },
  ],
  'proposal.transitioned': [
    {
      twin: 'cfo-twin',
      action: 'crm.discount.update',
      from: null,
      to: 'pending_approval',
      rationale: 'renewal',
      context: { objective: 'o-1' },
    },
    {
      twin: 'cfo-twin',
      action: 'crm.discount.update',
      from: 'approved',
      to: 'executing',
      reason: 'claimed for execution',
      executor: 'e-1',
      attempt: 1,
    },
    { twin: 'cfo-twin', action: 'crm.discount.update', from: 'executing', to: 'executed', reason: 'executed', result: { ok: true } },
    {
      twin: 'cfo-twin',
      action: 'crm.discount.update',
      from: 'executing',
      to: 'in_doubt',
      reason: 'outcome unknown',
      error: 'cut off',
      inDoubt,
    },
  ],
  'proposal.reviewed': [
    { decision: 'comment', comment: 'looks fine' },
    { decision: 'reject', comment: 'no' },
    { decision: 'edit', comment: null, argsHash: 'h2', previousArgsHash: 'h1' },
    { decision: 'approve', comment: null, argsHash: 'h1', approvals: 1, quorum: 2 },
  ],
  'proposal.escalated': [{ to: ['user:cfo'], expiresAt: AT }],
  'proposal.audited': [{ verdict: 'flagged', comment: null, status: 'executed' }],
  'proposal.reconciled': [
    { twin: 'cfo-twin', action: 'crm.discount.update', outcome: 'not_executed', evidence: 'not in the CRM', inDoubt },
  ],
  'objective.created': [
    {
      twin: 'cfo-twin',
      owner: 'user:vic',
      text: 'keep acme',
      planner: 'playbook',
      playbook: 'renewal-discount',
      params: { account: 'acme' },
      constraints: { stepBudget: 5, deadline: AT },
      stepBudget: 5,
      signal: null,
    },
  ],
  'objective.refused': [{ reason: 'no such playbook', playbook: null }],
  'objective.transitioned': [{ twin: 'cfo-twin', from: 'queued', to: 'running', reason: 'started' }],
  'objective.step': [
    {
      twin: 'cfo-twin',
      key: 's1',
      action: 'crm.discount.update',
      proposal: 'p-1',
      status: 'approved',
      objective: 'o-1',
      run: 'o-1',
      step: 's1',
      planner: 'llm',
      model: 'gpt',
      policyVersion: V,
    },
  ],
  'agent.refused': [
    { objective: 'o-1', planner: 'llm', reason: 'no tool fits', detail: { tried: 2 } },
    { objective: 'o-1', planner: null, key: null, action: null, reason: 'not an object', argsHash: null, argNames: [] },
  ],
  'signal.received': [
    {
      type: 'churn.predicted',
      source: 'twin-model',
      occurredAt: null,
      contentHash: 'h',
      payload: { account: 'acme' },
      objectives: [{ id: 'o-1', twin: 'cfo-twin', rule: 'r1', playbook: 'renewal-discount' }],
      skipped: [{ rule: 'r2', reason: 'conditions not met' }],
      rules: ['r1', 'r2'],
    },
  ],
  'signal.refused': [
    { id: null, type: 'x', source: null, reason: 'no standing rule' },
    { id: null, type: null, source: null, reason: 'not valid JSON', via: 'plant-mqtt', bytes: 10485760, excerpt: '{"id":', deadLetter: 'regent/dead' },
  ],
  'mcp.initialized': [
    { client: { name: 'claude-desktop', version: '1.4' }, protocol: '2025-06-18', era: 'legacy' },
    { client: { name: 'cursor', version: '2.4.0' }, protocol: '2026-07-28', era: 'modern' },
  ],
  'connector.pinned': [{ action: 'memory.entities.create', tool: 'create_entities', schemaSha256: 'abababababababababababababababababababababababababababababababab', descriptionSha256: 'cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd' }],
  'connector.changed': [
    { action: 'memory.entities.create', tool: 'create_entities', old: { schemaSha256: 'abababababababababababababababababababababababababababababababab', descriptionSha256: 'cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd' }, new: { schemaSha256: 'cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd', descriptionSha256: 'cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd' } },
    { action: 'memory.entities.create', tool: 'create_entities', old: { schemaSha256: 'abababababababababababababababababababababababababababababababab', descriptionSha256: 'cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd' }, new: null },
  ],
  'connector.accepted': [{ action: 'memory.entities.create', tool: 'create_entities', old: { schemaSha256: 'abababababababababababababababababababababababababababababababab', descriptionSha256: 'cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd' }, new: { schemaSha256: 'cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd', descriptionSha256: 'cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd' } }],
  'knowledge.ingested': [
    {
      collection: 'pricing',
      collectionOwner: 'user:dana',
      title: 'Pricing playbook',
      version: 1,
      class: 'internal',
      source: 'wiki',
      owner: 'user:dana',
      mediaType: 'text/markdown',
      bytes: 1200,
      pages: 1,
      contentSha256: 'ab'.repeat(32),
      retainUntil: null,
      passages: ['cd'.repeat(32)],
    },
    {
      collection: 'board',
      title: 'Minutes',
      version: 2,
      class: 'restricted',
      source: 'board portal',
      owner: 'user:vic',
      mediaType: 'application/pdf',
      bytes: 9000,
      pages: 3,
      contentSha256: 'ab'.repeat(32),
      retainUntil: AT,
      passages: [],
    },
  ],
  'knowledge.searched': [{ queryHash: `sha256:${'ab'.repeat(32)}`, collection: null, limit: 10, passages: ['doc-0123456789ab:1:0'] }],
  'knowledge.purged': [{ reason: 'retention', before: AT, versions: [{ document: 'doc-0123456789ab', version: 1 }], passages: ['doc-0123456789ab:1:0'] }],
  'knowledge.deleted': [{ collection: 'board', title: 'Minutes', reason: null, passages: ['doc-0123456789ab:1:0'] }],
  'knowledge.granted': [{ grant: 'kg-0123456789ab', collection: null, classes: ['restricted'] }],
  'mcp.call_left': [{ tool: 'crm_discount_update', client: { name: 'v1-agent', version: '1.4.0', protocol: '2025-11-25' }, status: 'pending_approval', heldMs: 1200 }],
};

describe('the journal contract', () => {
  it('has a data schema for every kind, and every kind is written somewhere in src', () => {
    expect(JOURNAL_KINDS.length).toBeGreaterThan(0);
    expect(new Set(JOURNAL_KINDS).size).toBe(JOURNAL_KINDS.length);
    const text = sources()
      .filter((f) => !f.endsWith(path.join('journal', 'contract.ts')))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    for (const kind of JOURNAL_KINDS) {
      expect(ENTRY_DATA[kind]).toBeInstanceOf(z.ZodType);
      expect({ kind, written: text.includes(`'${kind}'`) }).toEqual({ kind, written: true });
    }
  });

  it('names every kind that src appends (kind: literals, and kind unions in append code)', () => {
    const known = new Set<string>(JOURNAL_KINDS);
    const found = new Map<string, string>();
    for (const file of sources()) {
      const text = readFileSync(file, 'utf8');
      // `kind: 'x.y'` and `kind: 'x.y' | 'z.w'` (a type naming the kinds an appender takes).
      for (const m of text.matchAll(/\bkind\??:\s*((?:'[^']*'\s*\|?\s*)+)/g)) {
        for (const lit of m[1]!.matchAll(/'([^']*)'/g)) {
          if (lit[1]!.includes('.')) found.set(lit[1]!, path.relative(SRC, file));
        }
      }
    }
    expect(found.size).toBeGreaterThan(20);
    const unknown = [...found].filter(([k]) => !known.has(k)).map(([k, f]) => `${k} (${f})`);
    expect(unknown).toEqual([]);
  });

  it.each(JOURNAL_KINDS.map((k) => [k]))('accepts what Regent writes as %s', (kind) => {
    const examples = EXAMPLES[kind as JournalKind] as unknown[];
    expect(examples.length).toBeGreaterThan(0);
    for (const d of examples) expect(dataProblem(kind as JournalKind, d)).toBeNull();
  });

  it.each([
    ['twin.mode_changed', { from: 'propose' }, /^data\.to: /],
    ['twin.mode_changed', { from: 'propose', to: 'autopilot' }, /^data\.to: /],
    ['twin.created', { owner: 'user:vic', authority: 'cfo', mode: 'propose', keyId: 'k', apiKey: 'rgt_secret' }, /apiKey/],
    ['proposal.transitioned', { twin: 't', action: 'a', from: 'approved', to: 'done' }, /^data\.to: /],
    ['policy.decided', { twin: 't', outcome: 'deny' }, /^data\.request: /],
    ['proposal.reviewed', { decision: 'approve', comment: null }, /^data\.argsHash: /],
    ['journal.exported', { size: -1, root: 'ab'.repeat(32) }, /^data\.size: /],
    ['policy.refused', { errors: [{ file: 'f', line: 'x', message: 'm' }], inForce: null }, /^data\.errors\[0\]\.line: /],
    ['auth.refused', { method: 'GET', path: '/v1/x', status: 500 }, /^data\.status: /],
    ['knowledge.searched', { queryHash: 'sha256:x', collection: null, limit: 10, passages: [] }, /^data\.queryHash: /],
    ['knowledge.searched', { queryHash: `sha256:${'ab'.repeat(32)}`, collection: null, limit: 10, passages: [], text: 'secret' }, /text/],
    ['knowledge.ingested', { collection: 'c', title: 't', version: 1, class: 'secret' }, /^data\.class: /],
  ] as const)('refuses data that does not fit %s: %j', (kind, data, why) => {
    expect(dataProblem(kind, data)).toMatch(why);
  });

  it('lists the entry fields in export order, and the hashed ones in JCS order', () => {
    const e = {
      seq: 7,
      ts: AT,
      kind: 'audit.note',
      actor: 'user:ann',
      subject: null,
      data: { b: 1, a: 2 },
      policyVersion: null,
      leaf: 'ab'.repeat(32),
      chain: 'cd'.repeat(32),
    };
    expect(Object.keys(JSON.parse(exportLine(e)))).toEqual([...ENTRY_FIELDS]);
    expect(Object.keys(JSON.parse(canonicalBody(e)))).toEqual([...CANONICAL_BODY_FIELDS]);
    // JCS sorts keys by UTF-16 code units: what the hashed fields sort to.
    const hashed = ENTRY_FIELDS.filter((f) => f !== 'leaf' && f !== 'chain');
    expect([...hashed].sort()).toEqual([...CANONICAL_BODY_FIELDS]);
  });

  it('verifies entries whose data has fewer fields than its kind now writes, and kinds it does not know', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'regent-contract-'));
    try {
      const old: Omit<JournalEntryBody, 'seq' | 'ts'>[] = [
        { kind: 'policy.decided', actor: 'twin:cfo-twin', subject: 'proposal:p-1', data: { outcome: 'deny' }, policyVersion: V },
        { kind: 'proposal.transitioned', actor: 'system', subject: 'proposal:p-1', data: { to: 'executed' }, policyVersion: null },
        { kind: 'twin.created', actor: 'user:vic', subject: 'twin:t', data: {}, policyVersion: null },
        { kind: 'action.executed', actor: 'system', subject: null, data: { anything: true }, policyVersion: null },
      ];
      const made = await makeExport(dir, { count: old.length, body: (seq) => ({ ...old[seq - 1]!, seq, ts: AT }) });
      expect(dataProblem('policy.decided', old[0]!.data)).not.toBeNull();
      const r = await verifyExport(dir, { keyText: made.vkey });
      expect(r).toMatchObject({ ok: true, size: old.length });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('checkEntryShape', () => {
  const good = {
    seq: 1,
    ts: '2026-11-22T09:00:00.250Z',
    kind: 'audit.note',
    actor: 'user:ann',
    subject: null,
    data: {},
    policyVersion: null,
    leaf: 'ab'.repeat(32),
    chain: 'cd'.repeat(32),
  };

  it('accepts a well-formed entry', () => {
    expect(checkEntryShape(good)).toBeNull();
    expect(checkEntryShape({ ...good, subject: 'proposal:p-1', policyVersion: 'sha256:' + '0f'.repeat(32) })).toBeNull();
  });

  it('accepts any kind and any data object (verification is not append-time checking)', () => {
    expect(checkEntryShape({ ...good, kind: 'action.executed', data: { whatever: [1, 2] } })).toBeNull();
    expect(checkEntryShape({ ...good, kind: 'policy.decided', data: {} })).toBeNull();
  });

  it.each([
    ['a seq of 0', { seq: 0 }, /"seq" must be a positive integer/],
    ['a fractional seq', { seq: 1.5 }, /"seq" must be a positive integer/],
    ['a string seq', { seq: '1' }, /"seq" must be a positive integer/],
    ['a ts without milliseconds', { ts: '2026-11-22T09:00:00Z' }, /"ts" must be RFC 3339 UTC with milliseconds/],
    ['a ts with an offset', { ts: '2026-11-22T09:00:00.250+01:00' }, /"ts" must be/],
    ['a ts on a day that does not exist', { ts: '2026-02-30T09:00:00.250Z' }, /"ts" must be/],
    ['an empty kind', { kind: '' }, /"kind" must be a non-empty string/],
    ['a numeric actor', { actor: 7 }, /"actor" must be a non-empty string/],
    ['a numeric subject', { subject: 3 }, /"subject" must be a string or null/],
    ['a policyVersion without its prefix', { policyVersion: 'ab'.repeat(32) }, /"policyVersion" must be null or sha256:/],
    ['an uppercase leaf', { leaf: 'AB'.repeat(32) }, /"leaf" must be 64 lowercase hex/],
    ['a short chain', { chain: 'cd' }, /"chain" must be 64 lowercase hex/],
  ])('refuses an entry with %s', (_what, patch, why) => {
    expect(checkEntryShape({ ...good, ...patch })).toMatch(why);
  });

  it('accepts 29 February in a leap year only', () => {
    expect(checkEntryShape({ ...good, ts: '2028-02-29T00:00:00.000Z' })).toBeNull();
    expect(checkEntryShape({ ...good, ts: '2026-02-29T00:00:00.000Z' })).toMatch(/"ts"/);
  });

  it('refuses arrays and non-objects', () => {
    expect(checkEntryShape([good])).toBe('not a JSON object');
    expect(checkEntryShape(null)).toBe('not a JSON object');
  });

  it('names missing and unexpected fields', () => {
    const { chain: _chain, ...noChain } = good;
    expect(checkEntryShape(noChain)).toBe('missing field chain');
    expect(checkEntryShape({ ...good, id: 1 })).toMatch(/^unexpected field "id" \(an entry has exactly seq, ts, kind/);
  });
});
