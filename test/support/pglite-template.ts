import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A freshly initialised, empty PGlite cluster, made once per jest run (global-setup) and copied
 * into each embedded test database instead of letting PGlite run initdb again: initdb costs 3–9 s
 * of CPU on the 2-core machine, a copy about 0.2 s. The copy is exactly what PGlite.create leaves
 * in an empty directory (no schema, no migrations, closed cleanly), so a test still sees a new,
 * unmigrated database. A few tests keep an empty directory on purpose (`regent serve` on a first
 * start, the lock tests' first holder), so PGlite's own initdb on first open stays covered.
 */
export const TEMPLATE_ENV = 'REGENT_TEST_PGLITE_TEMPLATE';

/** Runs initdb once, in a plain Node process (as the CLI opens PGlite), and returns the directory. */
export function createPgliteTemplate(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'regent-pglite-template-'));
  const dir = path.join(root, 'pg');
  const script = `require('@electric-sql/pglite').PGlite.create(process.argv[1]).then((pg) => pg.close()).catch((e) => { console.error(e); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['-e', script, dir], { cwd: path.resolve(__dirname, '../..'), encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0 || fs.existsSync(path.join(dir, 'postmaster.pid'))) {
    fs.rmSync(root, { recursive: true, force: true });
    throw new Error(`could not make the PGlite template: ${r.stderr || r.error}`);
  }
  return dir;
}

export function removePgliteTemplate(dir: string | undefined): void {
  if (dir) fs.rmSync(path.dirname(dir), { recursive: true, force: true });
}

/** Puts a copy of the template in `pgDir` (an embedded database's directory) unless it already holds something. */
export function seedEmbedded(pgDir: string): void {
  const template = process.env[TEMPLATE_ENV];
  if (!template || !fs.existsSync(template)) return; // a fresh initdb then, as without the template
  if (fs.existsSync(pgDir) && fs.readdirSync(pgDir).length > 0) return;
  fs.cpSync(template, pgDir, { recursive: true });
}
