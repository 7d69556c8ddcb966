import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Response } from 'express';
import { z } from 'zod';
import { InputError, NotFoundError, RegentError } from '../../errors/errors';
import { JOURNAL_KINDS, JournalKindSchema } from '../../journal/contract';
import { exportJournal } from '../../journal/export';
import { canonicalize } from '../../journal/jcs';
import { exportLine, type JournalEntry } from '../../journal/hash';
import type { Checkpoint } from '../../journal/types';
import { verifyExport } from '../../journal/verify';
import { IdSchema } from '../../people/types';
import { OUTCOMES } from '../../policy/types';
import { VERSION } from '../../version';
import type { ApiDeps } from '../app';
import { endpoint, implement, type ApiModule } from '../registry';
import { CheckpointSchema, Hex32, InclusionProofSchema, JournalEntrySchema } from '../schemas';
import { tarStream } from '../tar';

// Filters reach SQL as parameters; PostgreSQL refuses NUL in text, so it is refused here first.
const text = (max: number) => z.string().max(max).regex(/^[^\u0000]*$/, 'must not contain NUL');
const wholeNumber = (min: number) =>
  z
    .string()
    .regex(/^\d{1,15}$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be ${min} or more`));

const Filters = {
  kind: text(100).optional().describe('Entry kind, e.g. proposal.transitioned'),
  actor: text(200).optional().describe('Who acted: user:<id>, twin:<id> or system'),
  subject: text(300).optional().describe('What the entry is about, e.g. twin:cfo-twin'),
  twin: IdSchema.optional().describe("Entries about a twin: its subject, the twin's own actions, or data.twin"),
  proposal: z.uuid().optional().describe('Entries about a proposal (subject proposal:<id>)'),
  outcome: z.enum(OUTCOMES).optional().describe('Policy decisions (policy.decided) with this outcome'),
  from: z.iso.datetime({ offset: true }).optional().describe('Entries at or after this time (RFC 3339)'),
  to: z.iso.datetime({ offset: true }).optional().describe('Entries before this time (RFC 3339)'),
};

const ListQuery = z
  .object({
    ...Filters,
    cursor: wholeNumber(0).optional().describe("A previous page's nextCursor: the page after it, in the same order"),
    afterSeq: wholeNumber(0).optional().describe('Entries after this seq (ascending order only; same as cursor)'),
    order: z.enum(['asc', 'desc']).default('asc').describe('asc: oldest first; desc: newest first'),
    limit: wholeNumber(1).pipe(z.number().max(1000, 'must be 1000 or less')).default(100),
  })
  .strict();

const SeqParams = z.object({ seq: wholeNumber(1).describe('The entry’s seq') }).strict();

const ProofQuery = z
  .object({ size: wholeNumber(1).optional().describe('Tree size to prove against (default: the latest checkpoint)') })
  .strict();

const ConsistencyQuery = z
  .object({
    from: wholeNumber(1).describe('The size of the checkpoint you kept'),
    to: wholeNumber(1).optional().describe('The newer size (default: the journal as it is now, signed by a checkpoint made if needed)'),
  })
  .strict();

const CheckpointQuery = z
  .object({ format: z.enum(['json', 'note']).default('json').describe('note: the signed note alone, as text/plain') })
  .strict();

const ExportQuery = z
  .object({
    format: z
      .enum(['jsonl', 'csv', 'bundle'])
      .default('jsonl')
      .describe('jsonl: entries.jsonl of `regent journal export`; csv: a spreadsheet; bundle: the signed export directory as .tar.gz'),
    ...Filters,
  })
  .strict();

const CheckpointView = CheckpointSchema.extend({ origin: z.string(), vkey: z.string().describe('The verifier key (C2SP vkey)') });

const endpoints = {
  list: endpoint({
    id: 'listJournal',
    method: 'GET',
    path: '/v1/journal',
    tag: 'Journal',
    summary: 'Search the journal',
    description:
      'Filters combine with AND. Pages hold `limit` entries; pass `nextCursor` back as `cursor` (with the same filters and order) for the next page; it is null on the last page.',
    access: { capabilities: ['journal.read'] },
    query: ListQuery,
    responses: {
      200: {
        description: 'A page of entries',
        schema: z.object({ entries: z.array(JournalEntrySchema), nextCursor: z.number().int().nullable() }),
      },
    },
  }),
  kinds: endpoint({
    id: 'listJournalKinds',
    method: 'GET',
    path: '/v1/journal/kinds',
    tag: 'Journal',
    summary: 'The kinds of entry Regent writes',
    description:
      'The closed union of entry kinds this version appends (for the `kind` filter and the console). An exported journal may hold others: entries of an independent implementation verify whatever their kind.',
    access: { capabilities: ['journal.read'] },
    responses: {
      200: { description: 'The kinds', schema: z.object({ kinds: z.array(JournalKindSchema) }) },
    },
  }),
  entry: endpoint({
    id: 'getJournalEntry',
    method: 'GET',
    path: '/v1/journal/entries/:seq',
    tag: 'Journal',
    summary: 'One entry, with its inclusion proof against the latest signed checkpoint',
    description:
      'Check it yourself: recompute `leaf` from the entry (DESIGN.md), verify `proof.proof` for leaf index seq-1 in a tree of `proof.size` (RFC 9162 §2.1.3.2) to `proof.root`, and that root against the signed `proof.checkpoint` with the verifier key. A checkpoint is made first when the entry is newer than the latest one.',
    access: { capabilities: ['journal.read'] },
    params: SeqParams,
    responses: {
      200: {
        description: 'The entry and its proof',
        schema: z.object({ entry: JournalEntrySchema, proof: InclusionProofSchema, origin: z.string(), vkey: z.string() }),
      },
    },
    errors: { 404: 'No entry with that seq' },
  }),
  proof: endpoint({
    id: 'getJournalProof',
    method: 'GET',
    path: '/v1/journal/proof/:seq',
    tag: 'Journal',
    summary: 'Inclusion proof of an entry',
    description: 'Against the latest signed checkpoint (made first if the entry is newer), or against any tree size up to the journal’s.',
    access: { capabilities: ['journal.read'] },
    params: SeqParams,
    query: ProofQuery,
    responses: { 200: { description: 'The proof', schema: InclusionProofSchema } },
    errors: { 404: 'No entry with that seq' },
  }),
  consistency: endpoint({
    id: 'getJournalConsistency',
    method: 'GET',
    path: '/v1/journal/consistency',
    tag: 'Journal',
    summary: 'Consistency proof between two tree sizes',
    description:
      'Proves that the journal of size `from` (a checkpoint you kept) is a prefix of the journal of size `to`: nothing was rewritten or removed since (RFC 9162 §2.1.4).',
    access: { capabilities: ['journal.read'] },
    query: ConsistencyQuery,
    responses: {
      200: {
        description: 'The proof, with both roots and the signed checkpoints at those sizes when they exist',
        schema: z.object({
          from: z.number().int(),
          to: z.number().int(),
          fromRoot: Hex32,
          toRoot: Hex32,
          proof: z.array(Hex32),
          checkpoints: z.object({ from: z.string().nullable(), to: z.string().nullable() }),
        }),
      },
    },
  }),
  checkpoint: endpoint({
    id: 'getJournalCheckpoint',
    method: 'GET',
    path: '/v1/journal/checkpoint',
    tag: 'Journal',
    summary: 'The latest signed checkpoint',
    description: 'Keep it: pass it to `regent journal verify --trusted` next time, or to /v1/journal/consistency.',
    access: { capabilities: ['journal.read'] },
    query: CheckpointQuery,
    responses: {
      200: {
        description: 'The checkpoint',
        schema: CheckpointView,
        media: { 'text/plain': { description: 'With format=note: the C2SP signed note' } },
      },
    },
  }),
  verify: endpoint({
    id: 'verifyJournal',
    method: 'GET',
    path: '/v1/journal/verify',
    tag: 'Journal',
    summary: 'Verify the live journal',
    description: 'Exports the journal and runs the same checks as `regent journal verify` against this instance’s key.',
    access: { capabilities: ['journal.verify'] },
    responses: {
      200: {
        description: 'The verification result (ok, or the first failing seq or checkpoint)',
        schema: z.looseObject({ ok: z.boolean(), vkey: z.string() }),
      },
    },
  }),
  export: endpoint({
    id: 'exportJournal',
    method: 'GET',
    path: '/v1/journal/export',
    tag: 'Journal',
    summary: 'Export the journal (streamed)',
    description:
      'A checkpoint is made first and the export ends at its size (headers Regent-Journal-Size and Regent-Journal-Root). ' +
      '`jsonl` is entries.jsonl of `regent journal export` (with filters, the matching lines only); ' +
      '`csv` has one row per entry (cells that start with = + - @, tab or CR are prefixed with an apostrophe so spreadsheets never run them); ' +
      '`bundle` is the signed export directory of `regent journal export` as a .tar.gz that `regent journal verify` accepts once unpacked (always the whole journal: filters are refused). ' +
      'Every export is journaled (journal.exported).',
    access: { capabilities: ['journal.export'] },
    query: ExportQuery,
    responses: {
      200: {
        description: 'The export, streamed',
        media: {
          'application/x-ndjson': { description: 'format=jsonl: one entry a line, seq order' },
          'text/csv': { description: 'format=csv: header row, then one row per entry' },
          'application/gzip': { description: 'format=bundle: regent-journal-<size>/ with entries.jsonl, checkpoints/<n>.note, journal.vkey, manifest.json' },
        },
      },
    },
  }),
};

/** One CSV cell: formula-looking text neutralized, then RFC 4180 quoting where needed. */
export function csvCell(value: unknown): string {
  let s = value === null || value === undefined ? '' : typeof value === 'string' ? value : canonicalize(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) || /^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const CSV_COLUMNS = ['seq', 'ts', 'kind', 'actor', 'subject', 'twin', 'action', 'outcome', 'text', 'policyVersion', 'data', 'leaf', 'chain'] as const;

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

export function csvRow(e: JournalEntry): string {
  const d = (e.data ?? {}) as Record<string, unknown>;
  const twinRef = [e.subject, e.actor].find((r) => r?.startsWith('twin:'));
  const cells: unknown[] = [
    e.seq,
    e.ts,
    e.kind,
    e.actor,
    e.subject,
    str(d.twin) ?? twinRef?.slice(5),
    str(d.action),
    str(d.outcome) ?? str(d.to) ?? str(d.decision) ?? str(d.verdict),
    str(d.reason) ?? str(d.comment) ?? str(d.text) ?? str(d.rationale),
    e.policyVersion,
    d,
    e.leaf,
    e.chain,
  ];
  return cells.map(csvCell).join(',') + '\r\n';
}

/** The filters given (all strings), as a search. */
function searchOf(q: Partial<Record<keyof typeof Filters, string>>): Partial<Record<keyof typeof Filters, string>> {
  const s: Partial<Record<keyof typeof Filters, string>> = {};
  for (const k of Object.keys(Filters) as (keyof typeof Filters)[]) if (q[k] !== undefined) s[k] = q[k];
  return s;
}

/** A download cut short by the client is not an error of ours. */
function aborted(err: unknown, res: Response): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ERR_STREAM_PREMATURE_CLOSE' || res.destroyed;
}

async function streamOut(res: Response, source: AsyncIterable<Buffer | string>, gzip = false): Promise<void> {
  try {
    if (gzip) await pipeline(Readable.from(source), createGzip(), res);
    else await pipeline(Readable.from(source), res);
  } catch (err) {
    if (aborted(err, res)) return;
    // Headers are out: the error handler logs it with an id and the connection is cut, so the
    // client sees a truncated download rather than a complete-looking one.
    throw err;
  }
}

/** The journal for auditors (and admins): search, entries with proofs, checkpoints, verify, export. */
export const journalApi: ApiModule = {
  name: 'journal',
  endpoints: Object.values(endpoints),
  bind({ journal, journalQuery: q, log }: ApiDeps) {
    /** The latest checkpoint covering `seq` entries, made now if the latest is older. */
    async function covering(seq: number): Promise<Checkpoint> {
      const latest = await q.latestCheckpoint();
      return latest && latest.size >= seq ? latest : journal.checkpoint();
    }

    async function proofAt(seq: number, size: number, checkpoint: Checkpoint | undefined) {
      const p = await q.inclusionProof(seq, size);
      if (checkpoint && checkpoint.root !== p.root) {
        log.error('journal integrity: the Merkle root computed from the stored leaves differs from the signed checkpoint', {
          size,
          computed: p.root,
          signed: checkpoint.root,
        });
        throw new RegentError('internal', `the journal's leaves do not match its signed checkpoint at size ${size}; run regent journal verify`);
      }
      return { ...p, checkpoint: checkpoint?.note ?? null };
    }

    async function existing(seq: number): Promise<number> {
      const size = await q.size();
      if (seq > size) throw new NotFoundError(`no journal entry ${seq}: the journal has ${size} entries`);
      return size;
    }

    return [
      implement(endpoints.list, async ({ query }) => {
        if (query.afterSeq !== undefined && query.cursor !== undefined)
          throw new InputError('query.afterSeq: give either afterSeq or cursor, not both', { field: 'query.afterSeq' });
        if (query.afterSeq !== undefined && query.order === 'desc')
          throw new InputError('query.afterSeq: pages forward only; with order=desc pass nextCursor as cursor', { field: 'query.afterSeq' });
        const cursor = query.cursor ?? query.afterSeq;
        const desc = query.order === 'desc';
        // One more than asked tells whether there is a next page without another round trip.
        const page = await q.search({
          ...searchOf(query),
          ...(cursor !== undefined ? (desc ? { beforeSeq: cursor } : { afterSeq: cursor }) : {}),
          order: query.order,
          limit: query.limit + 1,
        });
        const entries = page.slice(0, query.limit);
        return { entries, nextCursor: page.length > query.limit ? entries[entries.length - 1]!.seq : null };
      }),

      implement(endpoints.kinds, () => ({ kinds: [...JOURNAL_KINDS] })),

      implement(endpoints.entry, async ({ params }) => {
        await existing(params.seq);
        const entry = (await q.entry(params.seq))!;
        const cp = await covering(params.seq);
        return { entry, proof: await proofAt(params.seq, cp.size, cp), origin: journal.origin, vkey: journal.vkey };
      }),

      implement(endpoints.proof, async ({ params, query }) => {
        const size = await existing(params.seq);
        if (query.size === undefined) {
          const cp = await covering(params.seq);
          return proofAt(params.seq, cp.size, cp);
        }
        if (query.size < params.seq)
          throw new InputError(`query.size: must be at least the entry's seq ${params.seq} (a tree of ${query.size} entries does not hold it)`, {
            field: 'query.size',
          });
        if (query.size > size) throw new InputError(`query.size: ${query.size} is beyond the journal's size ${size}`, { field: 'query.size' });
        return proofAt(params.seq, query.size, await q.checkpointAt(query.size));
      }),

      implement(endpoints.consistency, async ({ query }) => {
        const size = await q.size();
        if (query.from > size) throw new InputError(`query.from: ${query.from} is beyond the journal's size ${size}`, { field: 'query.from' });
        let to = query.to;
        let toCheckpoint: Checkpoint | undefined;
        if (to === undefined) {
          toCheckpoint = await journal.checkpoint();
          to = toCheckpoint.size;
        } else {
          if (to < query.from) throw new InputError(`query.to: must be at least from (${query.from})`, { field: 'query.to' });
          if (to > size) throw new InputError(`query.to: ${to} is beyond the journal's size ${size}`, { field: 'query.to' });
          toCheckpoint = await q.checkpointAt(to);
        }
        const [fromCheckpoint, proof, fromRoot, toRoot] = await Promise.all([
          q.checkpointAt(query.from),
          q.consistencyProof(query.from, to),
          q.root(query.from),
          q.root(to),
        ]);
        return {
          from: query.from,
          to,
          fromRoot,
          toRoot,
          proof,
          checkpoints: { from: fromCheckpoint?.note ?? null, to: toCheckpoint?.note ?? null },
        };
      }),

      implement(endpoints.checkpoint, async ({ query }, _req, res) => {
        const cp = (await q.latestCheckpoint()) ?? (await journal.checkpoint());
        if (query.format === 'note') {
          res.type('text/plain; charset=utf-8').send(cp.note);
          return undefined;
        }
        return { ...cp, origin: journal.origin, vkey: journal.vkey };
      }),

      implement(endpoints.verify, async () => {
        // The same check an auditor runs offline: export, then verify against this instance's own key.
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regent-verify-'));
        try {
          const out = path.join(dir, 'export');
          await exportJournal(journal, out, `regent ${VERSION}`);
          const result = await verifyExport(out, { keyText: journal.vkey });
          return { ...result, vkey: journal.vkey };
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }),

      implement(endpoints.export, async ({ query }, req, res) => {
        const filters = searchOf(query);
        const actor = req.principal.ref;
        if (query.format === 'bundle') {
          const given = Object.keys(filters);
          if (given.length)
            throw new InputError(`query.${given[0]}: a bundle is always the whole journal (filters apply to jsonl and csv)`, {
              field: `query.${given[0]}`,
            });
          const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regent-bundle-'));
          try {
            const out = path.join(dir, 'export');
            const manifest = await exportJournal(journal, out, `regent ${VERSION}`);
            await journal.append({ kind: 'journal.exported', actor, data: { size: manifest.size, root: manifest.root, format: 'bundle' } });
            const top = `regent-journal-${manifest.size}`;
            const files = [
              'manifest.json',
              'journal.vkey',
              'checkpoints/',
              ...manifest.checkpoints.map((n) => `checkpoints/${n}.note`),
              'entries.jsonl',
            ];
            res.setHeader('Content-Type', 'application/gzip');
            res.setHeader('Content-Disposition', `attachment; filename="${top}.tar.gz"`);
            res.setHeader('Regent-Journal-Size', String(manifest.size));
            res.setHeader('Regent-Journal-Root', manifest.root);
            await streamOut(res, tarStream(out, top, files), true);
          } finally {
            fs.rmSync(dir, { recursive: true, force: true });
          }
          return undefined;
        }
        // The export ends on a signed size, like `regent journal export`.
        const cp = await journal.checkpoint();
        await journal.append({
          kind: 'journal.exported',
          actor,
          data: { size: cp.size, root: cp.root, format: query.format, ...(Object.keys(filters).length ? { filters } : {}) },
        });
        const base = `regent-journal-${cp.size}`;
        res.setHeader('Regent-Journal-Size', String(cp.size));
        res.setHeader('Regent-Journal-Root', cp.root);
        const pages = q.pages({ ...filters, toSeq: cp.size });
        if (query.format === 'csv') {
          res.setHeader('Content-Type', 'text/csv; charset=utf-8; header=present');
          res.setHeader('Content-Disposition', `attachment; filename="${base}.csv"`);
          await streamOut(
            res,
            (async function* () {
              yield CSV_COLUMNS.join(',') + '\r\n';
              for await (const page of pages) yield page.map(csvRow).join('');
            })(),
          );
        } else {
          res.setHeader('Content-Type', 'application/x-ndjson; charset=utf-8');
          res.setHeader('Content-Disposition', `attachment; filename="${base}.jsonl"`);
          await streamOut(
            res,
            (async function* () {
              for await (const page of pages) yield page.map((e) => exportLine(e) + '\n').join('');
            })(),
          );
        }
        return undefined;
      }),
    ];
  },
};

