import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { canonicalize } from './jcs';
import {
  canonicalBody,
  chainHash,
  chainHashHex,
  EMPTY_ROOT,
  exportLine,
  fromHex32,
  hashEntry,
  JournalEntry,
  JournalEntryBody,
  leafHash,
  leafHashHex,
  nodeHash,
  sealEntries,
  ZERO_CHAIN,
} from './hash';

const VECTOR = path.resolve(__dirname, '../../test/fixtures/journal-vector/export');

function vectorEntries(): JournalEntry[] {
  return readFileSync(path.join(VECTOR, 'entries.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as JournalEntry);
}

function sha256(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

const body: JournalEntryBody = {
  seq: 7,
  ts: '2026-11-22T09:00:00.250Z',
  kind: 'proposal.decided',
  actor: 'twin:vic-twin',
  subject: 'proposal:p-1',
  data: { z: 1, a: [3, 2, 1], é: 'x', nested: { b: null, a: 1e21 } },
  policyVersion: 'sha256:' + 'ab'.repeat(32),
};

describe('journal hashing', () => {
  it('reproduces every leaf and chain of the independent vector export', () => {
    let prev = ZERO_CHAIN;
    for (const e of vectorEntries()) {
      const leaf = leafHash(e);
      const chain = chainHash(prev, leaf);
      expect({ seq: e.seq, leaf: leaf.toString('hex'), chain: chain.toString('hex') }).toEqual({
        seq: e.seq,
        leaf: e.leaf,
        chain: e.chain,
      });
      prev = chain;
    }
  });

  it('writes the fixed body fields exactly as generic JCS of the seven fields would', () => {
    const generic = canonicalize({
      seq: body.seq,
      ts: body.ts,
      kind: body.kind,
      actor: body.actor,
      subject: body.subject,
      data: body.data,
      policyVersion: body.policyVersion,
    });
    expect(canonicalBody(body)).toBe(generic);
    const withNulls = { ...body, subject: null, policyVersion: null };
    expect(canonicalBody(withNulls)).toBe(canonicalize(withNulls));
  });

  it('defines leaf as SHA-256(0x00 ‖ JCS(body)) and ignores leaf, chain and non-contract fields', () => {
    const expected = sha256(Buffer.from([0]), Buffer.from(canonicalize(body), 'utf8'));
    expect(leafHash(body).equals(expected)).toBe(true);
    expect(leafHashHex(body)).toBe(expected.toString('hex'));
    const entry = { ...body, leaf: 'ff'.repeat(32), chain: 'ee'.repeat(32), id: 99 };
    expect(leafHash(entry).equals(expected)).toBe(true);
  });

  it('defines chain as SHA-256(0x02 ‖ prev ‖ leaf) and node as SHA-256(0x01 ‖ left ‖ right)', () => {
    const a = sha256(Buffer.from('a'));
    const b = sha256(Buffer.from('b'));
    expect(chainHash(a, b).equals(sha256(Buffer.from([2]), a, b))).toBe(true);
    expect(chainHashHex(a.toString('hex'), b.toString('hex'))).toBe(sha256(Buffer.from([2]), a, b).toString('hex'));
    expect(nodeHash(a, b).equals(sha256(Buffer.from([1]), a, b))).toBe(true);
    expect(EMPTY_ROOT.toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('refuses hashes of the wrong length instead of chaining garbage', () => {
    expect(() => chainHash(Buffer.alloc(31), Buffer.alloc(32))).toThrow(/32-byte hash/);
    expect(() => nodeHash(Buffer.alloc(32), Buffer.alloc(33))).toThrow(/32-byte hash/);
  });

  it('refuses a body whose subject or policyVersion is missing rather than hashing a different shape', () => {
    const { subject: _s, ...noSubject } = body;
    expect(() => leafHash(noSubject as JournalEntryBody)).toThrow(/"subject" is missing/);
    expect(() => leafHash({ ...body, data: undefined })).toThrow(/undefined is not a JSON value/);
  });

  it('seals a run of bodies into entries whose chain continues from the previous one', () => {
    const bodies = vectorEntries().map(({ leaf: _l, chain: _c, ...b }) => b);
    const first = sealEntries(ZERO_CHAIN, bodies.slice(0, 4));
    const rest = sealEntries(first.lastChain, bodies.slice(4));
    const all = [...first.entries, ...rest.entries];
    expect(all).toEqual(vectorEntries());
    expect(Object.keys(all[0] as object)).toEqual(['seq', 'ts', 'kind', 'actor', 'subject', 'data', 'policyVersion', 'leaf', 'chain']);
    expect(rest.lastChain.toString('hex')).toBe(vectorEntries()[8]?.chain);
    expect(first.leaves.map((l) => l.toString('hex'))).toEqual(vectorEntries().slice(0, 4).map((e) => e.leaf));
    const one = hashEntry(ZERO_CHAIN, bodies[0] as JournalEntryBody);
    expect(one.chain.toString('hex')).toBe(vectorEntries()[0]?.chain);
  });

  it('parses hex strictly', () => {
    expect(fromHex32('00'.repeat(32))).toHaveLength(32);
    expect(() => fromHex32('AB'.repeat(32))).toThrow(/lowercase hex/);
    expect(() => fromHex32('zz'.repeat(32))).toThrow(/lowercase hex/);
    expect(() => fromHex32('00'.repeat(31))).toThrow(/lowercase hex/);
  });

  it('writes an export line in contract field order with data in JCS form, which parses back to the entry', () => {
    const [e] = sealEntries(ZERO_CHAIN, [{ ...body, data: { z: 1, '10': [1e21, 0.5], '9': 'é\n', a: { y: null, x: true } } }]).entries as [JournalEntry];
    expect(exportLine(e)).toBe(
      `{"seq":7,"ts":"2026-11-22T09:00:00.250Z","kind":"proposal.decided","actor":"twin:vic-twin","subject":${JSON.stringify(e.subject)},` +
        `"data":{"10":[1e+21,0.5],"9":"é\\n","a":{"x":true,"y":null},"z":1},"policyVersion":${JSON.stringify(e.policyVersion)},` +
        `"leaf":"${e.leaf}","chain":"${e.chain}"}`,
    );
    expect(JSON.parse(exportLine(e))).toEqual(e);
    expect(() => exportLine({ ...e, subject: undefined as unknown as null })).toThrow();
  });
});
