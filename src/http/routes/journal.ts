import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Router } from 'express';
import { z } from 'zod';
import { parseInput } from '../../errors/input';
import { exportJournal } from '../../journal/export';
import { verifyExport } from '../../journal/verify';
import { VERSION } from '../../version';
import { authorize } from '../auth';
import type { ApiDeps } from '../app';

// Filters reach SQL as parameters; PostgreSQL refuses NUL in text, so it is refused here first.
const filter = (max: number) => z.string().max(max).regex(/^[^\u0000]*$/, 'must not contain NUL');
const seq = z
  .string()
  .regex(/^\d{1,15}$/, 'must be a whole number')
  .transform(Number);

const JournalQuery = z
  .object({
    kind: filter(100).optional(),
    actor: filter(200).optional(),
    subject: filter(300).optional(),
    /** Inclusive. */
    from: z.iso.datetime({ offset: true }).optional(),
    /** Exclusive. */
    to: z.iso.datetime({ offset: true }).optional(),
    /** The cursor: entries after this seq (a previous page's nextCursor). */
    afterSeq: seq.optional(),
    limit: seq.pipe(z.number().int().min(1).max(1000)).default(100),
  })
  .strict();

/** The journal for auditors (and admins): search with a cursor, and verify what is live. */
export function journalRoutes({ journal }: ApiDeps): Router {
  const r = Router();

  r.get('/v1/journal', authorize('journal.read'), async (req, res) => {
    const q = parseInput(JournalQuery, req.query, 'query');
    // One more than asked tells whether there is a next page without another round trip.
    const page = await journal.list({ ...q, limit: q.limit + 1 });
    const entries = page.slice(0, q.limit);
    res.json({ entries, nextCursor: page.length > q.limit ? entries[entries.length - 1]!.seq : null });
  });

  r.get('/v1/journal/verify', authorize('journal.verify'), async (_req, res) => {
    // The same check an auditor runs offline: export, then verify against this instance's own key.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regent-verify-'));
    try {
      const out = path.join(dir, 'export');
      await exportJournal(journal, out, `regent ${VERSION}`);
      const result = await verifyExport(out, { keyText: journal.vkey });
      res.json({ ...result, vkey: journal.vkey });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  return r;
}
