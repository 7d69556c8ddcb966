import type { Config } from './config/config';
import { openDatabase, type Database } from './db/database';
import { createJournalService, type JournalService } from './journal/service';
import { loadOrCreateSigner } from './journal/keys';
import { createJournalStore } from './journal/store';
import type { Logger } from './log/logger';
import { createPolicyService, type PolicyService } from './policy/service';
import { createPolicyStore } from './policy/store';

/** The composition root: opens storage and wires the capabilities together, nothing more. */
export interface Regent {
  config: Config;
  log: Logger;
  db: Database;
  journal: JournalService;
  /** Present when opened with `policies` (the server; policy commands). */
  policy: PolicyService | undefined;
  /** Flushes the journal (final checkpoint) and closes the database. */
  close(): Promise<void>;
}

export async function openRegent(config: Config, log: Logger, opts: { command: string; migrate?: boolean; policies?: 'load' | 'watch' }): Promise<Regent> {
  const signer = loadOrCreateSigner({ keyText: config.signingKey, dataDir: config.dataDir, origin: config.journalOrigin });
  if (signer.created) log.info('created the journal signing key', { file: signer.file, vkey: signer.vkey });
  const db = await openDatabase(config.database, config.dataDir, { migrate: opts.migrate ?? true, command: opts.command });
  if (db.recovered) log.warn('recovered the embedded database from a previous run that did not shut down cleanly', { dir: db.location });
  const journal = createJournalService({
    store: createJournalStore(db.sql),
    signer,
    log,
    checkpointEvery: config.checkpointEvery,
    checkpointIntervalMs: config.checkpointIntervalMs,
  });
  let policy: PolicyService | undefined;
  try {
    await journal.start();
    if (opts.policies) {
      policy = createPolicyService({ dir: config.policiesDir, store: createPolicyStore(db.sql), journal, log });
      const loaded = await policy.start({ watch: opts.policies === 'watch' });
      if (!loaded.ok) log.warn('policy files refused at start', { errors: loaded.errors.length, inForce: loaded.inForce });
    }
  } catch (err) {
    policy?.stop();
    await journal.stop().catch(() => undefined);
    await db.close();
    throw err;
  }
  return {
    config,
    log,
    db,
    journal,
    policy,
    async close() {
      policy?.stop();
      try {
        await journal.stop();
      } finally {
        await db.close();
      }
    },
  };
}
