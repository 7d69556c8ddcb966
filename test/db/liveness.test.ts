/**
 * Claim holders' liveness: a registered holder is alive while its session holds its advisory
 * lock, dead the moment that session is gone, and every claim query (executions, objective runs,
 * webhook sends) takes a dead holder's work over at once instead of waiting out its lease.
 */
import { startReceiver } from '../../src/connectors/testing/receiver';
import { openDatabase, type Database } from '../../src/db/database';
import { createLiveness } from '../../src/db/liveness';
import { createWebhookNotifier } from '../../src/notify/webhooks';
import { describeEachDatabase, describePostgres, createTestDatabase, type TestDatabase } from '../support/databases';
import { silentLog } from '../support/journal';
import { startTcpProxy } from '../support/tcp-proxy';

const dead = async (db: Database, holder: string | null) =>
  (await db.sql.query<{ dead: boolean }>('SELECT regent_holder_dead($1) AS dead', [holder]))[0]!.dead;

describeEachDatabase('claim holders', (getDb) => {
  let db: Database;
  beforeAll(async () => {
    db = await getDb().open();
  });
  afterAll(async () => db?.close());

  it('a registered holder is alive while its lock is held, and one that never registered is judged by its lease alone', async () => {
    const live = await createLiveness(db, silentLog);
    await live.register('executor-alive');
    expect(live.alive()).toBe(true);
    expect(await dead(db, 'executor-alive')).toBe(false);
    expect(await dead(db, 'executor-never-registered')).toBe(false);
    expect(await dead(db, null)).toBe(false);
    await live.close();
    // A clean stop leaves no holder behind (its claims were given back by then).
    expect(await db.sql.query('SELECT id FROM claim_holders WHERE id = $1', ['executor-alive'])).toEqual([]);
  });

  it('a holder left by a process that died (a row, no lock) is dead, and its webhook send is taken over at once', async () => {
    // What a SIGKILLed process leaves: its registration, and no session holding its lock.
    await db.sql.query(`INSERT INTO claim_holders (id, host, pid) VALUES ('webhooks-gone', 'h', 1)`);
    expect(await dead(db, 'webhooks-gone')).toBe(true);
    const receiver = await startReceiver();
    const n = createWebhookNotifier(db.sql, silentLog, { url: receiver.url, secret: 'webhook-secret-0123456789', holder: 'webhooks-here' });
    try {
      const [{ id }] = await db.sql.query<{ id: string }>(
        `INSERT INTO webhook_deliveries (id, url, event, payload, status, claimed_by, next_attempt_at)
         VALUES (gen_random_uuid(), $1, 'proposal.in_doubt', '{}'::jsonb, 'pending', 'webhooks-gone', now() + interval '60 seconds')
         RETURNING id`,
        [receiver.url],
      ) as [{ id: string }];
      await n.tick();
      expect(receiver.requests).toHaveLength(1);
      const [row] = await db.sql.query<{ status: string; claimed_by: string | null }>('SELECT status, claimed_by FROM webhook_deliveries WHERE id = $1', [id]);
      expect(row).toEqual({ status: 'delivered', claimed_by: null });
      // A send claimed by a live holder is left alone until its time comes.
      const live = await createLiveness(db, silentLog);
      await live.register('webhooks-busy');
      await db.sql.query(
        `INSERT INTO webhook_deliveries (id, url, event, payload, status, claimed_by, next_attempt_at)
         VALUES (gen_random_uuid(), $1, 'proposal.in_doubt', '{}'::jsonb, 'pending', 'webhooks-busy', now() + interval '60 seconds')`,
        [receiver.url],
      );
      await n.tick();
      expect(receiver.requests).toHaveLength(1);
      await live.close();
    } finally {
      await n.stop();
      await receiver.close();
    }
  });
});

describePostgres('claim holders across processes (PostgreSQL)', () => {
  let tdb: TestDatabase;
  let db: Database;
  beforeAll(async () => {
    tdb = await createTestDatabase('postgres');
    db = await tdb.open();
  });
  afterAll(async () => {
    await db?.close();
    await tdb?.drop();
  });

  it('a holder is dead the moment its connection drops, as when its process is killed', async () => {
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL((tdb.config as { url: string }).url).port || 5432) });
    const u = new URL((tdb.config as { url: string }).url);
    u.port = String(proxy.port);
    const other = await openDatabase({ kind: 'postgres', url: u.toString(), poolMax: 2 }, tdb.dataDir, { migrate: false });
    let live: Awaited<ReturnType<typeof createLiveness>> | undefined;
    try {
      live = await createLiveness(other, silentLog);
      await live.register('runner-elsewhere');
      expect(await dead(db, 'runner-elsewhere')).toBe(false);
      proxy.cut();
      // The server notices the dropped connection and releases the lock by itself.
      let gone = false;
      for (let i = 0; i < 100 && !gone; i++) {
        gone = await dead(db, 'runner-elsewhere');
        if (!gone) await new Promise((r) => setTimeout(r, 20));
      }
      expect(gone).toBe(true);
      // The process learns it from its own socket, which may be a moment after the server did.
      for (let i = 0; i < 100 && live.alive(); i++) await new Promise((r) => setTimeout(r, 20));
      expect(live.alive()).toBe(false);
      // When the connection is back, the holder takes its lock again and is alive.
      proxy.restore();
      for (let i = 0; i < 100 && !live.alive(); i++) await new Promise((r) => setTimeout(r, 50));
      expect(live.alive()).toBe(true);
      expect(await dead(db, 'runner-elsewhere')).toBe(false);
    } finally {
      await live?.close().catch(() => undefined);
      await other.close().catch(() => undefined);
      await proxy.close();
    }
  });
});
