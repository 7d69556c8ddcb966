/**
 * The YAML files of one folder of the policies directory (authorities, connectors, playbooks,
 * signal rules), and noticing when the folder changed so a running server picks up edits without
 * a restart.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { YamlSource } from './documents';

/**
 * `<dir>/<folder>/*.yaml` in name order, labelled relative to the policies directory's parent
 * (`policies/connectors/crm.yaml`), so messages do not depend on where the directory sits on disk.
 * No folder: no files.
 */
export function readYamlSources(dir: string, folder: string): YamlSource[] {
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
