import net from 'node:net';
import { Client } from 'pg';

export const SERVER_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

let probe: Promise<boolean> | undefined;
export function postgresAvailable(): Promise<boolean> {
  probe ??= (async () => {
    if (!process.env.TEST_DATABASE_URL) {
      const open = await new Promise<boolean>((resolve) => {
        const s = net.connect(5432, '127.0.0.1');
        s.once('connect', () => (s.destroy(), resolve(true)));
        s.once('error', () => resolve(false));
        s.setTimeout(1000, () => (s.destroy(), resolve(false)));
      });
      if (!open) return false;
    }
    try {
      const c = new Client({ connectionString: SERVER_URL, connectionTimeoutMillis: 3000 });
      await c.connect();
      await c.end();
      return true;
    } catch {
      return false;
    }
  })();
  return probe;
}

