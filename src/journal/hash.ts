/**
 * Journal entry hashing, as fixed by DESIGN.md ("Journal"):
 *   leaf  = SHA-256(0x00 ‖ JCS(entry without leaf and chain))   (RFC 6962 leaf domain)
 *   chain = SHA-256(0x02 ‖ prevChain ‖ leaf), prevChain of seq 1 = 32 zero bytes
 *   node  = SHA-256(0x01 ‖ left ‖ right)                          (RFC 6962 interior)
 * The 0x02 prefix keeps chain links from ever colliding with Merkle leaves or nodes.
 */
import { hash } from 'node:crypto';
import type { JournalEntry } from './contract';
import { canonicalize, quoteString } from './jcs';

/** An entry without its hashes: what the leaf is computed over (the contract's seven fields). */
export interface JournalEntryBody extends Omit<JournalEntry, 'leaf' | 'chain'> {
  /** The append path's precomputed JCS of `data` (never stored or exported; saves a second pass). */
  dataJcs?: string;
}

export type { JournalEntry };

export const HASH_SIZE = 32;
export const ZERO_CHAIN: Buffer = Buffer.alloc(HASH_SIZE);

/*
 * Speed notes (measured on Node 20, see verify.ts): one-shot crypto.hash() is much cheaper than
 * createHash().update().digest(), and asking it for hex is ~2x cheaper than asking for a Buffer
 * (Buffer allocation dominates a 65-byte SHA-256). So the hot paths work on hex strings and
 * reuse one scratch buffer per hash shape; this is safe because hashing is synchronous.
 */
const chainScratch = Buffer.alloc(1 + 2 * HASH_SIZE);
chainScratch[0] = 0x02;
const nodeScratch = Buffer.alloc(1 + 2 * HASH_SIZE);
nodeScratch[0] = 0x01;

/**
 * JCS of the seven body fields. The field set is fixed, so the sorted key order is too
 * (actor, data, kind, policyVersion, seq, subject, ts by UTF-16 code units); writing it out
 * directly skips a key sort and seven key escapes per entry on the verify hot path.
 * Fields other than the seven (a database row's id, say) are deliberately not hashed.
 * The result equals canonicalize({seq, ts, kind, actor, subject, data, policyVersion});
 * hash.test.ts checks that.
 */
export function canonicalBody(body: JournalEntryBody): string {
  const { seq, ts, kind, actor, subject, data, policyVersion } = body;
  // Undefined would otherwise be dropped by JCS and yield a hash of a different shape.
  if (subject === undefined) throw new TypeError('journal entry field "subject" is missing (use null)');
  if (policyVersion === undefined) throw new TypeError('journal entry field "policyVersion" is missing (use null)');
  return (
    '{"actor":' +
    quote(actor) +
    ',"data":' +
    (body.dataJcs ?? canonicalize(data)) +
    ',"kind":' +
    quote(kind) +
    ',"policyVersion":' +
    (policyVersion === null ? 'null' : quote(policyVersion)) +
    ',"seq":' +
    (typeof seq === 'number' && Number.isFinite(seq) ? String(seq) : canonicalize(seq)) +
    ',"subject":' +
    (subject === null ? 'null' : quote(subject)) +
    ',"ts":' +
    quote(ts) +
    '}'
  );
}

/**
 * The entries.jsonl line for an entry (without the newline): the contract's field order (seq, ts,
 * kind, actor, subject, data, policyVersion, leaf, chain), no whitespace, and `data` written in
 * JCS form. Only the key order inside `data` differs from JSON.stringify of the same entry, and
 * the verifier's fast path (fastline.ts) needs exactly that: a line whose `data` is already
 * canonical is hashed from its own bytes, while any other line costs a full JSON.parse and
 * re-canonicalization. (PostgreSQL jsonb hands keys back shortest-first, not in JCS order.)
 * Throws, like canonicalBody, when a field is undefined or data has no JSON form.
 */
export function exportLine(e: JournalEntry): string {
  return (
    '{"seq":' +
    canonicalize(e.seq) +
    ',"ts":' +
    quote(e.ts) +
    ',"kind":' +
    quote(e.kind) +
    ',"actor":' +
    quote(e.actor) +
    ',"subject":' +
    canonicalize(e.subject) +
    ',"data":' +
    canonicalize(e.data) +
    ',"policyVersion":' +
    canonicalize(e.policyVersion) +
    ',"leaf":' +
    quote(e.leaf) +
    ',"chain":' +
    quote(e.chain) +
    '}'
  );
}

// JCS string form; for the fields that must be strings, this skips the generic dispatch.
function quote(s: string): string {
  return typeof s === 'string' ? quoteString(s) : canonicalize(s);
}

/**
 * Hex of SHA-256(0x00 ‖ UTF-8(JCS(body))). U+0000 encodes to the single byte 0x00 in UTF-8,
 * so prefixing the string is the same as prefixing the bytes, in one native call.
 */
export function leafHashHex(body: JournalEntryBody): string {
  return hash('sha256', '\u0000' + canonicalBody(body), 'hex');
}

/** SHA-256(0x00 ‖ UTF-8(JCS(body))). Accepts a full entry too; leaf and chain are not hashed. */
export function leafHash(body: JournalEntryBody): Buffer {
  return Buffer.from(leafHashHex(body), 'hex');
}

function assertHash(name: string, b: Buffer): void {
  if (b.length !== HASH_SIZE) throw new RangeError(`${name} must be a ${HASH_SIZE}-byte hash, got ${b.length} bytes`);
}

/** SHA-256(0x02 ‖ prevChain ‖ leaf). */
export function chainHash(prevChain: Buffer, leaf: Buffer): Buffer {
  assertHash('prevChain', prevChain);
  assertHash('leaf', leaf);
  prevChain.copy(chainScratch, 1);
  leaf.copy(chainScratch, 1 + HASH_SIZE);
  return Buffer.from(hash('sha256', chainScratch, 'hex'), 'hex');
}

/** chainHash over hex inputs, hex out. Inputs must be 64 hex digits (isHex32); not re-checked. */
export function chainHashHex(prevChainHex: string, leafHex: string): string {
  chainScratch.write(prevChainHex, 1, 'hex');
  chainScratch.write(leafHex, 1 + HASH_SIZE, 'hex');
  return hash('sha256', chainScratch, 'hex');
}

/** RFC 6962 interior node: SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Buffer, right: Buffer): Buffer {
  assertHash('left', left);
  assertHash('right', right);
  left.copy(nodeScratch, 1);
  right.copy(nodeScratch, 1 + HASH_SIZE);
  return Buffer.from(hash('sha256', nodeScratch, 'hex'), 'hex');
}

/** SHA-256 of the empty string: the RFC 6962 root of the empty tree. */
export const EMPTY_ROOT: Buffer = hash('sha256', Buffer.alloc(0), 'buffer');

const HEX32 = /^[0-9a-f]{64}$/;

export function toHex(b: Buffer): string {
  return b.toString('hex');
}

/** Strict: exactly 64 lowercase hex digits (Buffer.from(…, 'hex') silently stops at junk). */
export function fromHex32(hex: string): Buffer {
  if (!HEX32.test(hex)) throw new TypeError(`expected 64 lowercase hex digits, got ${JSON.stringify(hex)}`);
  return Buffer.from(hex, 'hex');
}

export function isHex32(s: unknown): s is string {
  return typeof s === 'string' && HEX32.test(s);
}

/**
 * Computes leaf and chain for a run of new entries that follow `prevChain` (ZERO_CHAIN before
 * seq 1). This is the append path's single source of truth for hashing, so the store, the
 * export and the verifier cannot drift apart.
 */
export function sealEntries(
  prevChain: Buffer,
  bodies: readonly JournalEntryBody[],
): { entries: JournalEntry[]; leaves: Buffer[]; lastChain: Buffer } {
  const entries: JournalEntry[] = new Array(bodies.length);
  const leaves: Buffer[] = new Array(bodies.length);
  let chain = prevChain;
  for (let i = 0; i < bodies.length; i++) {
    const b = bodies[i] as JournalEntryBody;
    const leaf = leafHash(b);
    chain = chainHash(chain, leaf);
    leaves[i] = leaf;
    // Copy only the contract's fields, in the contract's order, so exports are uniform.
    entries[i] = {
      seq: b.seq,
      ts: b.ts,
      kind: b.kind,
      actor: b.actor,
      subject: b.subject,
      data: b.data,
      policyVersion: b.policyVersion,
      leaf: leaf.toString('hex'),
      chain: chain.toString('hex'),
    };
  }
  return { entries, leaves, lastChain: chain };
}

/**
 * sealEntries for the append path, hex in and hex out: the store keeps hashes as hex, and
 * converting each one through a Buffer costs more than the hash.
 */
export function sealEntriesHex(prevChainHex: string, bodies: readonly JournalEntryBody[]): { entries: JournalEntry[]; lastChain: string } {
  const entries: JournalEntry[] = new Array(bodies.length);
  let chain = prevChainHex;
  for (let i = 0; i < bodies.length; i++) {
    const b = bodies[i] as JournalEntryBody;
    const leaf = leafHashHex(b);
    chain = chainHashHex(chain, leaf);
    entries[i] = { seq: b.seq, ts: b.ts, kind: b.kind, actor: b.actor, subject: b.subject, data: b.data, policyVersion: b.policyVersion, leaf, chain };
  }
  return { entries, lastChain: chain };
}

/** leaf and chain of one entry following prevChain. */
export function hashEntry(prevChain: Buffer, body: JournalEntryBody): { leaf: Buffer; chain: Buffer } {
  const leaf = leafHash(body);
  return { leaf, chain: chainHash(prevChain, leaf) };
}
