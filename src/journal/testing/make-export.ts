/**
 * Test helper: writes a valid journal export directory (the layout `regent journal export`
 * produces) using the journal's own hashing, Merkle and note code. Deterministic for a given
 * count and key, so tests can tamper with known content.
 */
import { open, mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { exportLine, JournalEntry, JournalEntryBody, sealEntries, ZERO_CHAIN } from '../hash';
import { CompactRange } from '../merkle';
import { generateSigningKey, signCheckpoint, SigningKey, vkeyOf } from '../note';

export interface MakeExportOptions {
  /** Number of entries (seq 1..count). */
  count: number;
  /** Signing key; a fresh one named after `origin` when absent. */
  key?: SigningKey;
  /** Sizes to write checkpoints at; defaults to [count]. Used as given (tests may omit count). */
  checkpointsAt?: number[];
  /** Log origin; defaults to the key's name (they must match for the export to verify). */
  origin?: string;
  /** Entry bodies; defaults to varied, roughly 300-byte entries. */
  body?: (seq: number) => JournalEntryBody;
  /** Entries hashed and written per batch (memory bound for large counts). */
  batchSize?: number;
}

export interface MadeExport {
  dir: string;
  key: SigningKey;
  /** Verifier key text (what journal.vkey holds). */
  vkey: string;
  origin: string;
  /** All leaf hashes, seq order. */
  leaves: Buffer[];
  /** Roots at each checkpoint size written. */
  roots: Map<number, Buffer>;
}

const KINDS = ['audit.note', 'proposal.created', 'proposal.decided', 'action.executed', 'policy.loaded'];
const ACTORS = ['user:dana', 'user:ann', 'twin:cfo-twin', 'twin:vic-twin', 'system'];
const POLICY = 'sha256:' + 'ab'.repeat(32);

/** Small deterministic PRNG (mulberry32) so bodies are reproducible without storing them. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BASE_TIME = Date.parse('2026-01-05T08:00:00.000Z');

/** The default body for `seq`: a mix of kinds, unicode, numbers and nesting. */
export function defaultBody(seq: number): JournalEntryBody {
  const r = rng(seq * 2654435761);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const kind = pick(KINDS);
  return {
    seq,
    ts: new Date(BASE_TIME + seq * 137).toISOString(),
    kind,
    actor: pick(ACTORS),
    subject: r() < 0.3 ? null : `proposal:p-${Math.floor(r() * 100000)}`,
    data: {
      // About a quarter of entries carry non-ASCII text, as names and currencies would.
      text: `#${seq} ${pick(['ok', 'review', '"as is"', 'a\nb', 'café', 'ok', '€ ☃', 'done'])}`,
      amount: (Math.floor(r() * 10_000_000) / 100).toFixed(2),
      n: Math.floor(r() * 1e6) / 1e3,
      tags: [pick(['a', 'b', 'c'])],
    },
    policyVersion: r() < 0.2 ? POLICY : null,
  };
}

export async function makeExport(dir: string, opts: MakeExportOptions): Promise<MadeExport> {
  const { count } = opts;
  if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
  const key = opts.key ?? generateSigningKey(opts.origin ?? 'regent.test/journal');
  const origin = opts.origin ?? key.name;
  const checkpointsAt = [...new Set(opts.checkpointsAt ?? [count])].sort((a, b) => a - b);
  const makeBody = opts.body ?? defaultBody;
  const batchSize = opts.batchSize ?? 10_000;

  await mkdir(path.join(dir, 'checkpoints'), { recursive: true });
  const leaves: Buffer[] = [];
  const roots = new Map<number, Buffer>();
  const tree = new CompactRange();
  const wanted = new Set(checkpointsAt);
  if (wanted.has(0)) roots.set(0, tree.root());

  const fh = await open(path.join(dir, 'entries.jsonl'), 'w');
  try {
    let chain = ZERO_CHAIN;
    for (let start = 1; start <= count; start += batchSize) {
      const end = Math.min(count, start + batchSize - 1);
      const bodies: JournalEntryBody[] = [];
      for (let seq = start; seq <= end; seq++) bodies.push(makeBody(seq));
      const sealed = sealEntries(chain, bodies);
      chain = sealed.lastChain;
      let text = '';
      for (let i = 0; i < sealed.entries.length; i++) {
        const leaf = sealed.leaves[i] as Buffer;
        leaves.push(leaf);
        tree.append(leaf);
        if (wanted.has(tree.size)) roots.set(tree.size, tree.root());
        // As `regent journal export` writes lines: contract order, data in JCS form.
        text += exportLine(sealed.entries[i] as JournalEntry) + '\n';
      }
      await fh.write(text);
    }
  } finally {
    await fh.close();
  }

  for (const n of checkpointsAt) {
    const root = roots.get(n);
    if (root === undefined) throw new RangeError(`cannot write checkpoint ${n}: the export has only ${count} entries`);
    await writeFile(path.join(dir, 'checkpoints', `${n}.note`), signCheckpoint({ origin, size: n, root }, key));
  }
  const vkey = vkeyOf(key);
  await writeFile(path.join(dir, 'journal.vkey'), vkey + '\n');
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify({ origin, size: count, checkpoints: checkpointsAt }, null, 2) + '\n');
  return { dir, key, vkey, origin, leaves, roots };
}
