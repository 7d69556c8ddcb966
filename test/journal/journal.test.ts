import fs from 'node:fs';
import path from 'node:path';
import type { Database } from '../../src/db/database';
import { exportJournal } from '../../src/journal/export';
import { JournalContractError, type AppendInput } from '../../src/journal/contract';
import { fromHex32 } from '../../src/journal/hash';
import { verifyConsistency, verifyInclusion } from '../../src/journal/merkle';
import { openNote, parseCheckpoint, parseVerifierKey } from '../../src/journal/note';
import type { JournalService } from '../../src/journal/service';
import { verifyExport } from '../../src/journal/verify';
import { describeEachDatabase, tmpDir } from '../support/databases';
import { startJournal, testSigner } from '../support/journal';

describeEachDatabase('the journal', (getDb) => {
  let db: Database;
  let journal: JournalService & { vkeyText: string };
  const signer = testSigner();

  beforeAll(async () => {
    db = await getDb().open();
    journal = await startJournal(db, { checkpointEvery: 100, signer });
  });
  afterAll(async () => {
    await journal?.stop();
    await db?.close();
  });

  it('assigns seq 1, 2, 3, ... with no gap or duplicate under 50 concurrent appenders', async () => {
    const before = (await journal.head()).size;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, w) =>
        (async () => {
          const seqs: number[] = [];
          for (let i = 0; i < 10; i++) seqs.push((await journal.append({ kind: 'audit.note', actor: `user:w${w}`, data: { i } })).seq);
          return seqs;
        })(),
      ),
    );
    const all = results.flat().sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 500 }, (_, i) => before + i + 1));
    // Each appender's own entries keep their order.
    for (const seqs of results) expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    const rows = await journal.list({ afterSeq: before, limit: 1000 });
    expect(rows.map((r) => r.seq)).toEqual(all);
  });

  it('appends a multi-entry request contiguously and atomically', async () => {
    const entries = await journal.appendMany([
      { kind: 'audit.note', actor: 'user:ann', data: { n: 1 } },
      { kind: 'audit.note', actor: 'user:ann', data: { n: 2 } },
      { kind: 'audit.note', actor: 'user:ann', data: { n: 3 } },
    ]);
    expect(entries[1]!.seq).toBe(entries[0]!.seq + 1);
    expect(entries[2]!.seq).toBe(entries[0]!.seq + 2);
    const size = (await journal.head()).size;
    await expect(
      journal.appendMany([
        { kind: 'audit.note', actor: 'user:ann', data: { ok: true } },
        { kind: 'audit.note', actor: 'not an actor', data: {} },
      ]),
    ).rejects.toThrow(/actor/);
    expect((await journal.head()).size).toBe(size);
  });

  it('keeps the chain after a state transaction that journaled and then rolled back', async () => {
    const size = (await journal.head()).size;
    await expect(
      db.sql.transaction(async (tx) => {
        await journal.appendWithin(tx, [{ kind: 'audit.note', actor: 'user:ann', data: { rolledBack: true } }]);
        throw new Error('the state change failed');
      }),
    ).rejects.toThrow('the state change failed');
    expect((await journal.head()).size).toBe(size);
    // The next appends, inside a transaction and through group commit, continue from the real head.
    const [within] = await db.sql.transaction((tx) => journal.appendWithin(tx, [{ kind: 'audit.note', actor: 'user:ann', data: { n: 1 } }]));
    const after = await journal.append({ kind: 'audit.note', actor: 'user:ann', data: { n: 2 } });
    expect([within!.seq, after.seq]).toEqual([size + 1, size + 2]);
    const rows = await journal.list({ afterSeq: size - 1, limit: 10 });
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.seq).toBe(rows[i - 1]!.seq + 1);
  });

  it('refuses to start a second writer that signs with another key', async () => {
    await journal.append({ kind: 'audit.note', actor: 'user:ann', data: { before: 'checkpoint' } });
    await journal.checkpoint();
    const other = startJournal(db);
    await expect(other).rejects.toThrow(/did not sign the journal's latest checkpoint .* set REGENT_SIGNING_KEY/);
  });

  it('checks its integrity in the database without scanning the journal, even with generic plans', async () => {
    // PL/pgSQL switches to generic plans after a few calls; a generic plan for "seq > $1" is a
    // sequential scan, which would make every append cost the whole journal. Forced here, on a
    // journal big enough that the planner would never scan it by choice.
    await journal.appendMany(Array.from({ length: 2000 }, (_, i) => ({ kind: 'audit.note' as const, actor: 'user:ann', data: { i } })));
    await db.sql.exec('ANALYZE journal_entries');
    const scanned = await db.sql.transaction(async (tx) => {
      const seqScans = async () =>
        Number((await tx.query<{ n: string }>(`SELECT seq_scan AS n FROM pg_stat_xact_user_tables WHERE relname = 'journal_entries'`))[0]?.n ?? 0);
      await tx.exec('SET LOCAL plan_cache_mode = force_generic_plan');
      const before = await seqScans();
      for (let i = 0; i < 3; i++) await journal.appendWithin(tx, [{ kind: 'audit.note', actor: 'user:ann', data: { i } }]);
      return (await seqScans()) - before;
    });
    expect(scanned).toBe(0);
  });

  it('refuses bad entries with a specific message and writes nothing', async () => {
    const size = (await journal.head()).size;
    await expect(journal.append({ kind: 'no.such.kind' as never, actor: 'user:ann' })).rejects.toThrow(/kind/);
    await expect(journal.append({ kind: 'audit.note', actor: 'user:ann', data: { t: 'a\u0000b' } })).rejects.toThrow(/NUL/);
    await expect(journal.append({ kind: 'audit.note', actor: 'user:ann', data: { t: '\ud800' } })).rejects.toThrow(/well-formed/);
    await expect(journal.append({ kind: 'audit.note', actor: 'user:ann', data: { big: 'x'.repeat(70_000) } })).rejects.toThrow(/larger/);
    await expect(journal.append({ kind: 'audit.note', actor: 'user:ann', policyVersion: 'sha1:abc' })).rejects.toThrow(/policyVersion/);
    expect((await journal.head()).size).toBe(size);
  });

  it("refuses data that does not fit its kind's schema when strict (the default under jest), and skips that check when not", async () => {
    const size = (await journal.head()).size;
    const bad = { kind: 'twin.mode_changed', actor: 'user:ann', subject: 'twin:t', data: { from: 'propose', to: 'autopilot' } } as unknown as AppendInput;
    await expect(journal.append(bad)).rejects.toThrow(JournalContractError);
    await expect(journal.append(bad)).rejects.toThrow(/^journal entry of kind twin\.mode_changed: data\.to: .*ENTRY_DATA\['twin\.mode_changed'\] in src\/journal\/contract\.ts/);
    await expect(journal.append({ kind: 'policy.decided', actor: 'system', data: { outcome: 'deny' } as never })).rejects.toThrow(/data\.twin: /);
    await expect(journal.appendMany([{ kind: 'audit.note', actor: 'user:ann', data: {} }, bad])).rejects.toThrow(JournalContractError);
    await expect(db.sql.transaction((tx) => journal.appendWithin(tx, [bad]))).rejects.toThrow(JournalContractError);
    expect((await journal.head()).size).toBe(size);
    // As in production (NODE_ENV not "test"): the hot path does not look at data's shape.
    const lax = await startJournal(db, { strict: false, signer });
    try {
      const e = await lax.append(bad);
      expect(e).toMatchObject({ seq: size + 1, kind: 'twin.mode_changed', data: { to: 'autopilot' } });
    } finally {
      await lax.stop();
    }
  });

  it('stores entries whose hashes storage gives back unchanged', async () => {
    const tricky = { z: 1, a: [3, 2, 1], big: 1e21, small: 0.000001, neg: -0, max: 9007199254740991, s: 'café ☃ 😀 "q" \\ \n', nested: { '€': 1, '\r': 2, '1': {} } };
    const e = await journal.append({ kind: 'audit.note', actor: 'user:ann', subject: 'proposal:p-1', data: tricky, policyVersion: `sha256:${'ab'.repeat(32)}` });
    const [back] = await journal.list({ afterSeq: e.seq - 1, limit: 1 });
    expect(back).toEqual({ ...e, data: JSON.parse(JSON.stringify(tricky)) });
  });

  it('makes a signed checkpoint every checkpointEvery entries', async () => {
    await journal.appendMany(Array.from({ length: 150 }, (_, i) => ({ kind: 'audit.note' as const, actor: 'user:ann', data: { i } })));
    await new Promise((r) => setTimeout(r, 200)); // the checkpoint is written after the append is acknowledged
    const head = await journal.head();
    expect(head.lastCheckpoint).not.toBeNull();
    expect(head.size - head.lastCheckpoint!.size).toBeLessThan(100);
    const opened = openNote(head.lastCheckpoint!.note, parseVerifierKey(journal.vkeyText));
    expect(opened.verified).toBe(true);
  });

  it('gives inclusion and consistency proofs that check against signed checkpoints', async () => {
    const cp1 = await journal.checkpoint();
    await journal.appendMany(Array.from({ length: 37 }, (_, i) => ({ kind: 'audit.note' as const, actor: 'user:ann', data: { i } })));
    const cp2 = await journal.checkpoint();
    const root2 = fromHex32(parseCheckpointRoot(cp2.note));
    for (const seq of [1, 2, Math.floor(cp2.size / 2), cp2.size]) {
      const p = await journal.inclusionProof(seq, cp2.size);
      expect(verifyInclusion(fromHex32(p.leaf), seq - 1, cp2.size, p.proof.map(fromHex32), root2)).toBe(true);
    }
    const c = await journal.consistencyProof(cp1.size, cp2.size);
    expect(verifyConsistency(cp1.size, cp2.size, fromHex32(cp1.root), root2, c.proof.map(fromHex32))).toBe(true);
    await expect(journal.inclusionProof(cp2.size + 1000)).rejects.toThrow(/seq must be between/);
  });

  it('exports a journal that verifies offline with its verifier key', async () => {
    const out = path.join(tmpDir(), 'export');
    const manifest = await exportJournal(journal, out, 'jest');
    const head = await journal.head();
    expect(manifest.size).toBe(head.size);
    const lines = fs.readFileSync(path.join(out, 'entries.jsonl'), 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(head.size);
    expect(Object.keys(JSON.parse(lines[0]!))).toEqual(['seq', 'ts', 'kind', 'actor', 'subject', 'data', 'policyVersion', 'leaf', 'chain']);
    const result = await verifyExport(out, { keyText: journal.vkeyText });
    expect(result).toMatchObject({ ok: true, size: head.size });
    await expect(exportJournal(journal, out, 'jest')).rejects.toThrow(/already exists/);
  });

  it('is refused UPDATE, DELETE and TRUNCATE by the database itself', async () => {
    await journal.append({ kind: 'audit.note', actor: 'user:ann', data: {} });
    await expect(db.sql.query(`UPDATE journal_entries SET actor = 'user:mallory' WHERE seq = 1`)).rejects.toThrow(/append-only/);
    await expect(db.sql.query('DELETE FROM journal_entries WHERE seq = 1')).rejects.toThrow(/append-only/);
    await expect(db.sql.query('TRUNCATE journal_entries')).rejects.toThrow(/append-only/);
    await expect(db.sql.query('DELETE FROM journal_checkpoints')).rejects.toThrow(/append-only/);
    await expect(db.sql.query('UPDATE journal_head SET size = 0 WHERE id = 1')).rejects.toThrow(/only moves forward/);
    await expect(db.sql.query('UPDATE journal_head SET size = size + 5 WHERE id = 1')).rejects.toThrow(/must name the last entry/);
    const [row] = await db.sql.query<{ actor: string }>('SELECT actor FROM journal_entries WHERE seq = 1');
    expect(row!.actor).not.toBe('user:mallory');
  });

  it('refuses, in the database, a row that would leave a gap in seq', async () => {
    const head = await journal.head();
    await expect(
      db.sql.query(
        `INSERT INTO journal_entries (seq, ts, kind, actor, subject, data, policy_version, leaf, chain) VALUES ($1, now(), 'audit.note', 'user:x', NULL, '{}', NULL, $2, $2)`,
        [head.size + 2, 'a'.repeat(64)],
      ),
    ).rejects.toThrow(/gap/);
    // A batch with a hole inside it is refused too, and leaves nothing behind.
    await expect(
      db.sql.query(
        `INSERT INTO journal_entries (seq, ts, kind, actor, subject, data, policy_version, leaf, chain)
         VALUES ($1, now(), 'audit.note', 'user:x', NULL, '{}', NULL, $3, $3), ($2, now(), 'audit.note', 'user:x', NULL, '{}', NULL, $3, $3)`,
        [head.size + 1, head.size + 3, 'a'.repeat(64)],
      ),
    ).rejects.toThrow(/gap/);
    expect((await journal.head()).size).toBe(head.size);
    expect(await db.sql.query('SELECT seq FROM journal_entries WHERE seq > $1', [head.size])).toEqual([]);
  });
});

function parseCheckpointRoot(note: string): string {
  const text = note.slice(0, note.indexOf('\n\n') + 1);
  return parseCheckpoint(text).root.toString('hex');
}
