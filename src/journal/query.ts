/**
 * Read-side queries for auditors (the HTTP journal API): search with filters in either order,
 * paging for streamed exports, single entries, checkpoints, and Merkle proofs that do not read
 * the whole journal every time.
 *
 * Proofs: an RFC 6962 inclusion or consistency proof is made of subtree hashes. A complete,
 * aligned subtree of a power-of-two size never changes once its last leaf exists (the journal is
 * append-only, and the database refuses UPDATE and DELETE), so its hash is cached in memory. The
 * first proof over a large journal reads every leaf once (in large ranges); later proofs read only
 * the few leaves right of the last complete block. Nothing here writes.
 */
import type { Sql } from '../db/sql';
import { EMPTY_ROOT, nodeHash, toHex, type JournalEntry } from './hash';
import { rowToEntry, toCheckpoint, type CheckpointRow } from './store';
import type { Checkpoint } from './types';

export interface JournalSearch {
  kind?: string;
  actor?: string;
  subject?: string;
  /** Entries about a twin: its subject (`twin:<id>`), its own actions, or data.twin. */
  twin?: string;
  /** Entries about a proposal (subject `proposal:<id>`). */
  proposal?: string;
  /** Policy decisions (policy.decided) with this outcome. */
  outcome?: string;
  /** Inclusive. */
  from?: string;
  /** Exclusive. */
  to?: string;
  afterSeq?: number;
  beforeSeq?: number;
  /** Only entries up to this seq (an export's size). */
  toSeq?: number;
  order?: 'asc' | 'desc';
  limit: number;
}

export interface QueryOptions {
  /** Smallest subtree size whose hash is cached (and the most leaves hashed without a cache). */
  block?: number;
  /** Largest range of leaves read in one query. */
  fetch?: number;
  /** Cached hashes kept at most (the cache is emptied beyond it). */
  maxCached?: number;
}

const ENTRY_COLUMNS = 'seq, ts, kind, actor, subject, data, policy_version, leaf, chain';

/** Largest power of two strictly below n (n >= 2): the RFC 6962 split point. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

const isPowerOfTwo = (n: number) => n >= 1 && Number.isInteger(Math.log2(n)) && 2 ** Math.log2(n) === n;

/** An entry as the metrics read it from the tail of the journal. */
export interface TailEntry {
  seq: number;
  ts: string;
  kind: string;
  actor: string;
  subject: string | null;
  data: Record<string, unknown>;
}

export function createJournalQuery(sql: Sql, opts: QueryOptions = {}) {
  const BLOCK = opts.block ?? 256;
  const FETCH = Math.max(opts.fetch ?? 65_536, BLOCK);
  const MAX_CACHED = opts.maxCached ?? 500_000;
  const cache = new Map<string, Buffer>();

  async function search(q: JournalSearch): Promise<JournalEntry[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, ...values: unknown[]) => {
      let c = clause;
      for (const v of values) {
        params.push(v);
        c = c.replace('?', `$${params.length}`);
      }
      where.push(c);
    };
    if (q.afterSeq !== undefined) add('seq > ?', q.afterSeq);
    if (q.beforeSeq !== undefined) add('seq < ?', q.beforeSeq);
    if (q.toSeq !== undefined) add('seq <= ?', q.toSeq);
    if (q.kind !== undefined) add('kind = ?', q.kind);
    if (q.actor !== undefined) add('actor = ?', q.actor);
    if (q.subject !== undefined) add('subject = ?', q.subject);
    if (q.proposal !== undefined) add('subject = ?', `proposal:${q.proposal}`);
    if (q.twin !== undefined) add("(subject = ? OR actor = ? OR data->>'twin' = ?)", `twin:${q.twin}`, `twin:${q.twin}`, q.twin);
    if (q.outcome !== undefined) add("(kind = 'policy.decided' AND data->>'outcome' = ?)", q.outcome);
    if (q.from !== undefined) add('ts >= ?', q.from);
    if (q.to !== undefined) add('ts < ?', q.to);
    params.push(Math.min(Math.max(q.limit, 1), 10_000));
    const rows = await sql.query<Parameters<typeof rowToEntry>[0]>(
      `SELECT ${ENTRY_COLUMNS} FROM journal_entries ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY seq ${q.order === 'desc' ? 'DESC' : 'ASC'} LIMIT $${params.length}`,
      params,
    );
    return rows.map(rowToEntry);
  }

  /** Pages of matching entries in seq order, `pageSize` at a time (for streamed exports). */
  async function* pages(q: Omit<JournalSearch, 'limit' | 'order' | 'beforeSeq'>, pageSize = 1000): AsyncGenerator<JournalEntry[]> {
    let after = q.afterSeq ?? 0;
    for (;;) {
      const page = await search({ ...q, afterSeq: after, order: 'asc', limit: pageSize });
      if (page.length) yield page;
      if (page.length < pageSize) return;
      after = page[page.length - 1]!.seq;
    }
  }

  async function entry(seq: number): Promise<JournalEntry | undefined> {
    const [row] = await sql.query<Parameters<typeof rowToEntry>[0]>(`SELECT ${ENTRY_COLUMNS} FROM journal_entries WHERE seq = $1`, [seq]);
    return row && rowToEntry(row);
  }

  async function size(): Promise<number> {
    const [row] = await sql.query<{ size: string | number }>('SELECT size FROM journal_head WHERE id = 1');
    if (!row) throw new Error('journal_head row is missing: the database was not migrated by Regent');
    return Number(row.size);
  }

  async function latestCheckpoint(): Promise<Checkpoint | undefined> {
    const [row] = await sql.query<CheckpointRow>('SELECT size, root, note, created_at FROM journal_checkpoints ORDER BY size DESC LIMIT 1');
    return row && toCheckpoint(row);
  }

  async function checkpointAt(n: number): Promise<Checkpoint | undefined> {
    const [row] = await sql.query<CheckpointRow>('SELECT size, root, note, created_at FROM journal_checkpoints WHERE size = $1', [n]);
    return row && toCheckpoint(row);
  }

  // ---- Merkle hashes over the stored leaves (0-based leaf index = seq - 1) ----

  async function leaves(start: number, end: number): Promise<Buffer[]> {
    const rows = await sql.query<{ leaf: string }>('SELECT leaf FROM journal_entries WHERE seq > $1 AND seq <= $2 ORDER BY seq', [start, end]);
    if (rows.length !== end - start) throw new Error(`journal leaves ${start + 1}..${end}: found ${rows.length}, expected ${end - start}`);
    return rows.map((r) => Buffer.from(r.leaf, 'hex'));
  }

  const cacheable = (start: number, n: number) => n >= BLOCK && isPowerOfTwo(n) && start % n === 0;

  function remember(key: string, h: Buffer): void {
    if (cache.size >= MAX_CACHED) cache.clear();
    cache.set(key, h);
  }

  /** MTH over leaves held in memory (`ls[i]` is leaf `offset + i`), caching complete subtrees. */
  function hashInMemory(ls: readonly Buffer[], offset: number, s: number, e: number): Buffer {
    const n = e - s;
    if (n === 1) return ls[s]!;
    const key = `${offset + s}/${n}`;
    const keep = cacheable(offset + s, n);
    if (keep) {
      const hit = cache.get(key);
      if (hit) return hit;
    }
    const k = splitPoint(n);
    const h = nodeHash(hashInMemory(ls, offset, s, s + k), hashInMemory(ls, offset, s + k, e));
    if (keep) remember(key, h);
    return h;
  }

  /** MTH(D[start:end]) of RFC 6962 over the stored leaves. */
  async function subtree(start: number, end: number): Promise<Buffer> {
    const n = end - start;
    if (n === 0) return Buffer.from(EMPTY_ROOT);
    const keep = cacheable(start, n);
    const key = `${start}/${n}`;
    if (keep) {
      const hit = cache.get(key);
      if (hit) return hit;
    }
    let h: Buffer;
    if (n <= BLOCK || (keep && n <= FETCH)) {
      h = hashInMemory(await leaves(start, end), start, 0, n);
    } else {
      const k = splitPoint(n);
      const left = await subtree(start, start + k);
      h = nodeHash(left, await subtree(start + k, end));
    }
    if (keep) remember(key, h);
    return h;
  }

  async function path(m: number, start: number, end: number, out: Buffer[]): Promise<void> {
    const n = end - start;
    if (n <= 1) return;
    const k = splitPoint(n);
    if (m < k) {
      await path(m, start, start + k, out);
      out.push(await subtree(start + k, end));
    } else {
      await path(m - k, start + k, end, out);
      out.push(await subtree(start, start + k));
    }
  }

  async function subproof(m: number, start: number, end: number, complete: boolean, out: Buffer[]): Promise<void> {
    const n = end - start;
    if (m === n) {
      if (!complete) out.push(await subtree(start, end));
      return;
    }
    const k = splitPoint(n);
    if (m <= k) {
      await subproof(m, start, start + k, complete, out);
      out.push(await subtree(start + k, end));
    } else {
      await subproof(m - k, start + k, end, false, out);
      out.push(await subtree(start, start + k));
    }
  }

  return {
    search,
    pages,
    entry,
    size,
    latestCheckpoint,
    checkpointAt,

    /** Root of the tree of the first `n` leaves (hex). */
    async root(n: number): Promise<string> {
      return toHex(await subtree(0, n));
    },

    /** Inclusion of entry `seq` in the tree of the first `n` leaves: leaf, root and path, hex. */
    async inclusionProof(seq: number, n: number): Promise<{ seq: number; size: number; leaf: string; root: string; proof: string[] }> {
      if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(n) || seq < 1 || seq > n) throw new RangeError(`need 1 <= seq (${seq}) <= size (${n})`);
      const out: Buffer[] = [];
      await path(seq - 1, 0, n, out);
      const [leaf] = await leaves(seq - 1, seq);
      return { seq, size: n, leaf: toHex(leaf!), root: toHex(await subtree(0, n)), proof: out.map(toHex) };
    },

    /** RFC 6962 consistency proof from the tree of size m to the tree of size n (0 < m <= n), hex. */
    async consistencyProof(m: number, n: number): Promise<string[]> {
      if (!Number.isSafeInteger(m) || !Number.isSafeInteger(n) || m < 1 || m > n) throw new RangeError(`need 1 <= from (${m}) <= to (${n})`);
      if (m === n) return [];
      const out: Buffer[] = [];
      await subproof(m, 0, n, true, out);
      return out.map(toHex);
    },

    /**
     * Entries after `afterSeq` up to `toSeq` of the given kinds, oldest first, at most `limit`:
     * what the metrics observe on each scrape (no hashes, which they do not need).
     */
    async tail(afterSeq: number, toSeq: number, kinds: readonly string[], limit: number): Promise<TailEntry[]> {
      const rows = await sql.query<{ seq: string | number; ts: Date | string; kind: string; actor: string; subject: string | null; data: unknown }>(
        `SELECT seq, ts, kind, actor, subject, data FROM journal_entries
          WHERE seq > $1 AND seq <= $2 AND kind = ANY($3::text[]) ORDER BY seq LIMIT $4`,
        [afterSeq, toSeq, kinds, limit],
      );
      return rows.map((r) => ({
        seq: Number(r.seq),
        ts: new Date(r.ts).toISOString(),
        kind: r.kind,
        actor: r.actor,
        subject: r.subject,
        data: (typeof r.data === 'string' ? JSON.parse(r.data) : r.data) as Record<string, unknown>,
      }));
    },

    /** The journal's size, latest checkpoint size and bytes on disk, in one round of reads. */
    async stats(): Promise<{ size: number; checkpoint: number; bytes: number }> {
      const [head, checkpoint, bytes] = await Promise.all([
        sql.query<{ size: string | number }>('SELECT size FROM journal_head WHERE id = 1'),
        sql.query<{ size: string | number | null }>('SELECT max(size) AS size FROM journal_checkpoints'),
        sql.query<{ bytes: string | number }>(`SELECT pg_total_relation_size('journal_entries') AS bytes`),
      ]);
      return { size: Number(head[0]?.size ?? 0), checkpoint: Number(checkpoint[0]?.size ?? 0), bytes: Number(bytes[0]?.bytes ?? 0) };
    },

    /** Whether the journal holds exactly the entries 1 to its head's size: no gap, nothing beyond. */
    async contiguous(): Promise<boolean> {
      const [r] = await sql.query<{ n: string | number; size: string | number; max: string | number | null }>(
        'SELECT (SELECT count(*) FROM journal_entries) AS n, (SELECT size FROM journal_head) AS size, (SELECT max(seq) FROM journal_entries) AS max',
      );
      return Number(r!.n) === Number(r!.size) && Number(r!.max ?? 0) === Number(r!.size);
    },

    /** How many subtree hashes are cached (for tests and metrics). */
    cachedHashes: () => cache.size,
  };
}

export type JournalQueryService = ReturnType<typeof createJournalQuery>;
