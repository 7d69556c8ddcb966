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
 * The entry pass (every line, on a fast path for canonical lines) is verify-entries.ts; the
 * directory, key, manifest and checkpoint checks are here.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { toHex } from './hash';
import { consistencyProof, verifyConsistency } from './merkle';
import { Checkpoint, NoteKeyError, openNote, parseCheckpoint, parseVerifierKey, VerifierKey } from './note';
import { checkEntries } from './verify-entries';
import { describeError, Failed, fail, type VerifyFailure } from './verify-failure';

export { sealEntries, hashEntry } from './hash';
export type { VerifyFailure, VerifyFailureAt } from './verify-failure';

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
/** Checkpoint notes read ahead (a few hundred bytes each); later ones are read when needed. */
const NOTE_PREFETCH = 4096;

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
