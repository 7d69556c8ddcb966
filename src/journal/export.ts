import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors/errors';
import { exportLine } from './hash';
import type { JournalService } from './service';

export interface ExportManifest {
  origin: string;
  size: number;
  checkpoints: number[];
  root: string;
  exportedAt: string;
  generator: string;
}

const PAGE = 5000;

/**
 * Writes the DESIGN.md export layout: entries.jsonl, checkpoints/<n>.note, journal.vkey,
 * manifest.json. A checkpoint is made first, so the export always ends on a signed size. The
 * files are written to a temporary sibling and renamed into place: never a half-written export.
 */
export async function exportJournal(journal: JournalService, outDir: string, generator: string): Promise<ExportManifest> {
  const out = path.resolve(outDir);
  if (fs.existsSync(out) && (!fs.statSync(out).isDirectory() || fs.readdirSync(out).length > 0)) {
    throw new InputError(`--out ${outDir} already exists and is not an empty directory`);
  }
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = fs.mkdtempSync(path.join(path.dirname(out), `.${path.basename(out)}.partial-`));
  try {
    const cp = await journal.checkpoint();
    const size = cp.size;
    fs.mkdirSync(path.join(tmp, 'checkpoints'));
    const fd = fs.openSync(path.join(tmp, 'entries.jsonl'), 'w');
    try {
      for (let after = 0; after < size; ) {
        const page = await journal.list({ afterSeq: after, limit: Math.min(PAGE, size - after) });
        if (page.length === 0) throw new Error(`journal ended at seq ${after}, expected ${size}`);
        let text = '';
        for (const e of page) {
          if (e.seq !== after + 1) throw new Error(`journal has a gap after seq ${after}`);
          // The contract's field order, `data` in canonical form (jsonb returns its keys in its own
          // order): the line is then canonical already, which verifiers can check fastest.
          text += exportLine(e) + '\n';
          after = e.seq;
        }
        fs.writeSync(fd, text);
      }
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    const checkpoints = await journal.checkpoints(size);
    for (const c of checkpoints) fs.writeFileSync(path.join(tmp, 'checkpoints', `${c.size}.note`), c.note);
    fs.writeFileSync(path.join(tmp, 'journal.vkey'), journal.vkey + '\n');
    const manifest: ExportManifest = {
      origin: journal.origin,
      size,
      checkpoints: checkpoints.map((c) => c.size),
      root: cp.root,
      exportedAt: new Date().toISOString(),
      generator,
    };
    fs.writeFileSync(path.join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    if (fs.existsSync(out)) fs.rmdirSync(out);
    fs.renameSync(tmp, out);
    return manifest;
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
