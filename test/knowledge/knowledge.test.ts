/**
 * The knowledge corpus end to end over HTTP, on PGlite and on PostgreSQL: ingest of every format,
 * versions, each bad input (400 naming the field, nothing stored), ranked search filtered by who
 * asks, journaled without text, retention purged across a restart, early deletion, and a journal
 * that verifies afterwards.
 */
import { Document, HeadingLevel, Packer, Paragraph } from 'docx';
import { PDFDocument, PDFHexString, StandardFonts } from 'pdf-lib';
import { loadBundleFromSources } from '../../src/policy/load';
import { call } from '../support/api';
import { describeEachDatabase } from '../support/databases';
import { startRegentApi, type RegentApi } from '../support/regent-api';

const authority = (id: string, extra: string, parent = 'null', delegator = 'user:vic') => `kind: Authority
id: ${id}
version: 1
delegator: ${delegator}
delegate: twin:${id}
parent: ${parent}
valid: { from: 2026-01-01T00:00:00Z, until: 2036-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: crm.note.create
    outcome: execute
${extra}`;

const POLICIES = {
  'authorities/kb-twin.yaml': authority('kb-twin', 'knowledge: { collections: [pricing, board], classes: [public, internal] }\n'),
  'authorities/kb-none.yaml': authority('kb-none', ''),
  'authorities/kb-child.yaml': authority('kb-child', 'knowledge:\n  collections: [pricing]\n  classes: [internal]\n', 'kb-twin', 'twin:kb-twin'),
};

async function pdf(pages: string[][], opts: { encrypt?: boolean } = {}): Promise<Buffer> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  for (const lines of pages) {
    const page = doc.addPage();
    let y = 740;
    for (const line of lines) {
      if (line === '') y -= 30;
      else {
        page.drawText(line, { x: 50, y, font, size: 12 });
        y -= 16;
      }
    }
  }
  if (opts.encrypt) {
    // A standard security handler whose user password is not empty: no reader opens it without one.
    const ctx = doc.context;
    ctx.trailerInfo.Encrypt = ctx.register(
      ctx.obj({ Filter: 'Standard', V: 1, R: 2, O: PDFHexString.of('ab'.repeat(32)), U: PDFHexString.of('cd'.repeat(32)), P: -44 }),
    );
    ctx.trailerInfo.ID = ctx.obj([PDFHexString.of('01'.repeat(16)), PDFHexString.of('01'.repeat(16))]);
  }
  return Buffer.from(await doc.save({ useObjectStreams: false }));
}

async function docx(): Promise<Buffer> {
  const doc = new Document({
    sections: [
      {
        children: [
          new Paragraph({ text: 'Supplier terms', heading: HeadingLevel.HEADING_1 }),
          new Paragraph('Payment terms are net sixty days for strategic suppliers.'),
          new Paragraph({ text: 'Penalties', heading: HeadingLevel.HEADING_2 }),
          new Paragraph('Late delivery costs the supplier one percent per week.'),
        ],
      },
    ],
  });
  return Packer.toBuffer(doc);
}

const DOCX = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeEachDatabase('the knowledge corpus', (getDb) => {
  let api: RegentApi;
  const keys: Record<string, string> = {};
  const add = (key: string, body: Record<string, unknown>) => call(`${api.url}/v1/knowledge/documents`, 'POST', key, body);
  const search = (key: string, q: string, more = '') => call(`${api.url}/v1/knowledge/search?q=${encodeURIComponent(q)}${more}`, 'GET', key);
  const base = { source: 'wiki', owner: 'user:dana' };

  async function start() {
    api = await startRegentApi(getDb(), { extraPolicies: POLICIES, env: { REGENT_MAX_DOCUMENT_BYTES: '200000' } });
    if (api.adminKey) keys.admin = api.adminKey;
  }

  beforeAll(async () => {
    await start();
    const { people, twins } = api.regent;
    for (const [id, roles] of [
      ['vic', ['executive']],
      ['dana', ['executive']],
      ['audrey', ['auditor']],
      ['greta', ['auditor']],
      ['adam', ['approver']],
    ] as const)
      keys[id] = (await people.addUser({ id, name: id, roles: [...roles] }, 'system')).apiKey;
    keys.twin = (await twins.create({ id: 'kb-twin', owner: 'user:vic', authority: 'kb-twin', mode: 'propose' }, 'system')).apiKey;
    keys.none = (await twins.create({ id: 'kb-none', owner: 'user:vic', authority: 'kb-none', mode: 'propose' }, 'system')).apiKey;
  });
  afterAll(async () => api?.close());

  const count = async () => {
    const [r] = await api.regent.db.sql.query<{ d: number; p: number }>(
      'SELECT (SELECT count(*)::int FROM knowledge_versions) AS d, (SELECT count(*)::int FROM knowledge_passages) AS p',
    );
    return { ...r!, journal: (await api.regent.journal.head()).size };
  };

  it('ingests plain text, Markdown (heading paths kept), HTML, PDF and DOCX', async () => {
    const md = await add(keys.admin!, {
      ...base,
      collection: 'pricing',
      title: 'Pricing playbook',
      class: 'internal',
      mediaType: 'text/markdown',
      text: '# Pricing playbook\n\nHow we price.\n\n## Discounts\n\nRenewal discounts up to fifteen percent need a citation of this playbook.\n\n## Payment\n\nInvoices are due in thirty days.',
    });
    expect(md.status).toBe(201);
    expect(md.body).toMatchObject({ id: expect.stringMatching(/^doc-[0-9a-f]{12}$/), version: 1, chunks: 3, class: 'internal', pages: 1 });
    const hit = await search(keys.admin!, 'renewal discount');
    expect(hit.status).toBe(200);
    expect(hit.body!.passages[0]).toMatchObject({
      id: `${md.body!.id}:1:1`,
      document: md.body!.id,
      version: 1,
      chunk: 1,
      title: 'Pricing playbook',
      headings: ['Pricing playbook', 'Discounts'],
      class: 'internal',
      source: 'wiki',
      text: expect.stringContaining('fifteen percent'),
    });

    const txt = await add(keys.admin!, { ...base, collection: 'faq', title: 'FAQ', class: 'public', text: 'Where is the office?\n\nIn Berlin.\n\nOpening hours are nine to five.' });
    expect(txt.status).toBe(201);
    const html = await add(keys.admin!, {
      ...base,
      collection: 'faq',
      title: 'Travel policy',
      class: 'public',
      contentBase64: Buffer.from('<html><body><h1>Travel</h1><p>Book trains <b>before</b> flights.</p><h2>Hotels</h2><p>Hotels up to 150 EUR a night.</p></body></html>').toString('base64'),
      mediaType: 'text/html',
    });
    expect(html.status).toBe(201);
    expect((await search(keys.admin!, 'hotels night')).body!.passages[0]).toMatchObject({ headings: ['Travel', 'Hotels'], text: expect.stringContaining('150 EUR') });

    const p = await add(keys.admin!, {
      ...base,
      owner: 'legal team', // not a user: the collection the admin makes stays the admin's
      collection: 'contracts',
      title: 'Acme master agreement',
      class: 'confidential',
      contentBase64: (await pdf([['Master agreement with Acme.', '', 'Liability is capped at one million euros.'], ['Termination needs ninety days notice.']])).toString('base64'),
      mediaType: 'application/pdf',
    });
    expect(p.status).toBe(201);
    expect(p.body).toMatchObject({ pages: 2 });
    const term = (await search(keys.admin!, 'termination notice')).body!.passages;
    expect(term[0]).toMatchObject({ page: 2, text: expect.stringContaining('ninety days') });

    const d = await add(keys.admin!, { ...base, collection: 'contracts', title: 'Supplier terms', class: 'internal', contentBase64: (await docx()).toString('base64'), mediaType: DOCX });
    expect(d.status).toBe(201);
    expect((await search(keys.admin!, 'late delivery')).body!.passages[0]).toMatchObject({ headings: ['Supplier terms', 'Penalties'] });
  });

  it('makes the same collection and title again a new version; search returns the latest, the earlier stays', async () => {
    const v1 = await add(keys.admin!, { ...base, collection: 'faq', title: 'Parking', class: 'public', text: 'Parking is free in the yard.' });
    const v2 = await add(keys.admin!, { ...base, collection: 'faq', title: 'Parking', class: 'public', text: 'Parking in the yard costs five euros.' });
    expect(v2.body).toMatchObject({ id: v1.body!.id, version: 2 });
    const r = (await search(keys.admin!, 'parking yard')).body!.passages;
    expect(r.map((x: { id: string }) => x.id)).toEqual([`${v1.body!.id}:2:0`]);
    expect(await api.regent.knowledge.passage(`${v1.body!.id}:1:0`)).toMatchObject({ text: 'Parking is free in the yard.', latest: false, purged: false });
  });

  it('makes a new collection once, and numbers versions without gaps, when documents arrive at once', async () => {
    const same = { ...base, collection: 'race', title: 'Same', class: 'internal' as const };
    const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => add(keys.admin!, { ...same, text: `Version text ${i}.` })));
    expect(rs.map((r) => r.status)).toEqual([201, 201, 201, 201, 201, 201]);
    expect(new Set(rs.map((r) => r.body!.id)).size).toBe(1);
    expect(rs.map((r) => r.body!.version).sort()).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('reads a document upload only for an authenticated caller (no body of that size is parsed for anyone who can reach the port)', async () => {
    const post = (body: string, key?: string) =>
      fetch(`${api.url}/v1/knowledge/documents`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body,
      });
    // Over the API's body limit (256 KiB) and under the upload's: malformed, and too big even for an upload.
    const garbled = `{"text": "${'x'.repeat(300_000)}`;
    const huge = JSON.stringify({ text: 'x'.repeat(400_000) });
    expect((await post(garbled)).status).toBe(401);
    expect((await post(huge)).status).toBe(401);
    // Signed in, the same bodies are read, and refused for what they are.
    expect((await post(garbled, keys.admin)).status).toBe(400);
    expect((await post(huge, keys.admin)).status).toBe(413);
  });

  it('refuses each bad input with a 400 naming the field, and stores nothing', async () => {
    const before = await count();
    const ok = { ...base, collection: 'bad', title: 'Bad', class: 'internal', text: 'fine' };
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ ...ok, text: '' }, 'text', /no text/],
      [{ ...ok, text: ' \n\n \t' }, 'text', /no text/],
      [{ ...ok, text: 'x'.repeat(200_001) }, 'text', /REGENT_MAX_DOCUMENT_BYTES/],
      [{ ...ok, class: 'secret' }, 'body.class', /unknown class "secret"/],
      [{ ...ok, collection: 'Board Minutes!' }, 'body.collection', /is an id/],
      [{ ...ok, retainUntil: '2020-01-01T00:00:00Z' }, 'body.retainUntil', /in the past/],
      [{ ...ok, text: undefined, contentBase64: (await pdf([['secret']], { encrypt: true })).toString('base64'), mediaType: 'application/pdf' }, 'contentBase64', /encrypted/],
      [{ ...ok, text: undefined, contentBase64: Buffer.from('%PDF-1.7\nthis is no pdf').toString('base64'), mediaType: 'application/pdf' }, 'contentBase64', /PDF cannot be read/],
      [{ ...ok, text: undefined, contentBase64: Buffer.from('not a zip').toString('base64'), mediaType: DOCX }, 'contentBase64', /DOCX cannot be read/],
      [{ ...ok, text: undefined, contentBase64: 'not base64!', mediaType: 'text/plain' }, 'contentBase64', /base64/],
      [{ ...ok, text: undefined, contentBase64: 'aGk=' }, 'body.mediaType', /required with contentBase64/],
      [{ ...ok, text: undefined }, 'body.text', /required/],
    ];
    for (const [body, field, message] of cases) {
      const r = await add(keys.admin!, body);
      expect({ field, status: r.status, detail: r.body!.detail }).toEqual({ field, status: 400, detail: expect.stringMatching(message) });
      expect(r.body!.field).toBe(field);
    }
    const q = await call(`${api.url}/v1/knowledge/search?q=`, 'GET', keys.admin!);
    expect(q).toMatchObject({ status: 400, body: { field: 'query.q' } });
    expect(await count()).toEqual(before);
  });

  it('filters search by who asks: auditors up to confidential, restricted by grant or ownership, twins by authority', async () => {
    // Board minutes into a collection an admin makes for Vic (the document's owner).
    const minutes = await add(keys.admin!, { source: 'board portal', owner: 'user:vic', collection: 'board', title: 'Board minutes March', class: 'restricted', text: 'The board approved the restructuring of the pricing team.' });
    expect(minutes.status).toBe(201);
    const ids = async (key: string, q: string) => {
      const r = await search(key, q);
      return r.status === 200 ? r.body!.passages.map((p: { title: string }) => p.title) : r.status;
    };
    expect(await ids(keys.audrey!, 'restructuring')).toEqual([]);
    expect(await ids(keys.audrey!, 'liability')).toEqual(['Acme master agreement']); // confidential
    expect(await ids(keys.vic!, 'restructuring')).toEqual(['Board minutes March']); // he owns board
    expect(await ids(keys.dana!, 'restructuring')).toEqual([]);
    expect(await ids(keys.dana!, 'liability')).toEqual([]); // confidential, not hers
    expect(await ids(keys.twin!, 'restructuring')).toEqual([]); // restricted: not granted
    expect(await ids(keys.twin!, 'discount')).toEqual(['Pricing playbook']);
    expect(await ids(keys.twin!, 'office')).toEqual([]); // faq: not among its collections
    expect(await ids(keys.twin!, 'liability')).toEqual([]);
    expect(await ids(keys.none!, 'discount')).toBe(403);
    expect(await ids(keys.adam!, 'discount')).toBe(403);

    await api.regent.knowledge.grant('user:greta', 'board', ['restricted'], 'user:admin');
    expect(await ids(keys.greta!, 'restructuring')).toEqual(['Board minutes March']);
    expect(await ids(keys.audrey!, 'restructuring')).toEqual([]);

    // Executives add only to collections they own (or a new one, which becomes theirs).
    expect((await add(keys.dana!, { ...base, collection: 'board', title: 'Note', class: 'internal', text: 'x' })).status).toBe(403);
    expect((await add(keys.dana!, { ...base, collection: 'dana-notes', title: 'Note', class: 'restricted', text: 'Private restructuring thoughts.' })).status).toBe(201);
    expect(await ids(keys.dana!, 'restructuring')).toEqual(['Note']);
    expect((await add(keys.audrey!, { ...base, collection: 'x', title: 'x', class: 'public', text: 'x' })).status).toBe(403);
  });

  it('ranks passages that match better first, and journals every search without the text', async () => {
    await add(keys.admin!, { ...base, collection: 'pricing', title: 'Rebates', class: 'internal', text: 'Rebates are rare.' });
    await add(keys.admin!, { ...base, collection: 'pricing', title: 'Rebate rules', class: 'internal', text: 'Rebate rules: a rebate is a rebate only when the rebate is booked.' });
    const r = await search(keys.twin!, 'rebate', '&collection=pricing');
    expect(r.body!.passages.map((p: { title: string }) => p.title)).toEqual(['Rebate rules', 'Rebates']);
    expect(r.body!.passages[0].rank).toBeGreaterThan(r.body!.passages[1].rank);
    const entries = await api.regent.db.sql.query<{ actor: string; data: Record<string, unknown> }>(
      `SELECT actor, data FROM journal_entries WHERE kind = 'knowledge.searched' ORDER BY seq DESC LIMIT 1`,
    );
    expect(entries[0]).toEqual({
      actor: 'twin:kb-twin',
      data: { queryHash: r.body!.queryHash, collection: 'pricing', limit: 10, passages: r.body!.passages.map((p: { id: string }) => p.id) },
    });
    expect(JSON.stringify(entries)).not.toContain('booked');
  });

  it('never returns passages past retention, purges them on start after a restart, deletes early; the journal verifies', async () => {
    const soon = new Date(Date.now() + 1500).toISOString();
    const doc = await add(keys.admin!, { ...base, collection: 'faq', title: 'Old offer', class: 'public', text: 'The spring offer gives ten percent off.', retainUntil: soon });
    expect(doc.status).toBe(201);
    expect((await search(keys.admin!, 'spring offer')).body!.passages).toHaveLength(1);
    await sleep(1600);
    expect((await search(keys.admin!, 'spring offer')).body!.passages).toHaveLength(0);
    const id = `${doc.body!.id}:1:0`;
    expect(await api.regent.knowledge.passage(id)).toMatchObject({ purged: false }); // the timer has not run here

    await api.close();
    await start();
    api.regent.knowledge.start();
    await api.regent.knowledge.stop(); // waits for the purge that start runs at once
    const purged = await api.regent.knowledge.passage(id);
    expect(purged).toMatchObject({ text: '', purged: true, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const [entry] = await api.regent.db.sql.query<{ data: { passages: string[] } }>(`SELECT data FROM journal_entries WHERE kind = 'knowledge.purged' ORDER BY seq DESC LIMIT 1`);
    expect(entry!.data.passages).toContain(id);

    const minutes = (await search(keys.vic!, 'restructuring')).body!.passages[0];
    const del = await call(`${api.url}/v1/knowledge/documents/${minutes.document}?reason=${encodeURIComponent('board asked')}`, 'DELETE', keys.admin!);
    expect(del).toMatchObject({ status: 200, body: { id: minutes.document, passages: 1 } });
    expect((await search(keys.vic!, 'restructuring')).body!.passages).toEqual([]);
    expect(await api.regent.knowledge.passage(minutes.id)).toMatchObject({ text: '', purged: true, sha256: minutes.sha256 });
    expect((await call(`${api.url}/v1/knowledge/documents/${minutes.document}`, 'DELETE', keys.admin!)).status).toBe(404);
    expect((await call(`${api.url}/v1/knowledge/documents/${minutes.document}`, 'DELETE', keys.vic!)).status).toBe(403);

    const v = await call(`${api.url}/v1/journal/verify`, 'GET', keys.audrey!);
    expect(v).toMatchObject({ status: 200, body: { ok: true } });
  });
});

describe('the authority field knowledge', () => {
  const load = (docs: Record<string, string>) => loadBundleFromSources(Object.entries(docs).map(([file, text]) => ({ file, text })));

  it('loads a child that narrows its parent, and refuses one that widens it, at file:line', () => {
    expect(load({ 'p/kb-twin.yaml': POLICIES['authorities/kb-twin.yaml'], 'p/kb-child.yaml': POLICIES['authorities/kb-child.yaml'] }).ok).toBe(true);
    const wide = authority('kb-child', 'knowledge:\n  collections: [pricing, hr]\n  classes: [internal, restricted]\n', 'kb-twin', 'twin:kb-twin');
    const r = load({ 'p/kb-twin.yaml': POLICIES['authorities/kb-twin.yaml'], 'p/kb-child.yaml': wide });
    expect(r.ok ? [] : r.errors).toEqual([
      { file: 'p/kb-child.yaml', line: 14, message: expect.stringMatching(/^knowledge\.collections hr widens parent kb-twin's \(pricing, board\)/) },
      { file: 'p/kb-child.yaml', line: 15, message: expect.stringMatching(/^knowledge\.classes restricted widens parent kb-twin's \(public, internal\)/) },
    ]);
    const orphan = load({ 'p/kb-none.yaml': POLICIES['authorities/kb-none.yaml'], 'p/kb-child.yaml': POLICIES['authorities/kb-child.yaml'].replace('parent: kb-twin', 'parent: kb-none') });
    expect(orphan.ok ? [] : orphan.errors).toEqual([
      { file: 'p/kb-child.yaml', line: 13, message: expect.stringMatching(/^knowledge widens parent kb-none, which grants none/) },
    ]);
    const bad = load({ 'p/kb-twin.yaml': POLICIES['authorities/kb-twin.yaml'].replace('classes: [public, internal]', 'classes: [public, secret]') });
    expect(bad.ok ? [] : bad.errors).toEqual([{ file: 'p/kb-twin.yaml', line: expect.any(Number), message: expect.stringMatching(/unknown class "secret"/) }]);
  });
});
