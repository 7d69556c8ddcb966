/**
 * The entry pass of `regent journal verify` (verify.ts runs it, then checks the checkpoints):
 * entries.jsonl streamed once, every line checked for shape, seq contiguity, leaf and chain, and
 * the Merkle roots kept at the sizes the later checks ask for.
 *
 * Hot path: only the Merkle frontier is kept (plus the leaves when a trusted checkpoint needs a
 * consistency proof). A line already in canonical form (what `regent journal export` writes, see
 * exportLine in hash.ts) is checked straight from its bytes by fastline.ts: canonical body built
 * from slices of the line, hashes compared with the line's hex in place, no JSON.parse and no
 * per-line allocation beyond the digests. Any other line takes the slow path (JSON.parse,
 * checkEntryShape of contract.ts, canonicalBody), which also produces every failure message, so
 * both paths report exactly the same first failure.
 */
import { FileHandle, open } from 'node:fs/promises';
import { hash } from 'node:crypto';
import { checkEntryShape, HEX64_PATTERN as HEX64 } from './contract';
import { canonicalBody, JournalEntry } from './hash';
import { FastLineScanner } from './fastline';
import { CompactRange } from './merkle';
import { describeError, fail } from './verify-failure';

const READ_CHUNK = 1 << 20;
/**
 * HEX_PAIR[byte] = its two lowercase hex digits as a little-endian 16-bit word, so that two hash
 * bytes can be compared with four hex characters of a line in one 32-bit read.
 */
const HEX_PAIR = new Uint16Array(256);
for (let c = 0; c < 256; c++) {
  const hex = c.toString(16).padStart(2, '0');
  HEX_PAIR[c] = hex.charCodeAt(0) | (hex.charCodeAt(1) << 8);
}

/**
 * Whether the 64 characters at dv[at..] are the lowercase hex of `digest` (32 latin1 chars),
 * copying the digest's bytes to out[outAt..] as it goes (partly written when false).
 */
function hexEqualsInto(dv: DataView, at: number, digest: string, out: Uint8Array, outAt: number): boolean {
  for (let i = 0; i < 16; i++) {
    const c0 = digest.charCodeAt(2 * i);
    const c1 = digest.charCodeAt(2 * i + 1);
    out[outAt + 2 * i] = c0;
    out[outAt + 2 * i + 1] = c1;
    if (dv.getInt32(at + 4 * i, true) !== ((HEX_PAIR[c0] as number) | ((HEX_PAIR[c1] as number) << 16))) return false;
  }
  return true;
}

/** Everything the entry pass produces for the later checks. */
export interface EntryPass {
  count: number;
  /** Hex roots at the sizes asked for (checkpoints, trusted size). */
  roots: Map<number, string>;
  /** All leaves, only when a consistency proof will be needed. */
  leaves: Buffer[] | null;
}

/**
 * Streams entries.jsonl once: shape, seq contiguity, leaf, chain, and the Merkle roots at the
 * requested sizes. Throws Failed on the first bad line.
 */
export async function checkEntries(file: string, rootsAt: ReadonlySet<number>, keepLeaves: boolean): Promise<EntryPass> {
  const roots = new Map<number, string>();
  const tree = new CompactRange();
  if (rootsAt.has(0)) roots.set(0, tree.rootHex());
  // Leaves go into one growing buffer (32 bytes each) instead of one Buffer object per leaf.
  let leafBuf = keepLeaves ? Buffer.allocUnsafe(32 * 1024) : null;
  let chainScratch = Buffer.alloc(65); // 0x02 ‖ previous chain (zeros before seq 1) ‖ leaf
  chainScratch[0] = 0x02;
  // The fast path writes the next chain here while comparing it, then swaps the two buffers, so
  // a mismatch leaves chainScratch (the previous chain) untouched for the slow path.
  let chainSpare = Buffer.alloc(65);
  chainSpare[0] = 0x02;
  let lineNo = 0;
  const scanner = new FastLineScanner();

  // Lines are verified in seq order, so the next size that wants a root is all there is to check.
  const rootSizes = [...rootsAt].filter((n) => n > 0).sort((a, b) => a - b);
  let nextRootIndex = 0;
  let nextRootAt = rootSizes[0] ?? -1;

  /** Bookkeeping after line `seq` verified; chainScratch holds 0x02 ‖ its chain ‖ its leaf. */
  const afterLine = (seq: number): void => {
    if (seq === nextRootAt) {
      roots.set(seq, tree.rootHex());
      nextRootAt = rootSizes[++nextRootIndex] ?? -1;
    }
    if (leafBuf !== null) {
      const off = (seq - 1) * 32;
      if (off + 32 > leafBuf.length) {
        const bigger = Buffer.allocUnsafe(leafBuf.length * 2);
        leafBuf.copy(bigger);
        leafBuf = bigger;
      }
      chainScratch.copy(leafBuf, off, 33, 65);
    }
  };

  /**
   * Fast path (fastline.ts): a line already in canonical form is hashed straight from its bytes.
   * It only ever accepts; on anything else (not canonical, wrong seq, hash mismatch) it returns
   * false having changed nothing the slow path relies on, and the slow path decides and reports.
   */
  let view: DataView = new DataView(new ArrayBuffer(0)); // over `viewOf`, for 32-bit reads
  let viewOf: Buffer | null = null;
  const processFast = (b: Buffer, start: number, end: number): boolean => {
    if (!scanner.scan(b, start, end) || scanner.seq !== lineNo + 1) return false;
    if (b !== viewOf) {
      view = new DataView(b.buffer, b.byteOffset, b.byteLength);
      viewOf = b;
    }
    const leaf = hash('sha256', scanner.inputView(), 'binary');
    // 0x02 ‖ prev chain ‖ leaf (on a mismatch the slow path rewrites the leaf part anyway).
    if (!hexEqualsInto(view, scanner.leafAt, leaf, chainScratch, 33)) return false;
    const chain = hash('sha256', chainScratch, 'binary');
    if (!hexEqualsInto(view, scanner.chainAt, chain, chainSpare, 1)) return false;
    const seq = ++lineNo;
    tree.appendFrom(chainScratch, 33);
    afterLine(seq);
    const done = chainScratch;
    chainScratch = chainSpare; // 0x02 ‖ this line's chain ‖ (next leaf goes here)
    chainSpare = done;
    return true;
  };

  const processLine = (line: string): void => {
    lineNo++;
    const seq = lineNo; // contiguity means line n must hold seq n
    if (line.length === 0) fail({ at: 'seq', seq, message: `line ${lineNo} is empty (expected seq ${seq})` });
    let e: unknown;
    try {
      e = JSON.parse(line);
    } catch (err) {
      fail({ at: 'seq', seq, message: `line ${lineNo} is not valid JSON (expected seq ${seq}): ${describeError(err)}` });
    }
    // Hash formats are not regex-checked here: leaf and chain are compared with the recomputed
    // lowercase hex below, which only a well-formed value can equal.
    const problem = checkEntryShape(e, false);
    if (problem !== null) fail({ at: 'seq', seq, message: `line ${lineNo} (expected seq ${seq}) is not a valid entry: ${problem}` });
    const entry = e as JournalEntry;
    if (entry.seq !== seq) {
      fail({
        at: 'seq',
        seq,
        message: `line ${lineNo} holds seq ${entry.seq} where seq ${seq} was expected (entries missing, duplicated or reordered)`,
      });
    }
    let leafHex: string;
    try {
      leafHex = hash('sha256', '\u0000' + canonicalBody(entry), 'hex');
    } catch (err) {
      fail({ at: 'seq', seq, message: `seq ${seq}: entry cannot be canonicalized: ${describeError(err)}` });
    }
    if (leafHex !== entry.leaf) {
      if (!HEX64.test(entry.leaf)) fail({ at: 'seq', seq, message: `line ${lineNo} (seq ${seq}) is not a valid entry: "leaf" must be 64 lowercase hex digits` });
      fail({ at: 'seq', seq, message: `seq ${seq}: leaf ${entry.leaf} does not match the entry's content (recomputed ${leafHex})` });
    }
    // chainScratch = 0x02 ‖ prev chain ‖ leaf; prev chain bytes are already in place.
    chainScratch.write(leafHex, 33, 'hex');
    const chainHex = hash('sha256', chainScratch, 'hex');
    if (chainHex !== entry.chain) {
      if (!HEX64.test(entry.chain)) fail({ at: 'seq', seq, message: `line ${lineNo} (seq ${seq}) is not a valid entry: "chain" must be 64 lowercase hex digits` });
      fail({ at: 'seq', seq, message: `seq ${seq}: chain ${entry.chain} does not follow from the previous entry (recomputed ${chainHex})` });
    }
    tree.appendFrom(chainScratch, 33);
    chainScratch.write(chainHex, 1, 'hex');
    afterLine(seq);
  };

  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    fail({ at: 'file', message: code === 'ENOENT' ? 'entries.jsonl is missing' : `cannot read entries.jsonl: ${describeError(err)}` });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) fail({ at: 'file', message: 'entries.jsonl is not a regular file' });
    // Lines are found on bytes (0x0A never occurs inside a UTF-8 multi-byte sequence, and JSON
    // strings cannot hold a raw newline) and decoded one by one, so an ASCII line stays a
    // one-byte string even when a neighbour holds non-ASCII text; that keeps JSON.parse fast.
    let buf = Buffer.allocUnsafe(READ_CHUNK); // the carried partial line, then the new bytes
    let filled = 0;
    // The next chunk is read while this one is checked, so the scan never waits on the disk.
    const incoming = Buffer.allocUnsafe(READ_CHUNK);
    let pending: Promise<{ bytesRead: number }> | null = fh.read(incoming, 0, READ_CHUNK, null);
    try {
      for (;;) {
        let bytesRead: number;
        try {
          ({ bytesRead } = await (pending as Promise<{ bytesRead: number }>));
        } catch (err) {
          pending = null;
          fail({ at: 'file', message: `cannot read entries.jsonl: ${describeError(err)}` });
        }
        pending = null;
        if (bytesRead === 0) break;
        if (filled + bytesRead > buf.length) {
          // One line longer than the buffer: grow instead of failing on big entries.
          const bigger = Buffer.allocUnsafe(Math.max(buf.length * 2, filled + bytesRead));
          buf.copy(bigger, 0, 0, filled);
          buf = bigger;
        }
        incoming.copy(buf, filled, 0, bytesRead);
        pending = fh.read(incoming, 0, READ_CHUNK, null);
        const end = filled + bytesRead;
        let start = 0;
        let nl = buf.indexOf(0x0a, start);
        while (nl >= 0 && nl < end) {
          if (!processFast(buf, start, nl)) processLine(buf.toString('utf8', start, nl));
          start = nl + 1;
          nl = buf.indexOf(0x0a, start);
        }
        buf.copy(buf, 0, start, end);
        filled = end - start;
      }
    } finally {
      // A failing line can leave a read in flight: let it settle before the file is closed.
      if (pending !== null) await pending.catch(() => undefined);
    }
    // A final line without a newline still counts; a file ending in "\n" leaves nothing over.
    if (filled > 0 && !processFast(buf, 0, filled)) processLine(buf.toString('utf8', 0, filled));
  } finally {
    await fh.close();
  }

  let leaves: Buffer[] | null = null;
  if (leafBuf !== null) {
    const all = leafBuf;
    leaves = new Array<Buffer>(lineNo);
    for (let i = 0; i < lineNo; i++) leaves[i] = all.subarray(i * 32, i * 32 + 32);
  }
  return { count: lineNo, roots, leaves };
}
