import { createHmac } from 'node:crypto';
import { startReceiver } from '../../src/connectors/testing/receiver';
import type { Database } from '../../src/db/database';
import { createWebhookNotifier, signature } from '../../src/notify/webhooks';
import { describeEachDatabase } from '../support/databases';
import { silentLog } from '../support/journal';

const SECRET = 'webhook-secret-0123456789';

describeEachDatabase('signed webhook notifications', (getDb) => {
  let db: Database;
  beforeAll(async () => {
    db = await getDb().open();
  });
  afterAll(async () => db?.close());

  it('delivers a notification once, signed so the receiver can check it', async () => {
    const receiver = await startReceiver();
    const n = createWebhookNotifier(db.sql, silentLog, { url: `${receiver.url}/hook`, secret: SECRET });
    const id = await n.notify('proposal.pending_approval', { proposal: 'p-1', approvers: ['role:cfo'] });
    for (let i = 0; i < 100 && receiver.requests.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await n.stop();
    expect(receiver.requests).toHaveLength(1);
    const req = receiver.requests[0]!;
    expect(req.headers['regent-delivery']).toBe(id);
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(req.headers['regent-signature']))!;
    expect(v1).toBe(createHmac('sha256', SECRET).update(`${t}.${req.body}`).digest('hex'));
    expect(JSON.parse(req.body)).toEqual({ id, event: 'proposal.pending_approval', data: { proposal: 'p-1', approvers: ['role:cfo'] } });
    const [row] = await db.sql.query<{ status: string; attempts: number }>('SELECT status, attempts FROM webhook_deliveries WHERE id = $1', [id]);
    expect(row).toEqual({ status: 'delivered', attempts: 1 });
    await receiver.close();
  });

  it('counts a delivery sent twice at once (its claim lapsed) twice, and a late failure never undoes a delivery', async () => {
    const receiver = await startReceiver((_req, i) => (i === 1 ? { status: 503, delayMs: 300 } : { status: 204 }));
    const n = createWebhookNotifier(db.sql, silentLog, { url: receiver.url, secret: SECRET, baseDelayMs: 10 });
    try {
      const id = await n.notify('proposal.escalated', { proposal: 'p-3' }); // the first attempt starts, slowly
      for (let i = 0; i < 100 && receiver.requests.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      // The claim lapses (a process stalled past it): the next tick sends it again, and it is delivered.
      await db.sql.query(`UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = $1`, [id]);
      await n.tick();
      await n.stop(); // the slow first attempt ends with its 503
      const [row] = await db.sql.query<{ status: string; attempts: number }>('SELECT status, attempts FROM webhook_deliveries WHERE id = $1', [id]);
      expect(row).toEqual({ status: 'delivered', attempts: 2 });
      expect(receiver.requests).toHaveLength(2);
    } finally {
      await n.stop();
      await receiver.close();
    }
  });

  it('retries a failing receiver with backoff until it answers, then stops', async () => {
    const receiver = await startReceiver((_req, i) => ({ status: i < 3 ? 503 : 204 }));
    const n = createWebhookNotifier(db.sql, silentLog, { url: receiver.url, secret: SECRET, baseDelayMs: 10 });
    const id = await n.notify('proposal.escalated', { proposal: 'p-2' });
    for (let i = 0; i < 200; i++) {
      await n.tick();
      const [row] = await db.sql.query<{ status: string }>('SELECT status FROM webhook_deliveries WHERE id = $1', [id]);
      if (row!.status !== 'pending') break;
      await new Promise((r) => setTimeout(r, 25));
      await db.sql.query(`UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = $1 AND status = 'pending'`, [id]);
    }
    await n.stop();
    const [row] = await db.sql.query<{ status: string; attempts: number; last_error: string | null }>('SELECT status, attempts, last_error FROM webhook_deliveries WHERE id = $1', [id]);
    expect(row).toMatchObject({ status: 'delivered', attempts: 3, last_error: null });
    expect(receiver.requests.map((r) => r.headers['regent-delivery'])).toEqual([id, id, id]);
    await receiver.close();
  });

  it('gives up after the last attempt and records why', async () => {
    const n = createWebhookNotifier(db.sql, silentLog, { url: 'http://127.0.0.1:9/unreachable', secret: SECRET, maxAttempts: 2, baseDelayMs: 1 });
    const id = await n.notify('proposal.pending_approval', {});
    for (let i = 0; i < 50; i++) {
      await db.sql.query(`UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = $1 AND status = 'pending'`, [id]);
      await n.tick();
      const [row] = await db.sql.query<{ status: string }>('SELECT status FROM webhook_deliveries WHERE id = $1', [id]);
      if (row!.status === 'failed') break;
    }
    await n.stop();
    const [row] = await db.sql.query<{ status: string; attempts: number; last_error: string }>('SELECT status, attempts, last_error FROM webhook_deliveries WHERE id = $1', [id]);
    expect(row).toMatchObject({ status: 'failed', attempts: 2 });
    expect(row!.last_error).toBeTruthy();
  });

  it('signs as documented', () => {
    expect(signature('k'.repeat(16), 1700000000, '{}')).toBe(`t=1700000000,v1=${createHmac('sha256', 'k'.repeat(16)).update('1700000000.{}').digest('hex')}`);
  });
});
