/**
 * RFC 6962 / RFC 9162 Merkle tree over journal leaf hashes.
 *
 * The inputs are the journal's `leaf` values, which are already SHA-256(0x00 ‖ …), i.e. RFC 6962
 * leaf hashes; nothing here hashes them again. Interior nodes are SHA-256(0x01 ‖ left ‖ right).
 *
 * Tree sizes and indexes are plain JS numbers. All bit arithmetic is done with division and
 * remainder, never with `>>`/`&`, because those truncate to 32 bits and would silently compute
 * garbage for sizes of 2^31 and beyond.
 */
import { hash } from 'node:crypto';
import { EMPTY_ROOT, HASH_SIZE, nodeHash } from './hash';

// A module-level copy of HASH_SIZE for the hot loops below: compiled to CommonJS, each use of the
// imported binding is a property load on hash.ts's exports object (measurably slower per byte).
const H = HASH_SIZE;

function assertSize(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative safe integer, got ${n}`);
}

/** Largest power of two strictly below n (n >= 2), the RFC 6962 split point. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isOdd(n: number): boolean {
  return n % 2 === 1;
}

function half(n: number): number {
  return Math.floor(n / 2);
}

/** MTH(D[start:end]) following the recursive definition of RFC 6962 section 2.1. */
function subtreeHash(leaves: readonly Buffer[], start: number, end: number): Buffer {
  const n = end - start;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return leaves[start] as Buffer;
  const k = splitPoint(n);
  return nodeHash(subtreeHash(leaves, start, start + k), subtreeHash(leaves, start + k, end));
}

/** Root hash of the tree over the first `n` leaf hashes (default: all). Empty tree: SHA-256(""). */
export function rootOf(leaves: readonly Buffer[], n: number = leaves.length): Buffer {
  assertSize('n', n);
  if (n > leaves.length) throw new RangeError(`tree size ${n} exceeds the ${leaves.length} leaves given`);
  // Copy: for n <= 1 the result would otherwise alias a caller's leaf or the shared EMPTY_ROOT.
  return Buffer.from(subtreeHash(leaves, 0, n));
}

// ---------------------------------------------------------------------------------------------
// Compact range ("frontier"): for a tree of size n, the roots of the perfect subtrees matching
// the set bits of n, largest first. It is all an appender needs to keep to produce every root
// without holding the leaves.

/**
 * Appends one leaf to the frontier of a tree of `size` leaves; returns the frontier of size + 1.
 * The input array is not modified.
 */
export function appendToFrontier(frontier: readonly Buffer[], size: number, leaf: Buffer): Buffer[] {
  assertSize('size', size);
  const out = frontier.slice();
  let h = leaf;
  let s = size;
  // Each trailing 1 bit of size is a perfect subtree of the same height as h: merge them.
  while (isOdd(s)) {
    const left = out.pop();
    if (left === undefined) throw new RangeError(`frontier has fewer subtrees than size ${size} implies`);
    h = nodeHash(left, h);
    s = half(s);
  }
  out.push(h);
  return out;
}

/** Root of the tree the frontier describes (RFC 6962: right-to-left fold of the subtree roots). */
export function frontierRoot(frontier: readonly Buffer[]): Buffer {
  if (frontier.length === 0) return Buffer.from(EMPTY_ROOT);
  let r: Buffer = Buffer.from(frontier[frontier.length - 1] as Buffer);
  for (let i = frontier.length - 2; i >= 0; i--) r = nodeHash(frontier[i] as Buffer, r);
  return r;
}

/**
 * Mutable frontier for appenders that keep one around (journal store, verifier).
 *
 * Built for the verifier's hot path: the frontier lives in one preallocated byte slab, node
 * hashes are requested from crypto.hash as latin1 strings (no Buffer allocation, which costs more
 * than the 65-byte SHA-256 itself) and copied back byte by byte in JS. The subtree being merged
 * upwards stays in the right half of the hash input, so each level copies only its left sibling
 * (as eight 32-bit words).
 */
export class CompactRange {
  /** Subtree roots, largest first, 32 bytes each; `count` of them are in use. */
  private readonly slab = Buffer.alloc(64 * HASH_SIZE);
  private readonly slabView = new DataView(this.slab.buffer, this.slab.byteOffset, this.slab.byteLength);
  private count = 0;
  private n: number;
  /** 0x01 ‖ left ‖ right: the interior node hash input; `right` holds the subtree being added. */
  private readonly scratch = Buffer.alloc(1 + 2 * HASH_SIZE);
  private readonly scratchView = new DataView(this.scratch.buffer, this.scratch.byteOffset, this.scratch.byteLength);

  constructor(size = 0, frontier: readonly Buffer[] = []) {
    assertSize('size', size);
    let bits = 0;
    for (let s = size; s > 0; s = half(s)) if (isOdd(s)) bits++;
    if (bits !== frontier.length) {
      throw new RangeError(`a frontier for size ${size} has ${bits} subtree roots, got ${frontier.length}`);
    }
    if (!frontier.every(isHash)) throw new RangeError(`frontier entries must be ${HASH_SIZE}-byte hashes`);
    frontier.forEach((b, i) => b.copy(this.slab, i * HASH_SIZE));
    this.count = frontier.length;
    this.n = size;
    this.scratch[0] = 0x01;
  }

  get size(): number {
    return this.n;
  }

  /** The subtree roots, largest first (copies). */
  get frontier(): Buffer[] {
    const out: Buffer[] = [];
    for (let i = 0; i < this.count; i++) out.push(Buffer.from(this.slab.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE)));
    return out;
  }

  /** The subtree roots as hex, largest first. */
  frontierHex(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.slab.toString('hex', i * HASH_SIZE, (i + 1) * HASH_SIZE));
    return out;
  }

  static fromHex(size: number, frontierHex: readonly string[]): CompactRange {
    return new CompactRange(size, frontierHex.map((h) => Buffer.from(h, 'hex')));
  }

  append(leaf: Buffer): void {
    if (!isHash(leaf)) throw new RangeError(`leaf must be a ${HASH_SIZE}-byte hash`);
    this.appendFrom(leaf, 0);
  }

  /** `leafHex` must be 64 lowercase hex digits; the caller has checked it. */
  appendHex(leafHex: string): void {
    this.scratch.write(leafHex, 1 + HASH_SIZE, 'hex');
    this.appendRight();
  }

  /** Appends the 32-byte leaf found at src[offset..offset+32] (no copy of src is kept). */
  appendFrom(src: Uint8Array, offset: number): void {
    const scratch = this.scratch;
    for (let i = 0; i < H; i++) scratch[1 + H + i] = src[offset + i] as number;
    this.appendRight();
  }

  /** Appends the leaf in the right half of `scratch`. */
  private appendRight(): void {
    const { slabView, scratch, scratchView } = this;
    let s = this.n;
    // Each trailing 1 bit of the size is a perfect subtree as tall as the one being added:
    // merge it in as the left child.
    while (isOdd(s)) {
      const top = (this.count - 1) * H;
      for (let i = 0; i < H; i += 4) scratchView.setInt32(1 + i, slabView.getInt32(top + i, true), true);
      const h = hash('sha256', scratch, 'binary');
      for (let i = 0; i < H; i++) scratch[1 + H + i] = h.charCodeAt(i);
      this.count--;
      s = half(s);
    }
    const at = this.count * H;
    for (let i = 0; i < H; i += 4) slabView.setInt32(at + i, scratchView.getInt32(1 + H + i, true), true);
    this.count++;
    this.n++;
  }

  root(): Buffer {
    if (this.count === 0) return Buffer.from(EMPTY_ROOT);
    const { slab, scratch } = this;
    const r = Buffer.from(slab.subarray((this.count - 1) * HASH_SIZE, this.count * HASH_SIZE));
    for (let j = this.count - 2; j >= 0; j--) {
      slab.copy(scratch, 1, j * HASH_SIZE, (j + 1) * HASH_SIZE);
      r.copy(scratch, 1 + HASH_SIZE);
      Buffer.from(hash('sha256', scratch, 'binary'), 'latin1').copy(r);
    }
    return r;
  }

  rootHex(): string {
    return this.root().toString('hex');
  }
}

// ---------------------------------------------------------------------------------------------
// Inclusion proofs: RFC 6962 section 2.1.1 (generation), RFC 9162 section 2.1.3.2 (verification).

function path(leaves: readonly Buffer[], m: number, start: number, end: number, out: Buffer[]): void {
  const n = end - start;
  if (n <= 1) return;
  const k = splitPoint(n);
  if (m < k) {
    path(leaves, m, start, start + k, out);
    out.push(subtreeHash(leaves, start + k, end));
  } else {
    path(leaves, m - k, start + k, end, out);
    out.push(subtreeHash(leaves, start, start + k));
  }
}

/** Audit path for leaf `index` in the tree of the first `size` leaves, bottom-up. */
export function inclusionProof(leaves: readonly Buffer[], index: number, size: number): Buffer[] {
  assertSize('index', index);
  assertSize('size', size);
  if (size > leaves.length) throw new RangeError(`tree size ${size} exceeds the ${leaves.length} leaves given`);
  if (index >= size) throw new RangeError(`leaf index ${index} is outside a tree of size ${size}`);
  const out: Buffer[] = [];
  path(leaves, index, 0, size, out);
  return out.map((b) => Buffer.from(b)); // siblings may be the caller's own leaf buffers
}

function isHash(b: unknown): b is Buffer {
  return Buffer.isBuffer(b) && b.length === HASH_SIZE;
}

/** RFC 9162 section 2.1.3.2, step by step. Returns false for any malformed input. */
export function verifyInclusion(
  leaf: Buffer,
  index: number,
  size: number,
  proof: readonly Buffer[],
  root: Buffer,
): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || size < 0) return false;
  if (!isHash(leaf) || !isHash(root) || !proof.every(isHash)) return false;
  // 1. leaf_index >= tree_size fails.
  if (index >= size) return false;
  // 2. fn = leaf_index, sn = tree_size - 1.  3. r = hash.
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  // 4. For each p in inclusion_path:
  for (const p of proof) {
    // a. sn == 0: the path is longer than the tree is tall.
    if (sn === 0) return false;
    // b.
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      // Skip levels where this node is the last, childless-on-the-right one.
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // 5. sn must be 0 (the path was not too short) and r must be the root.
  return sn === 0 && r.equals(root);
}

// ---------------------------------------------------------------------------------------------
// Consistency proofs: RFC 6962 section 2.1.2 (generation), RFC 9162 section 2.1.4.2 (verification).

function subproof(
  leaves: readonly Buffer[],
  m: number,
  start: number,
  end: number,
  completeSubtree: boolean,
  out: Buffer[],
): void {
  const n = end - start;
  if (m === n) {
    // The old tree is this whole subtree: the verifier already knows its hash iff it is the
    // old tree's root itself (completeSubtree), otherwise it must be supplied.
    if (!completeSubtree) out.push(subtreeHash(leaves, start, end));
    return;
  }
  const k = splitPoint(n);
  if (m <= k) {
    subproof(leaves, m, start, start + k, completeSubtree, out);
    out.push(subtreeHash(leaves, start + k, end));
  } else {
    subproof(leaves, m - k, start + k, end, false, out);
    out.push(subtreeHash(leaves, start, start + k));
  }
}

/**
 * Proof that the tree of the first m leaves is a prefix of the tree of the first n leaves.
 * Defined for 0 < m <= n (empty when m == n); RFC 9162 defines no proof from the empty tree.
 */
export function consistencyProof(leaves: readonly Buffer[], m: number, n: number): Buffer[] {
  assertSize('m', m);
  assertSize('n', n);
  if (n > leaves.length) throw new RangeError(`tree size ${n} exceeds the ${leaves.length} leaves given`);
  if (m > n) throw new RangeError(`old size ${m} is larger than new size ${n}`);
  if (m === 0) throw new RangeError('no consistency proof exists from the empty tree (RFC 9162 requires 0 < first)');
  const out: Buffer[] = [];
  if (m < n) subproof(leaves, m, 0, n, true, out);
  return out.map((b) => Buffer.from(b)); // elements may be the caller's own leaf buffers
}

function isPowerOfTwo(n: number): boolean {
  if (n < 1) return false;
  while (n % 2 === 0) n /= 2;
  return n === 1;
}

/**
 * RFC 9162 section 2.1.4.2, step by step, for 0 < m < n. Outside that range:
 * - m == n: consistent iff the proof is empty and the roots are equal;
 * - m == 0: RFC 9162 defines no proof from the empty tree, so this returns false (a caller that
 *   wants "the empty tree precedes everything" must decide that itself, without a proof);
 * - m > n: false.
 */
export function verifyConsistency(
  m: number,
  n: number,
  rootM: Buffer,
  rootN: Buffer,
  proof: readonly Buffer[],
): boolean {
  if (!Number.isSafeInteger(m) || !Number.isSafeInteger(n) || m < 0 || n < 0) return false;
  if (!isHash(rootM) || !isHash(rootN) || !proof.every(isHash)) return false;
  if (m > n || m === 0) return false;
  if (m === n) return proof.length === 0 && rootM.equals(rootN);
  // 1. An empty path fails.
  if (proof.length === 0) return false;
  // 2. If first is an exact power of 2, prepend first_hash.
  const pathArr: readonly Buffer[] = isPowerOfTwo(m) ? [rootM, ...proof] : proof;
  // 3. fn = first - 1, sn = second - 1.
  let fn = m - 1;
  let sn = n - 1;
  // 4. Right-shift both while LSB(fn) is set.
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  // 5. fr = sr = first element.
  let fr = pathArr[0] as Buffer;
  let sr = fr;
  // 6. For each subsequent element c:
  for (let i = 1; i < pathArr.length; i++) {
    const c = pathArr[i] as Buffer;
    // a. sn == 0: the proof is too long.
    if (sn === 0) return false;
    // b.
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      // c. Only the new tree grew on the right.
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // 7. Both roots must come out, and the proof must have been exactly long enough.
  return sn === 0 && fr.equals(rootM) && sr.equals(rootN);
}
