import type { Database } from '../db/database';
import { describeEachDatabase } from '../../test/support/databases';
import { BusinessFailure, callStatus, runOnce, runOnceAtomically } from './calls';
import type { ExecutionResult } from './types';

let keyN = 0;
const newKey = () => `call-${process.pid}-${Date.now()}-${++keyN}`;

describeEachDatabase('exactly-once connector calls', (getDb) => {
  let db: Database;
  beforeAll(async () => {
    db = await getDb().open();
  });
  afterAll(async () => {
    await db?.close();
  });

  const call = (idempotencyKey: string, idempotent = false) => ({
    idempotencyKey,
    connector: 'crm',
    action: 'crm.note.create',
    idempotent,
  });

  test('the call is recorded as started before the business call and succeeded after it', async () => {
    const key = newKey();
    let during: unknown;
    const r = await runOnce(db.sql, call(key), async () => {
      during = await callStatus(db.sql, key);
      return { ok: true, result: { id: 7 } };
    });
    expect(during).toEqual({ status: 'started', error: null });
    expect(r).toEqual({ ok: true, result: { id: 7 } });
    expect(await callStatus(db.sql, key)).toEqual({ status: 'succeeded', error: null });
  });

  test('a succeeded call is answered from the record without calling the business system again', async () => {
    const key = newKey();
    let calls = 0;
    const fn = async (): Promise<ExecutionResult> => ({ ok: true, result: { n: ++calls } });
    await runOnce(db.sql, call(key), fn);
    expect(await runOnce(db.sql, call(key), fn)).toEqual({ ok: true, result: { n: 1 } });
    expect(calls).toBe(1);
  });

  test('a failure that may be retried is tried again; one that may not is answered from the record', async () => {
    const retryKey = newKey();
    const finalKey = newKey();
    let calls = 0;
    await runOnce(db.sql, call(retryKey), async () => (++calls, { ok: false, retryable: true, error: 'connection refused' }));
    expect(await runOnce(db.sql, call(retryKey), async () => (++calls, { ok: true, result: {} }))).toEqual({ ok: true, result: {} });
    await runOnce(db.sql, call(finalKey), async () => (++calls, { ok: false, retryable: false, error: 'HTTP 400' }));
    expect(await runOnce(db.sql, call(finalKey), async () => (++calls, { ok: true, result: {} }))).toEqual({
      ok: false,
      retryable: false,
      error: 'HTTP 400',
    });
    expect(calls).toBe(3);
  });

  test('a call left started by a crash is repeated with the same key only when idempotent', async () => {
    for (const idempotent of [true, false]) {
      const key = newKey();
      await db.sql.query(
        `INSERT INTO connector_calls (idempotency_key, connector, action, status) VALUES ($1, 'crm', 'crm.note.create', 'started')`,
        [key],
      );
      let calls = 0;
      const r = await runOnce(db.sql, call(key, idempotent), async () => (++calls, { ok: true, result: {} }));
      if (idempotent) {
        expect(r).toEqual({ ok: true, result: {} });
        expect(calls).toBe(1);
      } else {
        // Never a second effect whose first may have happened: a person checks.
        expect(calls).toBe(0);
        expect(r).toMatchObject({ ok: false, retryable: false, inDoubt: { checkIn: `crm for idempotency key ${key}`, lastHeard: null } });
        expect(!r.ok && r.error).toMatch(new RegExp(`^outcome unknown after a crash.*check crm for idempotency key ${key}`));
      }
    }
  });

  test('an in-doubt call says when it was sent and by which process, and stays in doubt for the same key', async () => {
    const key = newKey();
    let calls = 0;
    const first = await runOnce(db.sql, { ...call(key), executor: 'executor-a' }, async () => {
      calls++;
      return { ok: false, retryable: false, error: 'crm did not answer', inDoubt: { sentAt: null, sentBy: null, lastHeard: 'crm did not answer', checkIn: '' } };
    });
    expect(first).toMatchObject({
      ok: false,
      retryable: false,
      inDoubt: { sentBy: 'executor-a', lastHeard: 'crm did not answer', checkIn: `crm for idempotency key ${key}`, sentAt: expect.any(String) },
    });
    expect(await callStatus(db.sql, key)).toEqual({ status: 'unknown', error: 'crm did not answer' });
    // Asked again (a takeover, a retry): never sent a second time, and still in doubt.
    const again = await runOnce(db.sql, { ...call(key), executor: 'executor-b' }, async () => (++calls, { ok: true, result: {} }));
    expect(calls).toBe(1);
    expect(again).toMatchObject({ ok: false, inDoubt: { sentBy: 'executor-a', lastHeard: 'crm did not answer' } });
    expect(!again.ok && again.error).toMatch(/^outcome unknown: .* was cut off \(crm did not answer\)/);
    // An idempotent operation's unknown call is simply repeated with the same key.
    const idem = newKey();
    await runOnce(db.sql, call(idem, true), async () => ({ ok: false, retryable: false, error: 'cut off', inDoubt: { sentAt: null, sentBy: null, lastHeard: 'cut off', checkIn: '' } }));
    expect(await runOnce(db.sql, call(idem, true), async () => (++calls, { ok: true, result: { again: true } }))).toEqual({ ok: true, result: { again: true } });
    expect(calls).toBe(2);
  });

  test('a key used for one action is refused for another', async () => {
    const key = newKey();
    await runOnce(db.sql, call(key), async () => ({ ok: true, result: { secretish: 'answer for notes' } }));
    let called = false;
    const r = await runOnce(
      db.sql,
      { ...call(key), action: 'crm.discount.update' },
      async () => ((called = true), { ok: true, result: {} }),
    );
    expect(called).toBe(false);
    expect(r).toEqual({ ok: false, retryable: false, error: expect.stringContaining('was already used for crm crm.note.create') });
    expect(JSON.stringify(r)).not.toContain('answer for notes');
  });

  test('a business call that throws has an unknown outcome: in doubt when not idempotent, retried when it is', async () => {
    const key = newKey();
    const r = await runOnce(db.sql, call(key), async () => {
      throw new Error('socket hang up');
    });
    expect(r).toMatchObject({
      ok: false,
      retryable: false,
      error: 'crm.note.create failed unexpectedly: socket hang up',
      inDoubt: { lastHeard: 'crm.note.create failed unexpectedly: socket hang up', checkIn: `crm for idempotency key ${key}` },
    });
    expect(await callStatus(db.sql, key)).toEqual({ status: 'unknown', error: 'crm.note.create failed unexpectedly: socket hang up' });
    const idem = newKey();
    const i = await runOnce(db.sql, call(idem, true), async () => {
      throw new Error('socket hang up');
    });
    expect(i).toEqual({ ok: false, retryable: true, maybeSent: true, error: 'crm.note.create failed unexpectedly: socket hang up' });
    expect(await callStatus(db.sql, idem)).toEqual({ status: 'failed', error: 'crm.note.create failed unexpectedly: socket hang up' });
  });

  test('an atomic call commits its effect with its record, and a refusal leaves no effect', async () => {
    const key = newKey();
    const write = (tx: Parameters<Parameters<typeof runOnceAtomically>[2]>[0], k: string) =>
      tx.query(`INSERT INTO sandbox_records (system, kind, key, data) VALUES ('test', 'row', $1, '{}'::jsonb)`, [k]);
    expect(
      await runOnceAtomically(
        db.sql,
        { idempotencyKey: key, connector: 'sandbox', action: 'x' },
        async (tx) => (await write(tx, key), { done: true }),
      ),
    ).toEqual({
      ok: true,
      result: { done: true },
    });
    // The repeat would fail on the duplicate row if it ran: it must not run.
    expect(
      await runOnceAtomically(
        db.sql,
        { idempotencyKey: key, connector: 'sandbox', action: 'x' },
        async (tx) => (await write(tx, key), { done: 2 }),
      ),
    ).toEqual({
      ok: true,
      result: { done: true },
    });
    const refused = newKey();
    const r = await runOnceAtomically(db.sql, { idempotencyKey: refused, connector: 'sandbox', action: 'x' }, async (tx) => {
      await write(tx, refused);
      throw new BusinessFailure('no such account');
    });
    expect(r).toEqual({ ok: false, retryable: false, error: 'no such account' });
    expect(await db.sql.query(`SELECT key FROM sandbox_records WHERE system = 'test' AND key = $1`, [refused])).toEqual([]);
    expect(await callStatus(db.sql, refused)).toEqual({ status: 'failed', error: 'no such account' });
  });
});
