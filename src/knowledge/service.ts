/**
 * The governed decision corpus: ingest (extract, chunk, store, journal: one transaction),
 * search (PostgreSQL full text, filtered by what the reader may see, journaled with the query's
 * hash and the passage ids returned, never their text), retention (a passage past retainUntil is
 * never returned; a timer driven by the database's state blanks its text and keeps its hash) and
 * early deletion by an admin.
 *
 * Who may read what (README "Knowledge"):
 * - a twin: its authority's `knowledge: {collections, classes}` (absent: nothing);
 * - an auditor or an admin: every collection up to confidential;
 * - an executive: public and internal everywhere, every class in the collections they own;
 * - anyone more through an explicit grant (`regent knowledge grant`), the only way to restricted
 *   outside one's own collections.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Sql, SqlTx } from '../db/sql';
import { ForbiddenError, InputError, NotFoundError } from '../errors/errors';
import { parseInput } from '../errors/input';
import type { AppendInput } from '../journal/contract';
import type { JournalService } from '../journal/service';
import type { Logger } from '../log/logger';
import type { Role } from '../policy/roles';
import { chunkText } from './chunk';
import { extractText, type Extracted } from './extract';
import {
  CLASSES,
  classesUpTo,
  CollectionIdSchema,
  IngestBodySchema,
  SearchQuerySchema,
  type IngestResult,
  type KnowledgeClass,
  type MediaType,
  type Passage,
  type ReadRule,
  type ReadScope,
  type SearchResult,
} from './types';

/** Who is asking: a person with their Regent roles, or a twin. */
export type Reader = { kind: 'user'; ref: string; roles: readonly Role[] } | { kind: 'twin'; ref: string };

export interface KnowledgeDeps {
  sql: Sql;
  journal: Pick<JournalService, 'append' | 'appendWithin'>;
  log: Logger;
  /** Largest document accepted, in bytes (REGENT_MAX_DOCUMENT_BYTES). */
  maxDocumentBytes: number;
  /** The knowledge a twin's authority grants (null: none, or no policy in force: fail closed). */
  twinKnowledge: (twin: string) => Promise<{ collections: readonly string[]; classes: readonly KnowledgeClass[] } | null>;
  policyVersion?: () => string | null;
  /** How often the purge timer looks for passages past retention; default 5 minutes. */
  purgeIntervalMs?: number;
  now?: () => Date;
}

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** Passages inserted per statement (PostgreSQL allows 65,535 parameters). */
const INSERT_BATCH = 500;

interface PassageRow {
  id: string;
  document: string;
  version: number;
  chunk: number;
  collection: string;
  class: KnowledgeClass;
  heading_path: string[] | null;
  page: number | null;
  text: string;
  text_sha256: string;
  title: string;
  source: string;
  rank: number;
}

export function createKnowledgeService(deps: KnowledgeDeps) {
  const { sql, journal, log } = deps;
  const now = deps.now ?? (() => new Date());
  const policyVersion = () => deps.policyVersion?.() ?? null;
  let timer: NodeJS.Timeout | undefined;
  let purging: Promise<unknown> | undefined;

  // Planner statistics and the GIN index's pending list. Without statistics PostgreSQL scans
  // every passage's tsvector instead of using the index (ten times slower at 10,000 passages),
  // and PGlite has no autovacuum to gather them: the service does it itself once as many
  // passages were added as autovacuum's own threshold would wait for (50 + 10%).
  let added = 0;
  let analyzedAt: number | undefined;
  let analyzing: Promise<unknown> | undefined;
  async function analyze(): Promise<void> {
    const [r] = await sql.query<{ n: number }>('SELECT count(*)::int AS n FROM knowledge_passages');
    // New entries wait in the GIN index's pending list, scanned one by one at every search, until
    // a vacuum merges them (autovacuum's analyze would; a manual one does not): merge them here.
    await sql.query(`SELECT gin_clean_pending_list('knowledge_passages_tsv_idx'::regclass)`);
    await sql.query('ANALYZE knowledge_passages, knowledge_documents, knowledge_versions');
    analyzedAt = r!.n;
  }
  function passagesAdded(n: number) {
    added += n;
    if (analyzing || added < 50 + 0.1 * (analyzedAt ?? 0)) return;
    added = 0;
    analyzing = analyze()
      .catch((err) => log.warn('could not analyze the knowledge passages (search may be slower)', { error: err }))
      .finally(() => (analyzing = undefined));
  }

  async function contentOf(body: ReturnType<typeof IngestBodySchema.parse>): Promise<{ bytes: Buffer; mediaType: MediaType; extracted: Extracted }> {
    const max = deps.maxDocumentBytes;
    if (body.text !== undefined) {
      const bytes = Buffer.from(body.text, 'utf8');
      if (bytes.length > max) throw new InputError(`text: is ${bytes.length} bytes, more than REGENT_MAX_DOCUMENT_BYTES (${max})`, { field: 'text' });
      const mediaType: MediaType = body.mediaType ?? 'text/plain';
      if (mediaType === 'application/pdf' || mediaType.includes('wordprocessingml'))
        throw new InputError(`mediaType: ${mediaType} is a binary format; send it as contentBase64`, { field: 'mediaType' });
      return { bytes, mediaType, extracted: await extractText(bytes, mediaType, 'text') };
    }
    const b64 = body.contentBase64!.replace(/\s+/g, '');
    if (b64.length % 4 !== 0 || !BASE64.test(b64)) throw new InputError('contentBase64: is not valid base64', { field: 'contentBase64' });
    if ((b64.length / 4) * 3 - (b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0) > max)
      throw new InputError(`contentBase64: the document is more than REGENT_MAX_DOCUMENT_BYTES (${max} bytes)`, { field: 'contentBase64' });
    const bytes = Buffer.from(b64, 'base64');
    return { bytes, mediaType: body.mediaType!, extracted: await extractText(bytes, body.mediaType!, 'contentBase64') };
  }

  /** The scope of what `reader` may read. */
  async function scopeOf(reader: Reader): Promise<ReadScope> {
    if (reader.kind === 'twin') {
      const k = await deps.twinKnowledge(reader.ref.slice('twin:'.length));
      return k ? [{ collections: k.collections, classes: k.classes }] : [];
    }
    const rules: ReadRule[] = [];
    if (reader.roles.includes('auditor') || reader.roles.includes('admin')) rules.push({ collections: null, classes: classesUpTo('confidential') });
    if (reader.roles.includes('executive')) {
      rules.push({ collections: null, classes: classesUpTo('internal') });
      const owned = await sql.query<{ id: string }>('SELECT id FROM knowledge_collections WHERE owner = $1', [reader.ref]);
      if (owned.length) rules.push({ collections: owned.map((o) => o.id), classes: [...CLASSES] });
    }
    if (rules.length === 0) return [];
    const grants = await sql.query<{ collection: string | null; classes: KnowledgeClass[] }>(
      'SELECT collection, classes FROM knowledge_grants WHERE principal = $1',
      [reader.ref],
    );
    for (const g of grants) rules.push({ collections: g.collection === null ? null : [g.collection], classes: g.classes });
    return rules;
  }

  /** `scope` as a WHERE clause on passages `p`, its parameters numbered from `from`. */
  function scopeSql(scope: ReadScope, from: number, collection: string | undefined): { clause: string; params: unknown[] } {
    const params: unknown[] = [];
    const parts: string[] = [];
    for (const r of scope) {
      const cols = r.collections === null ? null : collection === undefined ? r.collections : r.collections.filter((c) => c === collection);
      if (cols && cols.length === 0) continue;
      params.push(r.classes);
      let part = `p.class = ANY($${from + params.length}::text[])`;
      if (cols) {
        params.push(cols);
        part += ` AND p.collection = ANY($${from + params.length}::text[])`;
      }
      parts.push(`(${part})`);
    }
    return { clause: parts.length ? `(${parts.join(' OR ')})` : 'false', params };
  }

  async function purge(tx: SqlTx, where: string, params: unknown[]): Promise<{ passages: string[]; versions: { document: string; version: number }[] }> {
    const rows = await tx.query<{ id: string; document: string; version: number }>(
      `UPDATE knowledge_passages p SET text = '', purged_at = now() WHERE p.purged_at IS NULL AND ${where} RETURNING p.id, p.document, p.version`,
      params,
    );
    const versions = new Map<string, { document: string; version: number }>();
    for (const r of rows) versions.set(`${r.document}:${r.version}`, { document: r.document, version: r.version });
    const list = [...versions.values()].sort((a, b) => a.document.localeCompare(b.document) || a.version - b.version);
    if (list.length)
      await tx.query(
        `UPDATE knowledge_versions v SET purged_at = now() FROM unnest($1::text[], $2::int[]) AS t(document, version)
          WHERE v.document = t.document AND v.version = t.version AND v.purged_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM knowledge_passages p WHERE p.document = v.document AND p.version = v.version AND p.purged_at IS NULL)`,
        [list.map((v) => v.document), list.map((v) => v.version)],
      );
    return { passages: rows.map((r) => r.id).sort(), versions: list };
  }

  const service = {
    /** Adds a document (a new version when its collection already holds its title). */
    async ingest(body: unknown, by: { ref: string; roles: readonly Role[] }): Promise<IngestResult> {
      const input = parseInput(IngestBodySchema, body, 'body');
      const { bytes, mediaType, extracted } = await contentOf(input);
      const field = input.text !== undefined ? 'text' : 'contentBase64';
      const chunks = chunkText(extracted, mediaType === 'application/pdf');
      if (chunks.length === 0) throw new InputError(`${field}: the document has no text`, { field });
      const isAdmin = by.roles.includes('admin');
      const contentSha256 = sha256(bytes);
      const at = now();

      const result = await sql.transaction(async (tx) => {
        // The collection: made by its first document, owned by an executive who adds it, or by
        // the document's owner when an admin does and names a user; otherwise by the admin.
        // ON CONFLICT: two first documents of one collection at once make it once; the row lock
        // below then serializes ingests into the collection (and so the version numbers).
        const newOwner = isAdmin ? (/^user:[A-Za-z0-9][A-Za-z0-9._@-]*$/.test(input.owner) ? input.owner : by.ref) : by.ref;
        const made = await tx.query(
          'INSERT INTO knowledge_collections (id, owner, created_by, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING RETURNING id',
          [input.collection, newOwner, by.ref, at.toISOString()],
        );
        const created = made.length === 1;
        const [row] = await tx.query<{ owner: string }>('SELECT owner FROM knowledge_collections WHERE id = $1 FOR UPDATE', [input.collection]);
        const collectionOwner = row!.owner;
        if (!isAdmin && collectionOwner !== by.ref) {
          throw new ForbiddenError(`${by.ref} may add documents only to collections they own; ${input.collection} is owned by ${collectionOwner}`, {
            capability: 'knowledge.ingest',
          });
        }
        const docs = await tx.query<{ id: string; latest_version: number; deleted_at: Date | null }>(
          'SELECT id, latest_version, deleted_at FROM knowledge_documents WHERE collection = $1 AND title = $2 FOR UPDATE',
          [input.collection, input.title],
        );
        let id: string;
        let version: number;
        if (docs[0]) {
          if (docs[0].deleted_at) throw new InputError(`title: "${input.title}" was deleted from ${input.collection}; add it under another title`, { field: 'title' });
          id = docs[0].id;
          version = docs[0].latest_version + 1;
          await tx.query('UPDATE knowledge_documents SET latest_version = $2 WHERE id = $1', [id, version]);
          await tx.query('UPDATE knowledge_passages SET latest = false WHERE document = $1 AND latest', [id]);
        } else {
          id = `doc-${randomBytes(6).toString('hex')}`;
          version = 1;
          await tx.query('INSERT INTO knowledge_documents (id, collection, title, latest_version, created_at) VALUES ($1, $2, $3, 1, $4)', [
            id,
            input.collection,
            input.title,
            at.toISOString(),
          ]);
        }
        const retainUntil = input.retainUntil ? new Date(input.retainUntil).toISOString() : null;
        await tx.query(
          `INSERT INTO knowledge_versions (document, version, class, source, owner, media_type, bytes, pages, content_sha256, chunks, retain_until, ingested_by, ingested_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
          [id, version, input.class, input.source, input.owner, mediaType, bytes.length, extracted.pageCount, contentSha256, chunks.length, retainUntil, by.ref, at.toISOString()],
        );
        const hashes = chunks.map((c) => sha256(c.text));
        for (let start = 0; start < chunks.length; start += INSERT_BATCH) {
          const slice = chunks.slice(start, start + INSERT_BATCH);
          await tx.query(
            `INSERT INTO knowledge_passages (id, document, version, chunk, collection, class, heading_path, page, text, text_sha256, retain_until)
             SELECT $1::text || ':' || $2::int || ':' || t.chunk, $1::text, $2::int, t.chunk, $3, $4, ARRAY(SELECT jsonb_array_elements_text(t.headings)), t.page, t.text, t.sha, $5::timestamptz
               FROM unnest($6::int[], $7::jsonb[], $8::int[], $9::text[], $10::text[]) AS t(chunk, headings, page, text, sha)`,
            [
              id,
              version,
              input.collection,
              input.class,
              retainUntil,
              slice.map((_, i) => start + i),
              slice.map((c) => JSON.stringify(c.headings)),
              slice.map((c) => c.page),
              slice.map((c) => c.text),
              hashes.slice(start, start + slice.length),
            ],
          );
        }
        const entry: AppendInput<'knowledge.ingested'> = {
          kind: 'knowledge.ingested',
          actor: by.ref,
          subject: `document:${id}`,
          data: {
            collection: input.collection,
            ...(created ? { collectionOwner } : {}),
            title: input.title,
            version,
            class: input.class,
            source: input.source,
            owner: input.owner,
            mediaType,
            bytes: bytes.length,
            pages: extracted.pageCount,
            contentSha256,
            retainUntil,
            passages: hashes,
          },
          policyVersion: policyVersion(),
        };
        await journal.appendWithin(tx, [entry]);
        return { id, version, chunks: chunks.length, collection: input.collection, title: input.title, class: input.class, contentSha256, pages: extracted.pageCount };
      });
      passagesAdded(result.chunks);
      return result;
    },

    /** Searches what `reader` may read; journaled with the query's hash and the ids returned. */
    async search(query: unknown, reader: Reader): Promise<SearchResult> {
      const q = parseInput(SearchQuerySchema, query, 'query');
      const scope = await scopeOf(reader);
      if (scope.length === 0) {
        throw new ForbiddenError(
          reader.kind === 'twin'
            ? `${reader.ref}'s authority grants no knowledge (add knowledge: {collections, classes} to it)`
            : `${reader.ref} may not search the knowledge corpus (executives, auditors and admins may)`,
          { capability: 'knowledge.search' },
        );
      }
      const { clause, params } = scopeSql(scope, 2, q.collection);
      const rows =
        clause === 'false'
          ? []
          : await sql.query<PassageRow>(
              // Ranked among the passages alone (the GIN index finds them), then joined for titles:
              // a deleted document's passages are purged, so no join is needed to leave them out.
              `WITH hits AS MATERIALIZED (
                 SELECT p.id, p.document, p.version, p.chunk, p.collection, p.class, p.heading_path, p.page, p.text, p.text_sha256,
                        ts_rank(p.tsv, q) AS rank
                   FROM knowledge_passages p, websearch_to_tsquery('english', $1) q
                  WHERE p.tsv @@ q AND p.latest AND p.purged_at IS NULL AND (p.retain_until IS NULL OR p.retain_until > now()) AND ${clause}
                  ORDER BY rank DESC, p.id
                  LIMIT $2)
               SELECT h.*, d.title, v.source
                 FROM hits h
                 JOIN knowledge_documents d ON d.id = h.document
                 JOIN knowledge_versions v ON v.document = h.document AND v.version = h.version
                ORDER BY h.rank DESC, h.id`,
              [q.q, q.limit, ...params],
            );
      const queryHash = `sha256:${sha256(q.q)}`;
      const passages: Passage[] = rows.map((r) => ({
        id: r.id,
        document: r.document,
        version: r.version,
        chunk: r.chunk,
        title: r.title,
        collection: r.collection,
        class: r.class,
        source: r.source,
        headings: r.heading_path ?? [],
        page: r.page,
        text: r.text,
        sha256: r.text_sha256.trim(),
        rank: Number(r.rank),
      }));
      // Fail closed: a search that cannot be journaled returns nothing.
      await journal.append({
        kind: 'knowledge.searched',
        actor: reader.ref,
        subject: q.collection ? `collection:${q.collection}` : null,
        data: { queryHash, collection: q.collection ?? null, limit: q.limit, passages: passages.map((p) => p.id) },
        policyVersion: policyVersion(),
      });
      return { query: q.q, queryHash, passages };
    },

    /** Purges every passage past its retainUntil (blanks the text, keeps the hash); journaled. */
    async purgeExpired(): Promise<{ passages: number; versions: number }> {
      const at = now().toISOString();
      return sql.transaction(async (tx) => {
        const r = await purge(tx, 'p.retain_until IS NOT NULL AND p.retain_until <= $1', [at]);
        if (r.passages.length === 0) return { passages: 0, versions: 0 };
        await journal.appendWithin(tx, [
          {
            kind: 'knowledge.purged',
            actor: 'system',
            subject: null,
            data: { reason: 'retention', before: at, versions: r.versions, passages: r.passages },
            policyVersion: policyVersion(),
          },
        ]);
        return { passages: r.passages.length, versions: r.versions.length };
      });
    },

    /** Deletes a document early (every version): admins; the same effect as retention, journaled. */
    async delete(id: string, by: string, reason: string | undefined): Promise<{ id: string; versions: number; passages: number }> {
      return sql.transaction(async (tx) => {
        const docs = await tx.query<{ id: string; deleted_at: Date | null; collection: string; title: string }>(
          'SELECT id, deleted_at, collection, title FROM knowledge_documents WHERE id = $1 FOR UPDATE',
          [id],
        );
        const doc = docs[0];
        if (!doc || doc.deleted_at) throw new NotFoundError(`no document ${id}${doc ? ' (it was deleted already)' : ''}`);
        await tx.query('UPDATE knowledge_documents SET deleted_at = now(), deleted_by = $2 WHERE id = $1', [id, by]);
        const r = await purge(tx, 'p.document = $1', [id]);
        await tx.query('UPDATE knowledge_versions SET purged_at = now() WHERE document = $1 AND purged_at IS NULL', [id]);
        await journal.appendWithin(tx, [
          {
            kind: 'knowledge.deleted',
            actor: by,
            subject: `document:${id}`,
            data: { collection: doc.collection, title: doc.title, reason: reason ?? null, passages: r.passages },
            policyVersion: policyVersion(),
          },
        ]);
        return { id, versions: r.versions.length, passages: r.passages.length };
      });
    },

    /** Grants `principal` (user:<id>) reading `classes` in `collection` (null: all); journaled. */
    async grant(principal: string, collection: string | null, classes: readonly KnowledgeClass[], by: string): Promise<{ id: string }> {
      if (!/^user:[A-Za-z0-9][A-Za-z0-9._@-]*$/.test(principal))
        throw new InputError(`principal: grants are to people, written user:<id> (twins read what their authority grants)`, { field: 'principal' });
      if (collection !== null) parseInput(CollectionIdSchema, collection, 'collection');
      if (classes.length === 0 || classes.some((c) => !CLASSES.includes(c)))
        throw new InputError(`classes: list classes among ${CLASSES.join(', ')}`, { field: 'classes' });
      const id = `kg-${randomBytes(6).toString('hex')}`;
      await sql.transaction(async (tx) => {
        await tx.query('INSERT INTO knowledge_grants (id, principal, collection, classes, granted_by) VALUES ($1, $2, $3, $4, $5)', [
          id,
          principal,
          collection,
          [...new Set(classes)],
          by,
        ]);
        await journal.appendWithin(tx, [
          { kind: 'knowledge.granted', actor: by, subject: principal, data: { grant: id, collection, classes: [...new Set(classes)] }, policyVersion: policyVersion() },
        ]);
      });
      return { id };
    },

    /** The passage with `id`, whatever its state (citations, tests); undefined when none. */
    async passage(id: string): Promise<{ id: string; text: string; sha256: string; purged: boolean; latest: boolean } | undefined> {
      const rows = await sql.query<{ id: string; text: string; text_sha256: string; purged_at: Date | null; latest: boolean }>(
        'SELECT id, text, text_sha256, purged_at, latest FROM knowledge_passages WHERE id = $1',
        [id],
      );
      const r = rows[0];
      return r && { id: r.id, text: r.text, sha256: r.text_sha256.trim(), purged: r.purged_at !== null, latest: r.latest };
    },

    /**
     * Runs the purge now and then every purgeIntervalMs. What is due is read from the database
     * each time, so a restart (or another process) picks up where this one left off.
     */
    start(): void {
      if (timer) return;
      const run = () => {
        purging ??= service
          .purgeExpired()
          .then((r) => r.passages && log.info('purged passages past retention', r))
          .catch((err) => log.error('could not purge passages past retention', { error: err }))
          .finally(() => (purging = undefined));
      };
      run();
      timer = setInterval(run, deps.purgeIntervalMs ?? 5 * 60_000);
      timer.unref();
    },

    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = undefined;
      await purging;
      await analyzing;
    },

    /** Waits for a statistics update in progress (benchmarks, tests). */
    async settled(): Promise<void> {
      await analyzing;
    },
  };
  return service;
}

export type KnowledgeService = ReturnType<typeof createKnowledgeService>;
