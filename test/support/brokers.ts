import net from 'node:net';

/**
 * The machine's message brokers for the signal-source tests: Mosquitto (MQTT 5) on 1883,
 * nats-server with JetStream on 4222, RabbitMQ on 5672 (guest/guest). Probed once per run
 * (global-setup); a suite whose broker does not answer is skipped, saying so.
 */
export const BROKERS = {
  mqtt: { host: '127.0.0.1', port: 1883, url: 'mqtt://127.0.0.1:1883' },
  nats: { host: '127.0.0.1', port: 4222, url: 'nats://127.0.0.1:4222' },
  amqp: { host: '127.0.0.1', port: 5672, url: 'amqp://127.0.0.1:5672', username: 'guest', password: 'guest' },
} as const;
export type BrokerKind = keyof typeof BROKERS;

const tcpOpen = (port: number, host = '127.0.0.1') =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
    s.setTimeout(1000, () => (s.destroy(), resolve(false)));
  });

async function probe(kind: BrokerKind): Promise<boolean> {
  const b = BROKERS[kind];
  if (!(await tcpOpen(b.port, b.host))) return false;
  try {
    if (kind === 'nats') {
      const { connect } = await import('nats');
      const nc = await connect({ servers: b.url, timeout: 2000 });
      try {
        await (await nc.jetstreamManager()).getAccountInfo();
      } finally {
        await nc.close();
      }
    } else if (kind === 'amqp') {
      const amqp = await import('amqplib');
      const c = await amqp.connect(`amqp://guest:guest@${b.host}:${b.port}`);
      await c.close();
    }
    return true;
  } catch {
    return false;
  }
}

/** For global-setup: which brokers answer, as "mqtt,nats,amqp". */
export async function probeBrokers(): Promise<string> {
  const up: string[] = [];
  for (const k of Object.keys(BROKERS) as BrokerKind[]) if (await probe(k)) up.push(k);
  return up.join(',');
}

/** describe when the broker answered the run's probe, else describe.skip with a warning naming it. */
export function describeBroker(kind: BrokerKind): jest.Describe {
  const up = (process.env.REGENT_TEST_BROKERS ?? '').split(',').includes(kind);
  if (!up) console.warn(`${kind} signal-source tests SKIPPED: no ${kind} broker answers on ${BROKERS[kind].host}:${BROKERS[kind].port}`);
  return up ? describe : describe.skip;
}

/** A name unique to this run and process, for topics, streams and queues made and deleted by a test. */
export const uniqueName = (prefix: string) => `${prefix}${process.pid}${Math.random().toString(36).slice(2, 8)}`;

export async function waitFor<T>(what: string, f: () => Promise<T | undefined | false>, ms = 15_000, every = 50): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
