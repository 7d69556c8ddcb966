import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Database } from '../../src/db/database';
import { csvCell } from '../../src/http/routes/journal';
import type { RunningServer } from '../../src/http/server';
import { JOURNAL_KINDS } from '../../src/journal/contract';
import { exportJournal } from '../../src/journal/export';
import { leafHashHex } from '../../src/journal/hash';
import { verifyConsistency, verifyInclusion } from '../../src/journal/merkle';
import { openCheckpoint, parseVerifierKey } from '../../src/journal/note';
import { createJournalQuery } from '../../src/journal/query';
import { verifyExport } from '../../src/journal/verify';
import { call, startApi, type Services } from '../support/api';
import { regent } from '../support/cli';
import { describeEachDatabase, tmpDir } from '../support/databases';

const hex = (h: string) => Buffer.from(h, 'hex');

/** RFC 4180 rows (quoted cells, doubled quotes, CRLF). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += c;
  }
  return rows;
}

describe('CSV cells', () => {
  it.each([
    ['=HYPERLINK("http://x")', `"'=HYPERLINK(""http://x"")"`],
    ['+1', "'+1"],
    ['-2', "'-2"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['\tx', "'\tx"],
    ['\rx', `"'\rx"`],
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    [' padded', '" padded"'],
    [null, ''],
    [42, '42'],
    [{ b: 1, a: '=x' }, '"{""a"":""=x"",""b"":1}"'],
  ])('writes %j as %s', (value, cell) => {
    expect(csvCell(value)).toBe(cell);
  });
});

describeEachDatabase('the journal API', (getDb) => {
  let db: Database;
  let s: Services & { server: RunningServer };
  let url: string;
  let auditor: string;
  let admin: string;
  const proposalId = randomUUID();

  beforeAll(async () => {
    db = await getDb().open();
    s = await startApi(db);
    url = s.server.url;
    auditor = (await s.people.addUser({ id: 'aud', name: 'Aud', roles: ['auditor'] }, 'system')).apiKey;
    admin = (await s.people.addUser({ id: 'ada', name: 'Ada', roles: ['admin'] }, 'system')).apiKey;
    // Data as the pipeline writes it (the journal checks it against contract.ts under jest).
    const decided = (twin: string, outcome: 'deny' | 'execute') => ({
      twin,
      request: { principal: `twin:${twin}`, action: 'crm.discount.update', resource: {}, at: new Date().toISOString() },
      outcome,
      reasons: [],
      authority: null,
      approval: null,
    });
    await s.journal.appendMany([
      { kind: 'policy.decided', actor: 'twin:cfo-twin', subject: `proposal:${proposalId}`, data: decided('cfo-twin', 'deny') },
      { kind: 'policy.decided', actor: 'twin:cfo-twin', subject: `proposal:${randomUUID()}`, data: decided('cfo-twin', 'execute') },
      {
        kind: 'proposal.transitioned',
        actor: 'twin:cfo-twin',
        subject: `proposal:${proposalId}`,
        data: { twin: 'cfo-twin', action: 'crm.discount.update', from: null, to: 'denied', rationale: 'r' },
      },
      { kind: 'twin.mode_changed', actor: 'user:dana', subject: 'twin:cfo-twin', data: { from: 'propose', to: 'execute' } },
      { kind: 'policy.decided', actor: 'twin:other', subject: `proposal:${randomUUID()}`, data: decided('other', 'deny') },
      { kind: 'audit.note', actor: 'user:aud', data: { text: '=HYPERLINK("http://evil")' } },
      { kind: 'audit.note', actor: 'user:aud', data: { text: '-1, "quoted"\r\nnext line' } },
    ]);
    // Enough entries to cross several pages and proof cache blocks.
    for (let i = 0; i < 3; i++) await s.journal.appendMany(Array.from({ length: 900 }, (_, j) => ({ kind: 'audit.note' as const, actor: 'system', data: { n: i * 900 + j } })));
  });
  afterAll(async () => {
    await s?.server.close(1000);
    await s?.journal.stop();
    await db?.close();
  });

  const get = (p: string, key = auditor) => call(url + p, 'GET', key);

  it('lists the kinds of entry (the contract\'s union) to those who may read the journal, and to no one else', async () => {
    for (const key of [auditor, admin]) {
      const r = await get('/v1/journal/kinds', key);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/^application\/json/);
      expect(r.body).toEqual({ kinds: [...JOURNAL_KINDS] });
    }
    expect(JOURNAL_KINDS).toContain('audit.note');
    const executive = (await s.people.addUser({ id: 'exe-kinds', name: 'Exe', roles: ['executive'] }, 'system')).apiKey;
    const refused = await get('/v1/journal/kinds', executive);
    expect(refused.status).toBe(403);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await get('/v1/journal/kinds', null as never)).status).toBe(401);
    expect((await get('/v1/journal/kinds?kind=audit.note')).status).toBe(400);
  });

  it('proves inclusion and consistency like the journal service, reading leaves once into a cache', async () => {
    const q = createJournalQuery(db.sql, { block: 8, fetch: 64 });
    const head = await s.journal.head();
    expect(await q.root(head.size)).toBe(head.root);
    for (const size of [1, 2, 3, 7, 8, 9, 63, 64, 65, 100, 1000, head.size]) {
      for (const seq of [1, 2, Math.ceil(size / 2), size - 1, size].filter((x) => x >= 1 && x <= size)) {
        const mine = await q.inclusionProof(seq, size);
        expect(mine).toEqual(await s.journal.inclusionProof(seq, size));
        expect(verifyInclusion(hex(mine.leaf), seq - 1, size, mine.proof.map(hex), hex(mine.root))).toBe(true);
      }
    }
    for (const [m, n] of [
      [1, 1],
      [1, 5],
      [7, 8],
      [8, 64],
      [63, 1000],
      [100, head.size],
    ] as const) {
      const proof = await q.consistencyProof(m, n);
      expect(proof).toEqual((await s.journal.consistencyProof(m, n)).proof);
      expect(verifyConsistency(m, n, hex(await q.root(m)), hex(await q.root(n)), proof.map(hex))).toBe(true);
    }
    expect(q.cachedHashes()).toBeGreaterThan(0);
  });

  it('filters by kind, actor, twin, proposal, outcome and time, and pages both ways with a cursor', async () => {
    const byTwin = (await get('/v1/journal?twin=cfo-twin&limit=100')).body!;
    expect(byTwin.entries.map((e: { kind: string }) => e.kind)).toEqual(['policy.decided', 'policy.decided', 'proposal.transitioned', 'twin.mode_changed']);
    const byProposal = (await get(`/v1/journal?proposal=${proposalId}`)).body!;
    expect(byProposal.entries.map((e: { subject: string }) => e.subject)).toEqual([`proposal:${proposalId}`, `proposal:${proposalId}`]);
    const denials = (await get('/v1/journal?outcome=deny')).body!;
    expect(denials.entries.map((e: { data: { twin: string } }) => e.data.twin)).toEqual(['cfo-twin', 'other']);
    const denialsOfTwin = (await get('/v1/journal?outcome=deny&twin=other&actor=twin:other')).body!;
    expect(denialsOfTwin.entries).toHaveLength(1);
    const none = (await get('/v1/journal?from=2999-01-01T00:00:00Z')).body!;
    expect(none).toEqual({ entries: [], nextCursor: null });

    // Newest first, page by page, with the cursor: the same entries as oldest first, reversed.
    const asc = (await get('/v1/journal?kind=audit.note&actor=user:aud&limit=1000')).body!.entries.map((e: { seq: number }) => e.seq);
    const desc: number[] = [];
    let cursor: number | null = null;
    do {
      const page: { entries: { seq: number }[]; nextCursor: number | null } = (
        await get(`/v1/journal?kind=audit.note&actor=user:aud&order=desc&limit=1${cursor ? `&cursor=${cursor}` : ''}`)
      ).body as never;
      desc.push(...page.entries.map((e) => e.seq));
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(desc).toEqual([...asc].reverse());
    expect(asc).toHaveLength(2);
  });

  it.each([
    ['/v1/journal?twin=Bad%20Twin', 'query.twin'],
    ['/v1/journal?proposal=nope', 'query.proposal'],
    ['/v1/journal?outcome=maybe', 'query.outcome'],
    ['/v1/journal?order=sideways', 'query.order'],
    ['/v1/journal?limit=1001', 'query.limit'],
    ['/v1/journal?cursor=1&afterSeq=1', 'query.afterSeq'],
    ['/v1/journal?afterSeq=1&order=desc', 'query.afterSeq'],
    ['/v1/journal?to=tomorrow', 'query.to'],
    ['/v1/journal/entries/0', 'path.seq'],
    ['/v1/journal/entries/abc', 'path.seq'],
    ['/v1/journal/entries/99999999999999999', 'path.seq'],
    ['/v1/journal/proof/2?size=1', 'query.size'],
    ['/v1/journal/proof/2?size=999999', 'query.size'],
    ['/v1/journal/consistency', 'query.from'],
    ['/v1/journal/consistency?from=5&to=4', 'query.to'],
    ['/v1/journal/consistency?from=999999', 'query.from'],
    ['/v1/journal/checkpoint?format=pdf', 'query.format'],
    ['/v1/journal/export?format=xml', 'query.format'],
    ['/v1/journal/export?format=bundle&kind=audit.note', 'query.kind'],
    ['/v1/journal/export?sort=asc', 'query.sort'],
  ])('answers %s with 400 naming %s', async (p, field) => {
    const r = await get(p);
    expect({ status: r.status, field: r.body!.field }).toEqual({ status: 400, field });
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(r.body!.detail).toMatch(new RegExp(`^${field.replace('.', '\\.')}: `));
  });

  it('answers an entry beyond the journal with 404', async () => {
    const size = (await s.journal.head()).size;
    const r = await get(`/v1/journal/entries/${size + 10}`);
    expect(r.status).toBe(404);
    expect(r.body!.detail).toBe(`no journal entry ${size + 10}: the journal has ${size} entries`);
    expect((await get(`/v1/journal/proof/${size + 10}`)).status).toBe(404);
  });

  it('gives an entry with an inclusion proof that verifies against the signed checkpoint', async () => {
    const vkey = parseVerifierKey(s.journal.vkeyText);
    const size = (await s.journal.head()).size;
    for (const seq of [1, 5, size]) {
      const r = await get(`/v1/journal/entries/${seq}`);
      expect(r.status).toBe(200);
      const { entry, proof } = r.body!;
      expect(entry.seq).toBe(seq);
      // Recompute the leaf from the entry, as an auditor's own tool would.
      const { leaf, chain, ...body } = entry;
      expect(leafHashHex(body)).toBe(leaf);
      expect(chain).toMatch(/^[0-9a-f]{64}$/);
      expect(proof.leaf).toBe(leaf);
      expect(verifyInclusion(hex(leaf), seq - 1, proof.size, proof.proof.map(hex), hex(proof.root))).toBe(true);
      const opened = openCheckpoint(proof.checkpoint, vkey);
      if (!opened.ok) throw new Error(opened.reason);
      expect(opened.checkpoint.size).toBe(proof.size);
      expect(opened.checkpoint.root.toString('hex')).toBe(proof.root);
    }
  });

  it('proves inclusion at any size, and consistency between two sizes', async () => {
    const r = await get('/v1/journal/proof/3?size=10');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ seq: 3, size: 10 });
    expect(r.body!.root).toBe((await s.journal.inclusionProof(3, 10)).root);
    expect(verifyInclusion(hex(r.body!.leaf), 2, 10, r.body!.proof.map(hex), hex(r.body!.root))).toBe(true);

    const kept = (await get('/v1/journal/checkpoint')).body!;
    await s.journal.append({ kind: 'audit.note', actor: 'system', data: { text: 'later' } });
    const c = await get(`/v1/journal/consistency?from=${kept.size}`);
    expect(c.status).toBe(200);
    expect(c.body!.from).toBe(kept.size);
    expect(c.body!.to).toBeGreaterThan(kept.size);
    expect(c.body!.fromRoot).toBe(kept.root);
    expect(c.body!.checkpoints.from).toBe(kept.note);
    expect(verifyConsistency(c.body!.from, c.body!.to, hex(c.body!.fromRoot), hex(c.body!.toRoot), c.body!.proof.map(hex))).toBe(true);
  });

  it('gives the latest checkpoint as JSON or as the signed note itself', async () => {
    const json = await get('/v1/journal/checkpoint');
    expect(json.body).toMatchObject({ size: expect.any(Number), root: expect.stringMatching(/^[0-9a-f]{64}$/), vkey: s.journal.vkey, origin: s.journal.origin });
    const res = await fetch(`${url}/v1/journal/checkpoint?format=note`, { headers: { authorization: `Bearer ${auditor}` } });
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const note = await res.text();
    const opened = openCheckpoint(note, parseVerifierKey(s.journal.vkeyText));
    expect(opened.ok).toBe(true);
  });

  async function download(p: string, key = auditor) {
    const res = await fetch(url + p, { headers: { authorization: `Bearer ${key}` } });
    return { res, body: Buffer.from(await res.arrayBuffer()) };
  }

  it('exports JSON lines exactly as `regent journal export` writes them, streamed, and journals the export', async () => {
    const { res, body } = await download('/v1/journal/export?format=jsonl');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    expect(res.headers.get('transfer-encoding')).toBe('chunked');
    const size = Number(res.headers.get('regent-journal-size'));
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="regent-journal-${size}.jsonl"`);
    const lines = body.toString('utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(size);
    const out = path.join(tmpDir(), 'cli-export');
    await exportJournal(s.journal, out, 'jest');
    const cli = fs.readFileSync(path.join(out, 'entries.jsonl'), 'utf8').split('\n').filter(Boolean);
    expect(lines).toEqual(cli.slice(0, size));
    const [exported] = (await s.journal.list({ kind: 'journal.exported', actor: 'user:aud', limit: 10_000 })).slice(-1);
    expect(exported!.data).toMatchObject({ format: 'jsonl', size, root: res.headers.get('regent-journal-root') });
  });

  it('exports only the matching lines with filters', async () => {
    const { body } = await download('/v1/journal/export?format=jsonl&twin=cfo-twin');
    const entries = body.toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(entries.map((e) => e.kind)).toEqual(['policy.decided', 'policy.decided', 'proposal.transitioned', 'twin.mode_changed']);
  });

  it('exports CSV with one row per entry and formula-looking cells neutralized', async () => {
    const { res, body } = await download('/v1/journal/export?format=csv&kind=audit.note&actor=user:aud');
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const rows = parseCsv(body.toString('utf8'));
    expect(rows[0]).toEqual(['seq', 'ts', 'kind', 'actor', 'subject', 'twin', 'action', 'outcome', 'text', 'policyVersion', 'data', 'leaf', 'chain']);
    expect(rows).toHaveLength(3);
    const text = rows.map((r) => r[8]);
    expect(text[1]).toBe(`'=HYPERLINK("http://evil")`);
    expect(text[2]).toBe(`'-1, "quoted"\r\nnext line`);
    for (const r of rows.slice(1)) expect(JSON.parse(r[10]!)).toHaveProperty('text');
    const all = await download('/v1/journal/export?format=csv');
    expect(parseCsv(all.body.toString('utf8')).length - 1).toBe(Number(all.res.headers.get('regent-journal-size')));
  });

  it('exports the signed bundle that `regent journal verify` accepts', async () => {
    const { res, body } = await download('/v1/journal/export?format=bundle');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/gzip');
    const size = Number(res.headers.get('regent-journal-size'));
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'bundle.tar.gz'), body);
    execFileSync('tar', ['-xzf', 'bundle.tar.gz'], { cwd: dir });
    const unpacked = path.join(dir, `regent-journal-${size}`);
    expect(fs.readdirSync(unpacked).sort()).toEqual(['checkpoints', 'entries.jsonl', 'journal.vkey', 'manifest.json']);
    expect(await verifyExport(unpacked, { keyText: s.journal.vkeyText })).toMatchObject({ ok: true, size });
    // The CLI, too, with the key given separately.
    fs.writeFileSync(path.join(dir, 'key.vkey'), s.journal.vkeyText + '\n');
    const r = regent(['journal', 'verify', unpacked, '--key', path.join(dir, 'key.vkey'), '--json']);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, size });
  });

  it('refuses exports to admins (exporting stays with auditors) and to nobody without a key', async () => {
    expect((await download('/v1/journal/export', admin)).res.status).toBe(403);
    expect((await fetch(`${url}/v1/journal/export`)).status).toBe(401);
  });
});
