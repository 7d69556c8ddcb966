import { cp, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chainHash, JournalEntry, JournalEntryBody, leafHash, ZERO_CHAIN } from './hash';
import { rootOf } from './merkle';
import { generateSigningKey, parseCheckpoint, signCheckpoint, signNote, vkeyOf } from './note';
import { defaultBody, makeExport } from './testing/make-export';
import { SELF_KEY_WARNING, verifyExport, VerifyResult } from './verify';

const VECTOR = path.resolve(__dirname, '../../test/fixtures/journal-vector/export');
const VECTOR_KEY = readFileSync(path.join(VECTOR, 'journal.vkey'), 'utf8');

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'regent-verify-'));
  tempDirs.push(d);
  return d;
}
afterAll(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** A private copy of the vector export to tamper with. */
async function vectorCopy(): Promise<string> {
  const d = path.join(await tempDir(), 'export');
  await cp(VECTOR, d, { recursive: true });
  return d;
}

async function readLines(dir: string): Promise<string[]> {
  const text = await readFile(path.join(dir, 'entries.jsonl'), 'utf8');
  return text.split('\n').filter((l) => l.length > 0);
}

async function writeLines(dir: string, lines: string[]): Promise<void> {
  await writeFile(path.join(dir, 'entries.jsonl'), lines.map((l) => l + '\n').join(''));
}

async function editManifest(dir: string, edit: (m: { origin: string; size: number; checkpoints: number[] }) => void): Promise<void> {
  const file = path.join(dir, 'manifest.json');
  const m = JSON.parse(await readFile(file, 'utf8'));
  edit(m);
  await writeFile(file, JSON.stringify(m));
}

/** Re-derives leaf and chain for every line, as an attacker covering an edit would. */
function rehash(lines: string[]): string[] {
  let prev = ZERO_CHAIN;
  return lines.map((l) => {
    const e = JSON.parse(l) as JournalEntry;
    const leaf = leafHash(e);
    const chain = chainHash(prev, leaf);
    prev = chain;
    return JSON.stringify({ ...e, leaf: leaf.toString('hex'), chain: chain.toString('hex') });
  });
}

function failureOf(r: VerifyResult) {
  if (r.ok) throw new Error(`expected verification to fail, but it passed: ${JSON.stringify(r)}`);
  return r.failure;
}

describe('verifyExport on the independent vector', () => {
  it('accepts the vector with --key, reporting its size, checkpoints and root', async () => {
    const r = await verifyExport(VECTOR, { keyText: VECTOR_KEY });
    const note9 = readFileSync(path.join(VECTOR, 'checkpoints', '9.note'), 'utf8');
    const root9 = parseCheckpoint(note9.slice(0, note9.lastIndexOf('\n\n') + 1)).root;
    expect(r).toEqual({
      ok: true,
      size: 9,
      checkpoints: [5, 9],
      root: root9.toString('hex'),
      keySource: 'argument',
      warnings: [],
    });
  });

  it("reproduces every leaf and chain in the vector with Regent's own hashing", async () => {
    const entries = (await readLines(VECTOR)).map((l) => JSON.parse(l) as JournalEntry);
    let prev = ZERO_CHAIN;
    const leaves: Buffer[] = [];
    for (const e of entries) {
      const leaf = leafHash(e);
      const chain = chainHash(prev, leaf);
      expect([e.seq, leaf.toString('hex'), chain.toString('hex')]).toEqual([e.seq, e.leaf, e.chain]);
      leaves.push(leaf);
      prev = chain;
    }
    expect(rootOf(leaves, 9).toString('hex')).toBe((await verifyExport(VECTOR, { keyText: VECTOR_KEY }) as { root: string }).root);
  });

  it('accepts the vector without --key but warns that the key came from the export itself', async () => {
    const r = await verifyExport(VECTOR, {});
    expect(r).toMatchObject({ ok: true, keySource: 'export', warnings: [SELF_KEY_WARNING] });
  });

  it('accepts the vector against a trusted checkpoint it is consistent with', async () => {
    const trusted = readFileSync(path.join(VECTOR, 'checkpoints', '5.note'), 'utf8');
    expect(await verifyExport(VECTOR, { keyText: VECTOR_KEY, trustedNoteText: trusted })).toMatchObject({ ok: true, size: 9 });
    const same = readFileSync(path.join(VECTOR, 'checkpoints', '9.note'), 'utf8');
    expect(await verifyExport(VECTOR, { keyText: VECTOR_KEY, trustedNoteText: same })).toMatchObject({ ok: true, size: 9 });
  });
});

describe('verifyExport refuses tampered copies of the vector', () => {
  it('refuses an export whose line 3 had one byte of its data edited, naming seq 3', async () => {
    const dir = await vectorCopy();
    const lines = await readLines(dir);
    lines[2] = (lines[2] as string).replace('back', 'bock');
    await writeLines(dir, lines);
    const f = failureOf(await verifyExport(dir, { keyText: VECTOR_KEY }));
    expect(f).toMatchObject({ at: 'seq', seq: 3 });
    expect(f.message).toMatch(/leaf .* does not match the entry's content/);
  });

  it('refuses an export whose line 4 was dropped, naming seq 4', async () => {
    const dir = await vectorCopy();
    const lines = await readLines(dir);
    lines.splice(3, 1);
    await writeLines(dir, lines);
    const f = failureOf(await verifyExport(dir, { keyText: VECTOR_KEY }));
    expect(f).toMatchObject({ at: 'seq', seq: 4 });
    expect(f.message).toMatch(/line 4 holds seq 5 where seq 4 was expected/);
  });

  it('refuses an export whose lines 3 and 4 were swapped, naming seq 3', async () => {
    const dir = await vectorCopy();
    const lines = await readLines(dir);
    [lines[2], lines[3]] = [lines[3] as string, lines[2] as string];
    await writeLines(dir, lines);
    expect(failureOf(await verifyExport(dir, { keyText: VECTOR_KEY }))).toMatchObject({ at: 'seq', seq: 3 });
  });

  it('refuses an export whose line 3 was duplicated, naming seq 4', async () => {
    const dir = await vectorCopy();
    const lines = await readLines(dir);
    lines.splice(3, 0, lines[2] as string);
    await writeLines(dir, lines);
    const f = failureOf(await verifyExport(dir, { keyText: VECTOR_KEY }));
    expect(f).toMatchObject({ at: 'seq', seq: 4 });
    expect(f.message).toMatch(/line 4 holds seq 3/);
  });

  it('refuses an export whose seq values were renumbered after a drop, naming the broken chain link', async () => {
    const dir = await vectorCopy();
    const lines = (await readLines(dir)).map((l) => JSON.parse(l) as JournalEntry);
    lines.splice(3, 1);
    lines.forEach((e, i) => (e.seq = i + 1));
    await writeLines(dir, lines.map((e) => JSON.stringify(e)));
    // Renumbering changes the leaf of every later entry: seq 4 is the first that no longer matches.
    expect(failureOf(await verifyExport(dir, { keyText: VECTOR_KEY }))).toMatchObject({ at: 'seq', seq: 4 });
  });

  it('refuses an export whose last two lines were cut, since the manifest still says 9', async () => {
    const dir = await vectorCopy();
    await writeLines(dir, (await readLines(dir)).slice(0, 7));
    const f = failureOf(await verifyExport(dir, { keyText: VECTOR_KEY }));
    expect(f).toMatchObject({ at: 'manifest' });
    expect(f.message).toMatch(/says size 9 but entries.jsonl has 7 entries/);
  });

  it('refuses a cut tail with the manifest fixed, because checkpoint 9 covers entries that are gone', async () => {
    const dir = await vectorCopy();
    await writeLines(dir, (await readLines(dir)).slice(0, 7));
    await editManifest(dir, (m) => (m.size = 7));
    const f = failureOf(await verifyExport(dir, { keyText: VECTOR_KEY }));
    expect(f).toMatchObject({ at: 'checkpoint', checkpoint: 9 });
    expect(f.message).toMatch(/covers more entries than the export's 7/);
  });

  it('refuses a cut tail whose later checkpoint was removed too, because no checkpoint covers the last entries', async () => {
    const dir = await vectorCopy();
    await writeLines(dir, (await readLines(dir)).slice(0, 7));
    await unlink(path.join(dir, 'checkpoints', '9.note'));
    await editManifest(dir, (m) => {
      m.size = 7;
      m.checkpoints = [5];
    });
    const f = failureOf(await verifyExport(dir, { keyText: VECTOR_KEY }));
    expect(f).toMatchObject({ at: 'checkpoint', checkpoint: 5 });
    expect(f.message).toMatch(/no checkpoint at the export's size 7 \(latest is 5\)/);
  });

  it('catches a tail cut back exactly to an earlier checkpoint only with --trusted, naming both sizes', async () => {
    const dir = await vectorCopy();
    await writeLines(dir, (await readLines(dir)).slice(0, 5));
    await unlink(path.join(dir, 'checkpoints', '9.note'));
    await editManifest(dir, (m) => {
      m.size = 5;
      m.checkpoints = [5];
    });
    // On its own the shortened export is a perfectly valid journal of 5 entries...
    expect(await verifyExport(dir, { keyText: VECTOR_KEY })).toMatchObject({ ok: true, size: 5 });
    // ...but an auditor holding the size-9 checkpoint sees the rollback.
    const trusted = readFileSync(path.join(VECTOR, 'checkpoints', '9.note'), 'utf8');
    const f = failureOf(await verifyExport(dir, { keyText: VECTOR_KEY, trustedNoteText: trusted }));
    expect(f).toMatchObject({ at: 'trusted', checkpoint: 9 });
    expect(f.message).toBe('export (size 5) is older than the trusted checkpoint (size 9)');
  });

  it('refuses an edit covered by recomputed leaves and chains, at the first checkpoint whose root no longer matches', async () => {
    const dir = await vectorCopy();
    const lines = await readLines(dir);
    lines[2] = (lines[2] as string).replace('back', 'bock');
    await writeLines(dir, rehash(lines));
    const f = failureOf(await verifyExport(dir, { keyText: VECTOR_KEY }));
    expect(f).toMatchObject({ at: 'checkpoint', checkpoint: 5 });
    expect(f.message).toMatch(/signed root .* differs from the root of the first 5 entries/);
  });

  it('refuses a rewritten history re-signed with another key of the same name when --key is given', async () => {
    const dir = await vectorCopy();
    const lines = rehash((await readLines(dir)).map((l, i) => (i === 2 ? l.replace('back', 'bock') : l)));
    await writeLines(dir, lines);
    const attacker = generateSigningKey('regent.example/journal');
    const leaves = lines.map((l) => Buffer.from((JSON.parse(l) as JournalEntry).leaf, 'hex'));
    for (const n of [5, 9]) {
      await writeFile(
        path.join(dir, 'checkpoints', `${n}.note`),
        signCheckpoint({ origin: 'regent.example/journal', size: n, root: rootOf(leaves, n) }, attacker),
      );
    }
    await writeFile(path.join(dir, 'journal.vkey'), vkeyOf(attacker) + '\n');

    const f = failureOf(await verifyExport(dir, { keyText: VECTOR_KEY }));
    expect(f).toMatchObject({ at: 'checkpoint', checkpoint: 5 });
    expect(f.message).toMatch(/no signature by regent\.example\/journal\+2720bbae/);
    // Without --key the forgery is self-consistent: that is exactly what the warning is about.
    expect(await verifyExport(dir, {})).toMatchObject({ ok: true, keySource: 'export', warnings: [SELF_KEY_WARNING] });
  });

  it('warns when the export carries a different journal.vkey than --key, but trusts only --key', async () => {
    const dir = await vectorCopy();
    await writeFile(path.join(dir, 'journal.vkey'), vkeyOf(generateSigningKey('regent.example/journal')) + '\n');
    const r = await verifyExport(dir, { keyText: VECTOR_KEY });
    expect(r).toMatchObject({ ok: true, keySource: 'argument' });
    expect((r as { warnings: string[] }).warnings).toEqual([expect.stringMatching(/journal\.vkey differs from the key given with --key/)]);
  });

  it('refuses an export whose checkpoint 5 note had its root edited, naming checkpoint 5', async () => {
    const dir = await vectorCopy();
    const file = path.join(dir, 'checkpoints', '5.note');
    const note = await readFile(file, 'utf8');
    const lines = note.split('\n');
    lines[2] = Buffer.alloc(32, 1).toString('base64');
    await writeFile(file, lines.join('\n'));
    const f = failureOf(await verifyExport(dir, { keyText: VECTOR_KEY }));
    expect(f).toMatchObject({ at: 'checkpoint', checkpoint: 5 });
    expect(f.message).toMatch(/does not verify/);
  });

  it('refuses an export whose checkpoint 9 note was swapped for checkpoint 5, naming checkpoint 9', async () => {
    const dir = await vectorCopy();
    await cp(path.join(dir, 'checkpoints', '5.note'), path.join(dir, 'checkpoints', '9.note'));
    const f = failureOf(await verifyExport(dir, { keyText: VECTOR_KEY }));
    expect(f).toMatchObject({ at: 'checkpoint', checkpoint: 9 });
    expect(f.message).toMatch(/holds a checkpoint of size 5/);
  });

  it('refuses an export missing a checkpoint file that the manifest lists, naming checkpoint 5', async () => {
    const dir = await vectorCopy();
    await unlink(path.join(dir, 'checkpoints', '5.note'));
    const f = failureOf(await verifyExport(dir, { keyText: VECTOR_KEY }));
    expect(f).toMatchObject({ at: 'checkpoint', checkpoint: 5 });
    expect(f.message).toMatch(/listed in manifest.json but checkpoints\/5.note is missing/);
  });

  it('refuses an export with a checkpoint file the manifest does not list', async () => {
    const dir = await vectorCopy();
    await editManifest(dir, (m) => (m.checkpoints = [9]));
    expect(failureOf(await verifyExport(dir, { keyText: VECTOR_KEY }))).toMatchObject({ at: 'manifest', checkpoint: 5 });
  });

  it('refuses an export whose line 6 is not valid JSON, naming seq 6', async () => {
    const dir = await vectorCopy();
    const lines = await readLines(dir);
    lines[5] = (lines[5] as string).slice(0, 40);
    await writeLines(dir, lines);
    const f = failureOf(await verifyExport(dir, { keyText: VECTOR_KEY }));
    expect(f).toMatchObject({ at: 'seq', seq: 6 });
    expect(f.message).toMatch(/line 6 is not valid JSON/);
  });

  it('refuses an export with an extra field on line 2, naming seq 2', async () => {
    const dir = await vectorCopy();
    const lines = await readLines(dir);
    lines[1] = JSON.stringify({ ...JSON.parse(lines[1] as string), note: 'x' });
    await writeLines(dir, lines);
    const f = failureOf(await verifyExport(dir, { keyText: VECTOR_KEY }));
    expect(f).toMatchObject({ at: 'seq', seq: 2 });
    expect(f.message).toMatch(/unexpected field "note"/);
  });

  it('refuses an export with a field missing on line 7, naming seq 7', async () => {
    const dir = await vectorCopy();
    const lines = await readLines(dir);
    const { subject: _drop, ...rest } = JSON.parse(lines[6] as string) as JournalEntry;
    lines[6] = JSON.stringify(rest);
    await writeLines(dir, lines);
    const f = failureOf(await verifyExport(dir, { keyText: VECTOR_KEY }));
    expect(f).toMatchObject({ at: 'seq', seq: 7 });
    expect(f.message).toMatch(/missing field subject/);
  });

  it('refuses an export with an empty line in the middle, naming the seq expected there', async () => {
    const dir = await vectorCopy();
    const lines = await readLines(dir);
    lines.splice(4, 0, '');
    await writeLines(dir, lines);
    expect(failureOf(await verifyExport(dir, { keyText: VECTOR_KEY }))).toMatchObject({ at: 'seq', seq: 5 });
  });

  it('accepts an export whose last line has no trailing newline', async () => {
    const dir = await vectorCopy();
    const text = await readFile(path.join(dir, 'entries.jsonl'), 'utf8');
    await writeFile(path.join(dir, 'entries.jsonl'), text.replace(/\n$/, ''));
    expect(await verifyExport(dir, { keyText: VECTOR_KEY })).toMatchObject({ ok: true, size: 9 });
  });

  it('refuses a --key that is not a verifier key', async () => {
    const f = failureOf(await verifyExport(VECTOR, { keyText: 'regent.example/journal+zz+AA' }));
    expect(f.at).toBe('key');
    expect(f.message).toMatch(/--key is not a usable verifier key/);
  });

  it('refuses a --key for a different log, naming the key as the problem', async () => {
    const other = generateSigningKey('other.example/log');
    const f = failureOf(await verifyExport(VECTOR, { keyText: vkeyOf(other) }));
    expect(f).toMatchObject({ at: 'key' });
    expect(f.message).toMatch(/key is for log "other.example\/log" but the export's manifest.json names log "regent.example\/journal"/);
  });

  it('refuses an export without a manifest, or without entries', async () => {
    const a = await vectorCopy();
    await unlink(path.join(a, 'manifest.json'));
    expect(failureOf(await verifyExport(a, { keyText: VECTOR_KEY }))).toMatchObject({ at: 'manifest', message: 'manifest.json is missing' });
    const b = await vectorCopy();
    await unlink(path.join(b, 'entries.jsonl'));
    expect(failureOf(await verifyExport(b, { keyText: VECTOR_KEY }))).toMatchObject({ at: 'file', message: 'entries.jsonl is missing' });
    expect(failureOf(await verifyExport(path.join(b, 'nope'), { keyText: VECTOR_KEY }))).toMatchObject({ at: 'file' });
  });

  it('refuses a trusted checkpoint that is not signed by the key', async () => {
    const impostor = generateSigningKey('regent.example/journal');
    const forged = signCheckpoint({ origin: 'regent.example/journal', size: 3, root: Buffer.alloc(32) }, impostor);
    const f = failureOf(await verifyExport(VECTOR, { keyText: VECTOR_KEY, trustedNoteText: forged }));
    expect(f).toMatchObject({ at: 'trusted' });
    expect(f.message).toMatch(/trusted checkpoint does not verify: note has no signature by regent\.example\/journal\+2720bbae/);
  });
});

describe('verifyExport on generated exports', () => {
  it('accepts an export made with makeExport, checking a consistency proof from the trusted size', async () => {
    const dir = await tempDir();
    const made = await makeExport(dir, { count: 1234, checkpointsAt: [1, 100, 1000, 1234] });
    const trusted = await readFile(path.join(dir, 'checkpoints', '100.note'), 'utf8');
    const r = await verifyExport(dir, { keyText: made.vkey, trustedNoteText: trusted });
    expect(r).toEqual({
      ok: true,
      size: 1234,
      checkpoints: [1, 100, 1000, 1234],
      root: (made.roots.get(1234) as Buffer).toString('hex'),
      keySource: 'argument',
      warnings: [],
    });
  });

  it('accepts an empty journal that ends with a checkpoint of size 0', async () => {
    const dir = await tempDir();
    const made = await makeExport(dir, { count: 0 });
    expect(await verifyExport(dir, { keyText: made.vkey })).toMatchObject({ ok: true, size: 0, checkpoints: [0] });
  });

  it('refuses an export older than a trusted checkpoint from the same log', async () => {
    const key = generateSigningKey('regent.test/journal');
    const newer = await tempDir();
    await makeExport(newer, { count: 40, key, checkpointsAt: [20, 40] });
    const trusted = await readFile(path.join(newer, 'checkpoints', '40.note'), 'utf8');
    const older = await tempDir();
    await makeExport(older, { count: 30, key, checkpointsAt: [20, 30] });
    const f = failureOf(await verifyExport(older, { keyText: vkeyOf(key), trustedNoteText: trusted }));
    expect(f).toEqual({ at: 'trusted', checkpoint: 40, message: 'export (size 30) is older than the trusted checkpoint (size 40)' });
  });

  it('refuses a fork: an export whose history diverges from a trusted checkpoint after a shared prefix', async () => {
    const key = generateSigningKey('regent.test/journal');
    const honest = await tempDir();
    await makeExport(honest, { count: 12, key, checkpointsAt: [12] });
    const trusted = await readFile(path.join(honest, 'checkpoints', '12.note'), 'utf8');
    // Same first 7 entries, then a different history, signed by the same (misbehaving) log key.
    const forkBody = (seq: number): JournalEntryBody =>
      seq <= 7 ? defaultBody(seq) : { ...defaultBody(seq), data: { text: `fork ${seq}` } };
    const forked = await tempDir();
    await makeExport(forked, { count: 15, key, checkpointsAt: [15], body: forkBody });

    expect(await verifyExport(forked, { keyText: vkeyOf(key) })).toMatchObject({ ok: true, size: 15 });
    const f = failureOf(await verifyExport(forked, { keyText: vkeyOf(key), trustedNoteText: trusted }));
    expect(f).toMatchObject({ at: 'trusted', checkpoint: 12 });
    expect(f.message).toMatch(/^fork\/rollback: .* disagrees with trusted checkpoint of size 12/);
  });

  it('refuses a trusted checkpoint from another log origin', async () => {
    const key = generateSigningKey('regent.test/journal');
    const dir = await tempDir();
    await makeExport(dir, { count: 3, key });
    const otherOrigin = signNote(`another.test/log\n2\n${Buffer.alloc(32).toString('base64')}\n`, key);
    const f = failureOf(await verifyExport(dir, { keyText: vkeyOf(key), trustedNoteText: otherOrigin }));
    expect(f).toMatchObject({ at: 'trusted' });
    expect(f.message).toMatch(/is for log "another.test\/log"/);
  });

  it('refuses an export that has no checkpoint at all', async () => {
    const dir = await tempDir();
    const made = await makeExport(dir, { count: 5, checkpointsAt: [] });
    const f = failureOf(await verifyExport(dir, { keyText: made.vkey }));
    expect(f.at).toBe('checkpoint');
    expect(f.message).toMatch(/no checkpoints; it must end with a signed checkpoint of size 5/);
  });

  it('names the offending seq deep inside a larger export', async () => {
    const dir = await tempDir();
    const made = await makeExport(dir, { count: 3000, checkpointsAt: [1000, 3000] });
    const lines = await readLines(dir);
    lines[2499] = (lines[2499] as string).replace('"kind":"', '"kind":"x');
    await writeLines(dir, lines);
    expect(failureOf(await verifyExport(dir, { keyText: made.vkey }))).toMatchObject({ at: 'seq', seq: 2500 });
  });
});
