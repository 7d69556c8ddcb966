/**
 * Reading YAML documents of one kind from a folder of the policies directory (playbooks, signal
 * rules) with every problem reported as `file:line`, and noticing when the folder changed so a
 * running server picks up edits without a restart. All or nothing: a caller keeps the last good
 * set when a new one has errors.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { YamlSource } from '../yaml/documents';

export type DocumentSource = YamlSource;

/** `<dir>/<folder>/*.yaml`, labelled relative to the policies directory's parent. */
export function readDocumentSources(dir: string, folder: string): DocumentSource[] {
  const root = basename(resolve(dir));
  const where = join(dir, folder);
  if (!existsSync(where) || !statSync(where).isDirectory()) return [];
  return readdirSync(where)
    .filter((n) => /\.ya?ml$/.test(n))
    .sort()
    .map((n) => ({ file: `${root}/${folder}/${n}`, text: readFileSync(join(where, n), 'utf8') }));
}

/** A cheap identity of a folder's contents (names, sizes, modification times). */
export function folderFingerprint(dir: string, folder: string): string {
  const where = join(dir, folder);
  if (!existsSync(where)) return 'absent';
  const h = createHash('sha256');
  for (const n of readdirSync(where).sort()) {
    if (!/\.ya?ml$/.test(n)) continue;
    const s = statSync(join(where, n));
    h.update(`${n}\0${s.size}\0${s.mtimeMs}\n`);
  }
  return h.digest('hex');
}
