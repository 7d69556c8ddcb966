import path from 'node:path';
import { openScratchDatabase } from '../db/scratch';
import type { Logger } from '../log/logger';
import { exportJournal } from './export';
import { signerOfKey } from './keys';
import { generateSigningKey, vkeyOf } from './note';
import { createJournalService } from './service';
import { createJournalStore } from './store';
import { verifyExport } from './verify';

export interface JournalBenchResult {
  appends_per_s: number;
  batched_appends_per_s: number;
  verify_entries_per_s: number;
  sequential_appends_per_s: number;
  database: 'embedded' | 'postgres';
  concurrency: number;
  batch: number;
  entries: number;
}

export interface JournalBenchOptions {
  /** A PostgreSQL server URL: the bench creates and drops its own database there. Else embedded. */
  postgresUrl?: string;
  /** Single-entry appends issued concurrently (group commit batches them). */
  appends: number;
  concurrency: number;
  /** Entries written with appendMany, `batch` at a time, `concurrency` batches in flight. */
  entries: number;
  batch: number;
  log: Logger;
}

const sample = (i: number) => ({
  action: 'crm.discount.update',
  counterparty: `acct-${i % 997}`,
  amount: `${(i % 50_000) + 1}.00`,
  currency: 'EUR',
  discountPct: i % 20,
  rationale: 'renewal at risk; discount within the delegated limit',
});

/**
 * Measures the journal on a scratch database (never the configured one: benchmark entries in a
 * real, immutable journal could never be removed).
 */
export async function benchJournal(o: JournalBenchOptions): Promise<JournalBenchResult> {
  const scratch = await openScratchDatabase({
    postgresUrl: o.postgresUrl,
    poolMax: Math.max(4, o.concurrency),
    command: 'regent bench journal',
  });
  const { db } = scratch;
  try {
    const key = generateSigningKey('bench.regent.local/journal');
    const journal = createJournalService({
      store: createJournalStore(db.sql),
      signer: signerOfKey(key),
      log: o.log,
      checkpointEvery: 1000,
      checkpointIntervalMs: 10_000,
    });
    await journal.start();

    const seqN = Math.min(500, o.appends);
    let t = performance.now();
    for (let i = 0; i < seqN; i++) await journal.append({ kind: 'audit.note', actor: 'user:bench', data: sample(i) });
    const sequential = seqN / ((performance.now() - t) / 1000);

    // `concurrency` callers, each awaiting its own acknowledgement before the next append.
    let next = 0;
    t = performance.now();
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        while (next < o.appends) {
          const i = next++;
          await journal.append({ kind: 'audit.note', actor: 'user:bench', data: sample(i) });
        }
      }),
    );
    const appends = o.appends / ((performance.now() - t) / 1000);

    let written = 0;
    t = performance.now();
    await Promise.all(
      Array.from({ length: Math.min(o.concurrency, 4) }, async () => {
        while (written < o.entries) {
          const n = Math.min(o.batch, o.entries - written);
          written += n;
          await journal.appendMany(
            Array.from({ length: n }, (_, k) => ({ kind: 'audit.note' as const, actor: 'user:bench', data: sample(k) })),
          );
        }
      }),
    );
    const batched = o.entries / ((performance.now() - t) / 1000);

    const out = path.join(scratch.dir, 'export');
    const manifest = await exportJournal(journal, out, 'regent bench');
    await journal.stop();
    t = performance.now();
    const result = await verifyExport(out, { keyText: vkeyOf(key) });
    const verifyS = (performance.now() - t) / 1000;
    if (!result.ok) throw new Error(`benchmark export failed to verify: ${result.failure.message}`);

    return {
      appends_per_s: Math.round(appends),
      batched_appends_per_s: Math.round(batched),
      verify_entries_per_s: Math.round(manifest.size / verifyS),
      sequential_appends_per_s: Math.round(sequential),
      database: db.kind,
      concurrency: o.concurrency,
      batch: o.batch,
      entries: manifest.size,
    };
  } finally {
    await scratch.dispose();
  }
}
