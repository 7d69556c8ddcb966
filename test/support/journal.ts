import type { Database } from '../../src/db/database';
import { signerOfKey } from '../../src/journal/keys';
import { generateSigningKey } from '../../src/journal/note';
import { createJournalService, type JournalService } from '../../src/journal/service';
import { createJournalStore } from '../../src/journal/store';
import { createLogger } from '../../src/log/logger';

export const silentLog = createLogger('error', { silent: true });

export function testSigner(name = 'test.regent.local/journal') {
  const key = generateSigningKey(name);
  return { key, signer: signerOfKey(key) };
}

export async function startJournal(
  db: Database,
  opts: { checkpointEvery?: number; signer?: ReturnType<typeof testSigner>; strict?: boolean } = {},
): Promise<JournalService & { vkeyText: string }> {
  const { signer } = opts.signer ?? testSigner();
  const journal = createJournalService({
    store: createJournalStore(db.sql),
    signer,
    log: silentLog,
    checkpointEvery: opts.checkpointEvery ?? 1000,
    checkpointIntervalMs: 60_000,
    ...(opts.strict !== undefined ? { strict: opts.strict } : {}),
  });
  await journal.start();
  return Object.assign(journal, { vkeyText: signer.vkey });
}
