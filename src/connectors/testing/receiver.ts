/**
 * A local HTTP server standing in for a business system in tests: records every request and
 * answers as the test scripts it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  method: string;
  /** Path and query exactly as they arrived on the wire. */
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface Reply {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Answer only after this long (to exercise timeouts). */
  delayMs?: number;
}

export interface Receiver {
  url: string;
  requests: Received[];
  close(): Promise<void>;
}

/** `reply` gets the request and its 1-based number; the default answers 200 with a small JSON. */
export async function startReceiver(reply: (req: Received, n: number) => Reply = () => ({})): Promise<Receiver> {
  const requests: Received[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received: Received = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(received);
      const r = reply(received, requests.length);
      const send = () => {
        const body =
          r.body === undefined
            ? JSON.stringify({ ok: true, n: requests.length })
            : typeof r.body === 'string'
              ? r.body
              : JSON.stringify(r.body);
        const type = typeof r.body === 'string' ? 'text/plain' : 'application/json';
        res.writeHead(r.status ?? 200, { 'Content-Type': type, ...r.headers });
        res.end(body);
      };
      if (r.delayMs) {
        const t = setTimeout(() => {
          timers.delete(t);
          if (!res.destroyed) send();
        }, r.delayMs);
        timers.add(t);
      } else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
