import { createHmac, randomUUID } from 'node:crypto';
import type { Sql } from '../db/sql';
import type { Logger } from '../log/logger';

/**
 * Signed webhook notifications (pending approvals, escalations), kept in the database so they
 * survive restarts, delivered at least once with exponential backoff.
 *
 * Each request carries `Regent-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
 * with the shared secret, and `Regent-Delivery: <id>` so receivers can drop duplicates.
 */
export interface WebhookOptions {
  url: string;
  secret: string;
  maxAttempts?: number;
  baseDelayMs?: number;
  timeoutMs?: number;
  pollIntervalMs?: number;
  /** This process's registered claim holder: a send claimed by a dead holder is taken over at once. */
  holder?: string;
  /** False while this process's liveness lock is lost: claim nothing. */
  alive?: () => boolean;
}

export function signature(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

interface DeliveryRow {
  id: string;
  url: string;
  event: string;
  payload: unknown;
  attempts: number;
}

export function createWebhookNotifier(sql: Sql, log: Logger, o: WebhookOptions) {
  const maxAttempts = o.maxAttempts ?? 8;
  const baseDelayMs = o.baseDelayMs ?? 1000;
  const holder = o.holder ?? `webhooks-${process.pid}-${randomUUID().slice(0, 8)}`;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  async function deliver(d: DeliveryRow): Promise<void> {
    const body = JSON.stringify({ id: d.id, event: d.event, data: d.payload });
    const t = Math.floor(Date.now() / 1000);
    let error: string | null = null;
    try {
      const res = await fetch(d.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'regent-signature': signature(o.secret, t, body), 'regent-delivery': d.id, 'regent-event': d.event },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(o.timeoutMs ?? 5000),
      });
      if (res.status < 200 || res.status >= 300) error = `HTTP ${res.status}`;
      await res.body?.cancel().catch(() => undefined);
    } catch (err) {
      error = (err as Error).message;
    }
    // Counted in the database: a delivery sent twice at once (a claim that lapsed) counts twice,
    // and a late failure never turns a delivered notification back into a pending one.
    if (error === null) {
      await sql.query(
        `UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, delivered_at = now(), last_error = NULL, claimed_by = NULL WHERE id = $1`,
        [d.id],
      );
      return;
    }
    // Still pending: back off (or give up past the last attempt). Already settled by another
    // send: only counted.
    const [row] = await sql.query<{ attempts: number; status: string }>(
      `UPDATE webhook_deliveries
          SET attempts = attempts + 1,
              claimed_by = CASE WHEN claimed_by = $5 THEN NULL ELSE claimed_by END,
              last_error = CASE WHEN status = 'pending' THEN $2 ELSE last_error END,
              status = CASE WHEN status <> 'pending' THEN status WHEN attempts + 1 >= $3 THEN 'failed' ELSE 'pending' END,
              next_attempt_at = CASE WHEN status = 'pending' THEN now() + ($4::float8 * power(2, attempts) * interval '1 millisecond') ELSE next_attempt_at END
        WHERE id = $1
        RETURNING attempts, status`,
      [d.id, error.slice(0, 500), maxAttempts, baseDelayMs, holder],
    );
    if (row?.status === 'failed' && row.attempts >= maxAttempts) log.warn('webhook delivery failed for good', { delivery: d.id, event: d.event, attempts: row.attempts, error });
  }

  async function tick(): Promise<void> {
    if (o.alive && !o.alive()) return;
    // Claim by pushing next_attempt_at forward, so several processes never send one delivery at
    // once; a send whose holder died is due again at once.
    const due = await sql.query<DeliveryRow>(
      `UPDATE webhook_deliveries SET next_attempt_at = now() + interval '60 seconds', claimed_by = $1
        WHERE id IN (SELECT id FROM webhook_deliveries
                      WHERE status = 'pending' AND (next_attempt_at <= now() OR regent_holder_dead(claimed_by))
                      ORDER BY next_attempt_at LIMIT 20 FOR UPDATE SKIP LOCKED)
        RETURNING id, url, event, payload, attempts`,
      [holder],
    );
    await Promise.all(due.map(deliver));
  }

  const run = () => {
    if (running) return;
    running = tick()
      .catch((err: unknown) => {
        log.error('webhook delivery tick failed', { error: err });
      })
      .finally(() => {
        running = undefined;
      });
  };

  return {
    /** Queues a notification (durably) and tries to send it right away. */
    async notify(event: string, payload: Record<string, unknown>): Promise<string> {
      const id = randomUUID();
      await sql.query(`INSERT INTO webhook_deliveries (id, url, event, payload, status) VALUES ($1, $2, $3, $4::jsonb, 'pending')`, [id, o.url, event, JSON.stringify(payload)]);
      run();
      return id;
    },
    tick,
    start(): void {
      timer = setInterval(run, o.pollIntervalMs ?? 1000);
      timer.unref();
    },
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      while (running) await running;
    },
  };
}

export type WebhookNotifier = ReturnType<typeof createWebhookNotifier>;
