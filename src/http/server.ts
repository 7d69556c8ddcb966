import type { Server } from 'node:http';
import type { Express } from 'express';
import type { Logger } from '../log/logger';

export interface RunningServer {
  server: Server;
  url: string;
  /** Stops accepting, lets in-flight requests finish (up to timeoutMs), then closes the rest. */
  close(timeoutMs: number): Promise<void>;
}

export function listen(app: Express, host: string, port: number, log: Logger): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host);
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${port} on ${host} is already in use (set PORT to another)`) : err);
    });
    server.once('listening', () => {
      const addr = server.address();
      const actualPort = typeof addr === 'object' && addr ? addr.port : port;
      const url = `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
      server.keepAliveTimeout = 5000;
      resolve({
        server,
        url,
        close(timeoutMs) {
          return new Promise<void>((done) => {
            const force = setTimeout(() => {
              log.warn('shutdown: closing connections still open after the grace period', { timeoutMs });
              server.closeAllConnections();
            }, timeoutMs);
            force.unref();
            server.close(() => {
              clearTimeout(force);
              done();
            });
            // Idle keep-alive sockets would otherwise hold close() open until they time out.
            server.closeIdleConnections();
          });
        },
      });
    });
  });
}
