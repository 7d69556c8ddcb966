import type { Sql, SqlTx } from '../db/sql';
import type { JournalEntry } from './hash';
import type { Checkpoint, JournalQuery } from './types';

/**
 * SQL for the journal tables. Plain SQL on the driver, not the ORM: this is the hottest path in
 * Regent and one round trip per batch matters. The same statements run on PGlite and PostgreSQL.
 */

interface HeadRow {
  size: string | number | bigint;
  chain: string;
  frontier: string[] | null;
}

export interface StoredHead {
  size: number;
  chain: string;
  frontier: string[];
}

const toHead = (r: HeadRow): StoredHead => ({ size: Number(r.size), chain: r.chain, frontier: r.frontier ?? [] });

interface EntryRow {
  seq: string | number | bigint;
  ts: Date | string;
  kind: string;
  actor: string;
  subject: string | null;
  data: unknown;
  policy_version: string | null;
  leaf: string;
  chain: string;
}

const toIso = (ts: Date | string) => (ts instanceof Date ? ts : new Date(ts)).toISOString();

export function rowToEntry(r: EntryRow): JournalEntry {
  return {
    seq: Number(r.seq),
    ts: toIso(r.ts),
    kind: r.kind,
    actor: r.actor,
    subject: r.subject,
    data: typeof r.data === 'string' ? JSON.parse(r.data) : r.data,
    policyVersion: r.policy_version,
    leaf: r.leaf,
    chain: r.chain,
  };
}

const ENTRY_COLUMNS = 'seq, ts, kind, actor, subject, data, policy_version, leaf, chain';

export function createJournalStore(sql: Sql) {
  return {
    transaction: sql.transaction.bind(sql) as Sql['transaction'],

    /**
     * Appends a batch sealed against `base`, in one round trip (regent_journal_append): the head
     * is locked, and if it is still `base` the entries are inserted and the head moved to `next`.
     * Otherwise nothing is written and the real head is returned, now locked by this transaction,
     * for the caller to seal the batch again. The rows travel as one JSON document: serializing
     * it is native (JSON.stringify) where per-column array literals would be escaped in JavaScript.
     */
    async appendAt(tx: SqlTx, base: StoredHead, entries: readonly JournalEntry[], next: StoredHead): Promise<StoredHead | undefined> {
      const rows = await tx.query<{ head_size: string | number; head_chain: string; head_frontier: string[] | null }>(
        'SELECT head_size, head_chain, head_frontier FROM regent_journal_append($1, $2, $3::jsonb, $4, $5, $6::text[])',
        [base.size, base.chain, JSON.stringify(entries), next.size, next.chain, next.frontier],
      );
      const r = rows[0];
      return r && toHead({ size: r.head_size, chain: r.head_chain, frontier: r.head_frontier });
    },

    async head(q: Pick<Sql, 'query'> = sql): Promise<StoredHead> {
      const rows = await q.query<HeadRow>('SELECT size, chain, frontier FROM journal_head WHERE id = 1');
      if (!rows[0]) throw new Error('journal_head row is missing: the database was not migrated by Regent');
      return toHead(rows[0]);
    },

    /** Entries with seq in (afterSeq, afterSeq + limit], filtered; ordered by seq. */
    async list(q: JournalQuery & { toSeq?: number }): Promise<JournalEntry[]> {
      const where: string[] = ['seq > $1'];
      const params: unknown[] = [q.afterSeq ?? 0];
      const add = (clause: string, value: unknown) => {
        params.push(value);
        where.push(clause.replace('?', `$${params.length}`));
      };
      if (q.toSeq !== undefined) add('seq <= ?', q.toSeq);
      if (q.kind) add('kind = ?', q.kind);
      if (q.actor) add('actor = ?', q.actor);
      if (q.subject) add('subject = ?', q.subject);
      if (q.from) add('ts >= ?', q.from);
      if (q.to) add('ts < ?', q.to);
      params.push(Math.min(Math.max(q.limit ?? 100, 1), 10_000));
      const rows = await sql.query<EntryRow>(
        `SELECT ${ENTRY_COLUMNS} FROM journal_entries WHERE ${where.join(' AND ')} ORDER BY seq LIMIT $${params.length}`,
        params,
      );
      return rows.map(rowToEntry);
    },

    /** The newest entry of one of `kinds`, if any. */
    async latest(kinds: readonly string[]): Promise<JournalEntry | undefined> {
      const rows = await sql.query<EntryRow>(
        // One index probe per kind ((kind, seq) index), however old the newest such entry is.
        `SELECT e.* FROM unnest($1::text[]) AS k(kind)
           CROSS JOIN LATERAL (SELECT ${ENTRY_COLUMNS} FROM journal_entries j WHERE j.kind = k.kind ORDER BY j.seq DESC LIMIT 1) e
          ORDER BY e.seq DESC LIMIT 1`,
        [kinds],
      );
      return rows[0] && rowToEntry(rows[0]);
    },

    async leaves(fromSeq: number, toSeq: number): Promise<Buffer[]> {
      const rows = await sql.query<{ leaf: string }>(
        'SELECT leaf FROM journal_entries WHERE seq >= $1 AND seq <= $2 ORDER BY seq',
        [fromSeq, toSeq],
      );
      return rows.map((r) => Buffer.from(r.leaf, 'hex'));
    },

    async checkpointAt(size: number): Promise<Checkpoint | undefined> {
      const rows = await sql.query<CheckpointRow>('SELECT size, root, note, created_at FROM journal_checkpoints WHERE size = $1', [size]);
      return rows[0] && toCheckpoint(rows[0]);
    },

    async latestCheckpoint(atMost?: number): Promise<Checkpoint | undefined> {
      const rows = await sql.query<CheckpointRow>(
        'SELECT size, root, note, created_at FROM journal_checkpoints WHERE size <= $1 ORDER BY size DESC LIMIT 1',
        [atMost ?? Number.MAX_SAFE_INTEGER],
      );
      return rows[0] && toCheckpoint(rows[0]);
    },

    async checkpoints(atMost: number): Promise<Checkpoint[]> {
      const rows = await sql.query<CheckpointRow>(
        'SELECT size, root, note, created_at FROM journal_checkpoints WHERE size <= $1 ORDER BY size',
        [atMost],
      );
      return rows.map(toCheckpoint);
    },

    /** Idempotent across processes: the first writer of a size wins, the rest read it back. */
    async insertCheckpoint(c: { size: number; root: string; note: string }): Promise<Checkpoint> {
      await sql.query('INSERT INTO journal_checkpoints (size, root, note) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING', [
        c.size,
        c.root,
        c.note,
      ]);
      const stored = await this.checkpointAt(c.size);
      if (!stored) throw new Error(`checkpoint ${c.size} vanished after insert`);
      return stored;
    },
  };
}

export type JournalStore = ReturnType<typeof createJournalStore>;

/** A journal_checkpoints row (also read by query.ts). */
export interface CheckpointRow {
  size: string | number | bigint;
  root: string;
  note: string;
  created_at: Date | string;
}

export const toCheckpoint = (r: CheckpointRow): Checkpoint => ({
  size: Number(r.size),
  root: r.root,
  note: r.note,
  createdAt: toIso(r.created_at),
});
