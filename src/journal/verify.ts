/**
 * Offline verification of a journal export directory (`regent journal verify DIR`):
 *
 *   DIR/entries.jsonl         one entry per line, seq order
 *   DIR/checkpoints/<n>.note  C2SP signed tlog-checkpoints of size n
 *   DIR/journal.vkey          the log's verifier key (NOT trusted when --key is given)
 *   DIR/manifest.json         {"origin","size","checkpoints":[n,...]} (unknown fields ignored)
 *
 * Checks run in this order and the first failure is reported, naming the seq or checkpoint:
 *   key and manifest readable → every line (shape, seq contiguity, leaf, chain) → manifest agrees
 *   with the entries and the checkpoint files → every checkpoint (signature, origin, size, root)
 *   → a checkpoint at the export's size exists → the trusted checkpoint (signature, not newer than
 *   the export, same root at its size, consistency proof to the latest checkpoint).
 *
 * Hot path: the verifier streams the file, keeping only the Merkle frontier (plus the leaves when
 * a trusted checkpoint needs a consistency proof). A line already in canonical form (what
 * `regent journal export` writes, see exportLine in hash.ts) is checked straight from its bytes
 * by fastline.ts: canonical body built from slices of the line, hashes compared with the line's
 * hex in place, no JSON.parse and no per-line allocation beyond the digests. Any other line takes
 * the slow path (JSON.parse, checkEntryShape of contract.ts, canonicalBody), which also produces
 * every failure message, so both paths report exactly the same first failure.
 */
import { FileHandle, open, readFile, readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { hash } from 'node:crypto';
import { checkEntryShape, HEX64_PATTERN as HEX64 } from './contract';
import { canonicalBody, JournalEntry, toHex } from './hash';
import { FastLineScanner } from './fastline';
import { CompactRange, consistencyProof, verifyConsistency } from './merkle';
import { Checkpoint, NoteKeyError, openNote, parseCheckpoint, parseVerifierKey, VerifierKey } from './note';

export { sealEntries, hashEntry } from './hash';

export type VerifyFailureAt = 'seq' | 'checkpoint' | 'trusted' | 'manifest' | 'key' | 'file';

export interface VerifyFailure {
  at: VerifyFailureAt;
  seq?: number;
  checkpoint?: number;
  message: string;
}

export type VerifyResult =
  | {
      ok: true;
      /** Number of entries. */
      size: number;
      /** Checkpoint sizes found and verified, ascending. */
      checkpoints: number[];
      /** Hex Merkle root of all entries (equals the latest checkpoint's root). */
      root: string;
      keySource: 'argument' | 'export';
      warnings: string[];
    }
  | { ok: false; failure: VerifyFailure };

export interface VerifyOptions {
  /** Verifier key text obtained independently of the export (the --key file's contents). */
  keyText?: string;
  /** A checkpoint note the auditor kept from earlier (the --trusted file's contents). */
  trustedNoteText?: string;
}

export const SELF_KEY_WARNING =
  'signatures were checked against the key inside the export; pass --key with a key obtained independently to establish authenticity';

const CHECKPOINT_FILE = /^(0|[1-9][0-9]*)\.note$/;
const READ_CHUNK = 1 << 20;
/** Checkpoint notes read ahead (a few hundred bytes each); later ones are read when needed. */
const NOTE_PREFETCH = 4096;
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

class Failed {
  constructor(readonly failure: VerifyFailure) {}
}

function fail(failure: VerifyFailure): never {
  throw new Failed(failure);
}

interface Manifest {
  origin: string;
  size: number;
  checkpoints: number[];
}

async function readOptional(file: string): Promise<Buffer | null> {
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function describeError(err: unknown): string {
  // Not `instanceof Error`: errors from node core can come from another realm (jest's vm).
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(err);
}

async function loadKey(
  dir: string,
  opts: VerifyOptions,
  warnings: string[],
): Promise<{ key: VerifierKey; source: 'argument' | 'export' }> {
  const exportKeyBytes = await readOptional(path.join(dir, 'journal.vkey'));
  const exportKeyText = exportKeyBytes?.toString('utf8');
  if (opts.keyText !== undefined) {
    let key: VerifierKey;
    try {
      key = parseVerifierKey(opts.keyText);
    } catch (err) {
      fail({ at: 'key', message: `the key given with --key is not a usable verifier key: ${describeError(err)}` });
    }
    if (exportKeyText !== undefined) {
      let same = false;
      try {
        const k = parseVerifierKey(exportKeyText);
        same = k.name === key.name && k.publicKey.equals(key.publicKey);
      } catch {
        same = false;
      }
      // Not a failure by itself (the signatures decide), but an auditor should know.
      if (!same) warnings.push('the export\'s journal.vkey differs from the key given with --key; it was ignored');
    }
    return { key, source: 'argument' };
  }
  if (exportKeyText === undefined) {
    fail({ at: 'key', message: 'no --key given and the export has no journal.vkey' });
  }
  try {
    const key = parseVerifierKey(exportKeyText);
    warnings.push(SELF_KEY_WARNING);
    return { key, source: 'export' };
  } catch (err) {
    if (err instanceof NoteKeyError) fail({ at: 'key', message: `journal.vkey is not a usable verifier key: ${err.message}` });
    throw err;
  }
}

async function loadManifest(dir: string): Promise<Manifest> {
  const bytes = await readOptional(path.join(dir, 'manifest.json'));
  if (bytes === null) fail({ at: 'manifest', message: 'manifest.json is missing' });
  let m: unknown;
  try {
    m = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    fail({ at: 'manifest', message: `manifest.json is not valid JSON: ${describeError(err)}` });
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) fail({ at: 'manifest', message: 'manifest.json is not a JSON object' });
  const { origin, size, checkpoints } = m as Record<string, unknown>;
  if (typeof origin !== 'string' || origin.length === 0) fail({ at: 'manifest', message: 'manifest.json "origin" must be a non-empty string' });
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    fail({ at: 'manifest', message: 'manifest.json "size" must be a non-negative integer' });
  }
  if (!Array.isArray(checkpoints) || !checkpoints.every((n) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0)) {
    fail({ at: 'manifest', message: 'manifest.json "checkpoints" must be an array of non-negative integers' });
  }
  const sorted = (checkpoints as number[]).slice().sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) fail({ at: 'manifest', checkpoint: sorted[i], message: `manifest.json lists checkpoint ${sorted[i]} twice` });
  }
  return { origin, size, checkpoints: sorted };
}

async function listCheckpointFiles(dir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(path.join(dir, 'checkpoints'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    fail({ at: 'file', message: `cannot read checkpoints/: ${describeError(err)}` });
  }
  const sizes: number[] = [];
  for (const name of names) {
    const m = CHECKPOINT_FILE.exec(name);
    if (m) sizes.push(Number(m[1]));
  }
  return sizes.sort((a, b) => a - b);
}

/** Everything the entry pass produces for the later checks. */
interface EntryPass {
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
async function checkEntries(file: string, rootsAt: ReadonlySet<number>, keepLeaves: boolean): Promise<EntryPass> {
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

/**
 * Starts reading the first NOTE_PREFETCH checkpoint notes, one after another, in the background:
 * they arrive while the entries are being checked instead of costing a disk round trip each
 * afterwards. Nothing is decided here: a read error is kept and surfaces when (and only if) the
 * checkpoint stage awaits that note, exactly where reading it directly would have thrown.
 */
function prefetchNotes(dir: string, sizes: readonly number[]): Map<number, Promise<Buffer | null>> {
  const out = new Map<number, Promise<Buffer | null>>();
  let previous: Promise<unknown> = Promise.resolve();
  for (const n of sizes.slice(0, NOTE_PREFETCH)) {
    const read = previous.then(() => readOptional(path.join(dir, 'checkpoints', `${n}.note`)));
    previous = read.catch(() => undefined); // handled here, rethrown to whoever awaits `read`
    out.set(n, read);
  }
  return out;
}

/** Reads the trusted note's claimed size without trusting it, to know which root to keep. */
function peekCheckpointSize(noteText: string): number | null {
  const split = noteText.lastIndexOf('\n\n');
  if (split < 0) return null;
  try {
    return parseCheckpoint(noteText.slice(0, split + 1)).size;
  } catch {
    return null;
  }
}

export async function verifyExport(dir: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  try {
    return await run(dir, opts);
  } catch (err) {
    if (err instanceof Failed) return { ok: false, failure: err.failure };
    return { ok: false, failure: { at: 'file', message: `verification could not complete: ${describeError(err)}` } };
  }
}

async function run(dir: string, opts: VerifyOptions): Promise<VerifyResult> {
  const warnings: string[] = [];
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) fail({ at: 'file', message: `${dir} is not a directory` });
  } catch (err) {
    if (err instanceof Failed) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    fail({ at: 'file', message: code === 'ENOENT' ? `export directory ${dir} does not exist` : `cannot open export directory ${dir}: ${describeError(err)}` });
  }

  const { key, source } = await loadKey(dir, opts, warnings);
  const manifest = await loadManifest(dir);
  const files = await listCheckpointFiles(dir);
  const notes = prefetchNotes(dir, files);

  const trustedSize = opts.trustedNoteText !== undefined ? peekCheckpointSize(opts.trustedNoteText) : null;
  const rootsAt = new Set<number>([...files, ...manifest.checkpoints]);
  if (trustedSize !== null) rootsAt.add(trustedSize);
  // Leaves are only needed for a consistency proof from the trusted size (0 < m).
  const pass = await checkEntries(path.join(dir, 'entries.jsonl'), rootsAt, trustedSize !== null && trustedSize > 0);
  const size = pass.count;

  // Manifest against what is actually there.
  if (manifest.size !== size) {
    fail({ at: 'manifest', message: `manifest.json says size ${manifest.size} but entries.jsonl has ${size} entries` });
  }
  if (manifest.origin !== key.name) {
    // Most likely the auditor passed the key of another log, so name the key as the culprit.
    fail({
      at: 'key',
      message: `the key is for log ${JSON.stringify(key.name)} but the export's manifest.json names log ${JSON.stringify(manifest.origin)}`,
    });
  }
  const fileSet = new Set(files);
  const listed = new Set(manifest.checkpoints);
  for (const n of [...new Set([...files, ...manifest.checkpoints])].sort((a, b) => a - b)) {
    if (!fileSet.has(n)) fail({ at: 'checkpoint', checkpoint: n, message: `checkpoint ${n} is listed in manifest.json but checkpoints/${n}.note is missing` });
    if (!listed.has(n)) fail({ at: 'manifest', checkpoint: n, message: `checkpoints/${n}.note exists but manifest.json does not list it` });
  }

  // Every checkpoint: signature first (nothing in an unsigned note means anything), then content.
  for (const n of files) {
    const at = 'checkpoint' as const;
    const bytes = await (notes.get(n) ?? readOptional(path.join(dir, 'checkpoints', `${n}.note`)));
    if (bytes === null) fail({ at, checkpoint: n, message: `checkpoints/${n}.note disappeared while verifying` });
    const opened = openNote(bytes, key);
    if (!opened.verified) fail({ at, checkpoint: n, message: `checkpoint ${n}: ${opened.reason}` });
    let cp: Checkpoint;
    try {
      cp = parseCheckpoint(opened.text);
    } catch (err) {
      fail({ at, checkpoint: n, message: `checkpoint ${n} is signed but malformed: ${describeError(err)}` });
    }
    if (cp.size !== n) fail({ at, checkpoint: n, message: `checkpoints/${n}.note holds a checkpoint of size ${cp.size}` });
    if (cp.origin !== key.name || cp.origin !== manifest.origin) {
      fail({ at, checkpoint: n, message: `checkpoint ${n} is for log ${JSON.stringify(cp.origin)}, not ${JSON.stringify(key.name)}` });
    }
    if (n > size) {
      fail({ at, checkpoint: n, message: `checkpoint ${n} covers more entries than the export's ${size} (entries cut from the end?)` });
    }
    const computed = pass.roots.get(n) as string;
    if (computed !== toHex(cp.root)) {
      fail({
        at,
        checkpoint: n,
        message: `checkpoint ${n}: signed root ${toHex(cp.root)} differs from the root of the first ${n} entries (${computed})`,
      });
    }
  }
  const latest = files.length > 0 ? (files[files.length - 1] as number) : undefined;
  if (latest !== size) {
    // Without a signed checkpoint at the end, entries appended after the last one (or a tail
    // swapped for a different one) would not be covered by any signature.
    fail({
      at: 'checkpoint',
      ...(latest !== undefined ? { checkpoint: latest } : {}),
      message:
        latest === undefined
          ? `the export has no checkpoints; it must end with a signed checkpoint of size ${size}`
          : `no checkpoint at the export's size ${size} (latest is ${latest}); entries after it are not covered by any signature`,
    });
  }
  const rootHex = pass.roots.get(size) as string;

  if (opts.trustedNoteText !== undefined) {
    const at = 'trusted' as const;
    const opened = openNote(opts.trustedNoteText, key);
    if (!opened.verified) fail({ at, message: `trusted checkpoint does not verify: ${opened.reason}` });
    let t: Checkpoint;
    try {
      t = parseCheckpoint(opened.text);
    } catch (err) {
      fail({ at, message: `trusted checkpoint is malformed: ${describeError(err)}` });
    }
    const m = t.size;
    if (t.origin !== key.name) fail({ at, checkpoint: m, message: `trusted checkpoint is for log ${JSON.stringify(t.origin)}, not ${JSON.stringify(key.name)}` });
    if (m > size) fail({ at, checkpoint: m, message: `export (size ${size}) is older than the trusted checkpoint (size ${m})` });
    const rootM = pass.roots.get(m);
    if (rootM === undefined) fail({ at, checkpoint: m, message: `trusted checkpoint of size ${m} could not be matched against the entries` });
    const trustedRootHex = toHex(t.root);
    if (rootM !== trustedRootHex) {
      fail({
        at,
        checkpoint: m,
        message: `fork/rollback: the export's first ${m} entries have root ${rootM}, which disagrees with trusted checkpoint of size ${m} (root ${trustedRootHex})`,
      });
    }
    // Redundant given the recomputation above, but it exercises the same proof an online
    // client would check, against the signed latest root.
    if (m > 0 && m < size && pass.leaves !== null) {
      const proof = consistencyProof(pass.leaves, m, size);
      if (!verifyConsistency(m, size, t.root, Buffer.from(rootHex, 'hex'), proof)) {
        fail({ at, checkpoint: m, message: `consistency proof from trusted size ${m} to ${size} does not verify` });
      }
    }
  }

  return { ok: true, size, checkpoints: files, root: rootHex, keySource: source, warnings };
}
