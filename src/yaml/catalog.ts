import type { Logger } from '../log/logger';
import { formatProblem, type YamlProblem } from './problems';

/** A read of the files: the new set, or every problem that refused it. */
export type CatalogRead<S> = { ok: true; set: S } | { ok: false; errors: YamlProblem[] };

export interface CatalogSpec<S> {
  /** What the set is called in the log: "playbooks", "signal rules". */
  name: string;
  /** The field of the "loaded" log line that lists the ids in force: "playbooks", "rules". */
  listedAs: string;
  /** In force until a read succeeds. */
  empty: S;
  ids(set: S): string[];
  /**
   * What the set is read from as it is now: a fingerprint that changes whenever the set might
   * (file names, sizes, times; whatever else the read depends on), and the read itself, which
   * runs only when the fingerprint changed.
   */
  source(): { fingerprint: string; read(): CatalogRead<S> };
  log: Logger;
  /** The files are looked at no more often than this (default 1 s). */
  checkEveryMs?: number;
}

/**
 * A set of documents from a folder of the policies directory (playbooks, signal rules) kept in
 * force while the server runs: re-read when the folder changes (looked at, at most once a second,
 * by whoever asks for the set). An invalid edit is refused with every file:line in the log, and the
 * last good set stays in force.
 */
export function createCatalog<S>(spec: CatalogSpec<S>) {
  const { log } = spec;
  let current = spec.empty;
  let errors: YamlProblem[] = [];
  let fingerprint: string | undefined;
  let checkedAt = 0;

  function refresh(force = false): void {
    const now = Date.now();
    if (!force && now - checkedAt < (spec.checkEveryMs ?? 1000)) return;
    checkedAt = now;
    const source = spec.source();
    if (source.fingerprint === fingerprint) return;
    fingerprint = source.fingerprint;
    const r = source.read();
    if (r.ok) {
      current = r.set;
      errors = [];
      log.info(`${spec.name} loaded`, { [spec.listedAs]: spec.ids(current) });
    } else {
      errors = r.errors;
      log.error(`${spec.name} refused; the last good set stays in force`, {
        errors: r.errors.map(formatProblem),
        inForce: spec.ids(current),
      });
    }
  }

  return {
    /** Reads the files now (at start). */
    load(): { ok: boolean; errors: YamlProblem[] } {
      refresh(true);
      return { ok: errors.length === 0, errors };
    },
    /** The set in force, re-read first if the files changed. */
    current(): S {
      refresh();
      return current;
    },
    /** Problems of the files on disk, if the last read refused them. */
    errors: (): YamlProblem[] => errors,
  };
}
