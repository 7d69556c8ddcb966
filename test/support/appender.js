// A separate OS process that appends to the journal and prints each acknowledged entry as
// `ack <seq> <leaf>`: the multi-process and crash tests compare those acknowledgements with
// what the database holds afterwards. Uses the built code (npm test builds first).
// argv: <database config JSON> <dataDir> <signing key text> <count> <mode: single|batch> <concurrency>
const { openDatabase } = require('../../dist/src/db/database.js');
const { createJournalService } = require('../../dist/src/journal/service.js');
const { createJournalStore } = require('../../dist/src/journal/store.js');
const { signerFromKeyText } = require('../../dist/src/journal/keys.js');
const { createLogger } = require('../../dist/src/log/logger.js');

const [dbConfig, dataDir, keyText, countArg, mode, concurrencyArg] = process.argv.slice(2);
const count = Number(countArg);
const concurrency = Number(concurrencyArg);

(async () => {
  const db = await openDatabase(JSON.parse(dbConfig), dataDir, { migrate: true, command: 'appender' });
  const journal = createJournalService({
    store: createJournalStore(db.sql),
    signer: signerFromKeyText(keyText),
    log: createLogger('error'),
    checkpointEvery: 100,
    checkpointIntervalMs: 1000,
  });
  await journal.start();
  process.stdout.write('ready\n');
  let issued = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      while (issued < count) {
        if (mode === 'batch') {
          const n = Math.min(7, count - issued);
          issued += n;
          const entries = await journal.appendMany(Array.from({ length: n }, (_, i) => ({ kind: 'audit.note', actor: `user:p${process.pid}`, data: { w, i } })));
          process.stdout.write(entries.map((e) => `ack ${e.seq} ${e.leaf}\n`).join(''));
        } else {
          issued++;
          const e = await journal.append({ kind: 'audit.note', actor: `user:p${process.pid}`, data: { w } });
          process.stdout.write(`ack ${e.seq} ${e.leaf}\n`);
        }
      }
    }),
  );
  await journal.stop();
  await db.close();
  process.stdout.write('done\n');
})().catch((err) => {
  process.stderr.write(`appender failed: ${err.message}\n`);
  process.exit(1);
});
