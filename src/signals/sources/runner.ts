/**
 * Runs the signal sources: one consumer per source, each message decoded, received as a signal
 * (deduplicated, journaled, turned into objectives by the rules) and only then acknowledged. A
 * message that cannot be a signal is journaled as `signal.refused`, acknowledged so it cannot
 * loop, and copied to the source's dead-letter destination. When storage fails the message is
 * kept (not acknowledged) and tried again; a crash leaves it with the broker, which redelivers it.
 */
import { hostname } from 'node:os';
import { RegentError } from '../../errors/errors';
import type { Logger } from '../../log/logger';
import type { SignalService } from '../service';
import { decodeMessage, maxBytesFromEnv, type BrokerMessage } from './decode';
import type { SignalSourceConfig } from './types';

/** What a transport hands over for one message. */
export interface Delivery {
  msg: BrokerMessage;
  /** The signal is journaled (or was already): acknowledge it. */
  ack(): Promise<void>;
  /** Refused and journaled: acknowledge it so it cannot loop, copying it to the dead-letter destination where there is one. */
  refuse(): Promise<void>;
}

export interface SourceStatus {
  id: string;
  type: string;
  connected: boolean;
  /** When it last connected or lost its connection (RFC 3339). */
  since: string;
  error: string | null;
  /** Signals this process journaled from the source. */
  received: number;
  /** Messages whose signal was already in (a redelivery, or a sender's repeat): acknowledged again, nothing new. */
  repeats: number;
  /** Messages refused (journaled as signal.refused). */
  refused: number;
}

/** A transport's side: it connects (and reconnects with backoff) and calls `handle` for each message. */
export interface Transport {
  start(): void;
  stop(): Promise<void>;
}

export interface TransportContext {
  source: SignalSourceConfig;
  log: Logger;
  /** A name for this process, stable across restarts (REGENT_INSTANCE, default the host name). */
  instance: string;
  handle(d: Delivery): Promise<void>;
  connected(yes: boolean, error?: unknown): void;
  running(): boolean;
}

export type TransportFactory = (ctx: TransportContext) => Transport;

/** Reconnection delays: 0.5 s doubling to 30 s, with jitter. */
export function backoff(attempt: number): number {
  const base = Math.min(30_000, 500 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref?.());

const describe = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 300);

export interface SignalSourcesDeps {
  sources: SignalSourceConfig[];
  signals: Pick<SignalService, 'receive' | 'refuseMessage'>;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** Transports by type (tests may replace one). */
  transports?: Partial<Record<'mqtt' | 'nats' | 'amqp', TransportFactory>>;
}

export function createSignalSources(deps: SignalSourcesDeps) {
  const env = deps.env ?? process.env;
  const maxBytes = maxBytesFromEnv(env);
  const instance = (env.REGENT_INSTANCE || hostname()).replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64);
  const status = new Map<string, SourceStatus>();
  const transports: Transport[] = [];
  let running = false;
  let inFlight = 0;
  let idle: (() => void) | undefined;

  const factories: Record<string, TransportFactory> = {
    mqtt: (ctx) => (require('./mqtt') as typeof import('./mqtt')).mqttTransport(ctx),
    nats: (ctx) => (require('./nats') as typeof import('./nats')).natsTransport(ctx),
    amqp: (ctx) => (require('./amqp') as typeof import('./amqp')).amqpTransport(ctx),
    ...deps.transports,
  };

  async function handle(source: SignalSourceConfig, d: Delivery): Promise<void> {
    const doc = source.doc;
    const actor = `source:${doc.id}`;
    const st = status.get(doc.id)!;
    const deadLetter = doc.deadLetter ?? null;
    // Stopping: left unacknowledged, for the broker to deliver again.
    if (!running) return new Promise<void>(() => undefined);
    inFlight++;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const decoded = decodeMessage(d.msg, doc, doc.maxBytes ?? maxBytes);
          if (!decoded.ok) {
            await deps.signals.refuseMessage(actor, doc.id, decoded, deadLetter);
            st.refused++;
            await d.refuse();
            return;
          }
          let created: boolean;
          try {
            created = (await deps.signals.receive(decoded.body, actor, { via: doc.id, deadLetter })).created;
          } catch (err) {
            // Refused by validation or the rules: already journaled as signal.refused.
            if (!(err instanceof RegentError)) throw err;
            st.refused++;
            await d.refuse();
            return;
          }
          await d.ack();
          if (created) st.received++;
          else {
            st.repeats++;
            deps.log.info('signal already received; acknowledged again', { source: doc.id, id: decoded.body.id });
          }
          return;
        } catch (err) {
          // Storage (or the broker, for the ack) failed: the message stays unacknowledged; try
          // again while running. Stopped or killed, the broker delivers it again.
          if (!running) return;
          const wait = backoff(attempt);
          deps.log.warn('signal message not taken yet; retrying', { source: doc.id, error: err, retryInMs: wait });
          await sleep(wait);
          if (!running) return;
        }
      }
    } finally {
      inFlight--;
      if (inFlight === 0) idle?.();
    }
  }

  return {
    /** Connects every source (in the background; each reconnects with backoff). */
    start(): void {
      if (running) return;
      running = true;
      for (const source of deps.sources) {
        const doc = source.doc;
        const st: SourceStatus = { id: doc.id, type: doc.type, connected: false, since: new Date().toISOString(), error: 'not connected yet', received: 0, repeats: 0, refused: 0 };
        status.set(doc.id, st);
        const ctx: TransportContext = {
          source,
          log: deps.log,
          instance,
          handle: (d) => handle(source, d),
          running: () => running,
          connected(yes, error) {
            const was = st.connected;
            st.connected = yes;
            st.error = yes ? null : describe(error ?? 'disconnected');
            if (was !== yes) {
              st.since = new Date().toISOString();
              if (yes) deps.log.info('signal source connected', { source: doc.id, type: doc.type });
              else deps.log.warn('signal source not connected', { source: doc.id, type: doc.type, error: st.error });
            }
          },
        };
        const t = factories[doc.type]!(ctx);
        transports.push(t);
        t.start();
      }
    },

    /** Stops taking messages, lets those in hand finish (up to graceMs), and disconnects. */
    async stop(graceMs = 5000): Promise<void> {
      if (!running) return;
      running = false;
      if (inFlight > 0) {
        await Promise.race([new Promise<void>((r) => (idle = r)), sleep(graceMs)]);
      }
      await Promise.all(transports.map((t) => t.stop().catch((err) => deps.log.warn('signal source did not stop cleanly', { error: err }))));
      transports.length = 0;
    },

    status: (): SourceStatus[] => [...status.values()].map((s) => ({ ...s })),
    ids: (): string[] => deps.sources.map((s) => s.doc.id),
  };
}

export type SignalSources = ReturnType<typeof createSignalSources>;
