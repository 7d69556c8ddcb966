import type { Config } from './config/config';
import { openDatabase, type Database } from './db/database';
import { createJournalService, type JournalService } from './journal/service';
import { loadOrCreateSigner } from './journal/keys';
import { createJournalStore } from './journal/store';
import type { Logger } from './log/logger';

/** The composition root: opens storage and wires the capabilities together, nothing more. */
export interface Regent {
  config: Config;
  log: Logger;
  db: Database;
  journal: JournalService;
  /** Flushes the journal (final checkpoint) and closes the database. */
  close(): Promise<void>;
}

export async function openRegent(config: Config, log: Logger, opts: { command: string; migrate?: boolean }): Promise<Regent> {
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
  try {
    await journal.start();
  } catch (err) {
    await db.close();
    throw err;
  }
  return {
    config,
    log,
    db,
    journal,
    async close() {
      try {
        await journal.stop();
      } finally {
        await db.close();
      }
    },
  };
}
