import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Database } from '../../src/db/database';
import { exportJournal } from '../../src/journal/export';
import { generateSigningKey, signingKeyToString, vkeyOf } from '../../src/journal/note';
import { verifyExport } from '../../src/journal/verify';
import { createTestDatabase, describePostgres, tmpDir, type TestDatabase } from '../support/databases';
import { silentLog } from '../support/journal';
import { signerFromKeyText } from '../../src/journal/keys';
import { createJournalService } from '../../src/journal/service';
import { createJournalStore } from '../../src/journal/store';

const APPENDER = path.resolve(__dirname, '../support/appender.js');
const key = generateSigningKey('proc.regent.local/journal');
const keyText = signingKeyToString(key);

interface Appender {
  child: ChildProcess;
  acks: Map<number, string>;
  ready: Promise<void>;
  exit: Promise<number | null>;
}

function startAppender(tdb: TestDatabase, count: number, mode: 'single' | 'batch', concurrency: number): Appender {
  const child = spawn(process.execPath, [APPENDER, JSON.stringify(tdb.config), tdb.dataDir, keyText, String(count), mode, String(concurrency)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const acks = new Map<number, string>();
  let buf = '';
  let stderr = '';
  let onReady: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  child.stdout!.on('data', (d) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line === 'ready') onReady();
      const m = /^ack (\d+) ([0-9a-f]{64})$/.exec(line);
      if (m) acks.set(Number(m[1]), m[2]!);
    }
  });
  child.stderr!.on('data', (d) => (stderr += d));
  const exit = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      if (code !== 0 && code !== null) process.stderr.write(stderr);
      resolve(code);
    }),
  );
  return { child, acks, ready, exit };
}

async function waitFor(pred: () => boolean, ms = 30_000) {
  const until = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The journal holds exactly seq 1..n, every acknowledged entry unchanged, and verifies. */
async function expectIntactJournal(db: Database, acks: Map<number, string>[]) {
  const journal = createJournalService({ store: createJournalStore(db.sql), signer: signerFromKeyText(keyText), log: silentLog, checkpointEvery: 1000, checkpointIntervalMs: 60_000 });
  await journal.start();
  const head = await journal.head();
  const rows = await db.sql.query<{ seq: string; leaf: string }>('SELECT seq, leaf FROM journal_entries ORDER BY seq');
  expect(rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: head.size }, (_, i) => i + 1));
  const leafBySeq = new Map(rows.map((r) => [Number(r.seq), r.leaf]));
  for (const a of acks) for (const [seq, leaf] of a) expect(leafBySeq.get(seq)).toBe(leaf);
  const out = path.join(tmpDir(), 'export');
  await exportJournal(journal, out, 'jest');
  const result = await verifyExport(out, { keyText: vkeyOf(key) });
  expect(result).toMatchObject({ ok: true, size: head.size });
  await journal.stop();
  return head.size;
}

describePostgres('several OS processes on one PostgreSQL journal', () => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase('postgres');
    // Migrate once up front, as a deployment does.
    await (await tdb.open()).close();
  });
  afterAll(async () => tdb?.drop());

  it('keep seq contiguous across four processes appending at once', async () => {
    const procs = [startAppender(tdb, 150, 'single', 8), startAppender(tdb, 150, 'batch', 4), startAppender(tdb, 150, 'single', 8), startAppender(tdb, 150, 'batch', 4)];
    expect(await Promise.all(procs.map((p) => p.exit))).toEqual([0, 0, 0, 0]);
    const allSeqs = procs.flatMap((p) => [...p.acks.keys()]).sort((a, b) => a - b);
    expect(allSeqs).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
    const db = await tdb.open();
    try {
      expect(await expectIntactJournal(db, procs.map((p) => p.acks))).toBe(600);
    } finally {
      await db.close();
    }
  });

  it('lose no acknowledged entry and leave no partial batch when one process is SIGKILLed mid-append', async () => {
    const db = await tdb.open();
    const before = Number((await db.sql.query<{ size: string }>('SELECT size FROM journal_head'))[0]!.size);
    const victim = startAppender(tdb, 100_000, 'batch', 4);
    const survivor = startAppender(tdb, 300, 'single', 4);
    await waitFor(() => victim.acks.size >= 200);
    victim.child.kill('SIGKILL');
    await victim.exit;
    expect(await survivor.exit).toBe(0);
    try {
      const size = await expectIntactJournal(db, [victim.acks, survivor.acks]);
      expect(size).toBeGreaterThanOrEqual(before + victim.acks.size + 300);
      // Batches are all-or-nothing: whatever the victim wrote is whole groups of 7 per request.
      const victimRows = await db.sql.query<{ n: string }>(`SELECT count(*) AS n FROM journal_entries WHERE actor = $1`, [`user:p${victim.child.pid}`]);
      expect(Number(victimRows[0]!.n) % 7).toBe(0);
    } finally {
      await db.close();
    }
  });
});

describe('a process SIGKILLed while appending to the embedded database', () => {
  it('leaves every acknowledged entry, no gap and no partial batch after restart', async () => {
    const tdb = await createTestDatabase('embedded');
    const victim = startAppender(tdb, 100_000, 'batch', 4);
    await victim.ready;
    await waitFor(() => victim.acks.size >= 100, 60_000);
    victim.child.kill('SIGKILL');
    await victim.exit;
    const db = await tdb.open();
    try {
      expect(db.recovered).toBe(true);
      const size = await expectIntactJournal(db, [victim.acks]);
      expect(size).toBeGreaterThanOrEqual(victim.acks.size);
      expect(size % 7).toBe(0);
    } finally {
      await db.close();
      await tdb.drop();
    }
  });
});
