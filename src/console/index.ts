/**
 * The web console: a static single-page app (plain ES modules and CSS, no build step) served at
 * `/`, talking to the /v1 API with the API key the person signs in with.
 *
 * The assets are not compiled, so they are read from the package root (the directory holding
 * package.json) whether Regent runs from `dist/` (npm start) or from `src/` (ts-jest).
 */
import fs from 'node:fs';
import path from 'node:path';
import express, { type Router } from 'express';
import { CSP_DIRECTIVES } from '../http/security';

/** The API's policy (same origin only, no inline script or style, no eval), as a header value. */
export const CONSOLE_CSP = Object.entries(CSP_DIRECTIVES)
  .map(([name, sources]) => `${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${sources.join(' ')}`)
  .join('; ');

/** The directory holding Regent's package.json, found upwards from this file. */
export function packageRoot(from: string = __dirname): string {
  let dir = from;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'regent') return dir;
      } catch {
        // an unreadable package.json is not ours; keep looking
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find Regent's package.json above ${from}`);
    dir = up;
  }
}

export function consoleAssetsDir(): string {
  return path.join(packageRoot(), 'src', 'console', 'public');
}

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': CONSOLE_CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/**
 * GET / (the app) and GET /console/* (its scripts and styles). Mount before the 404 handler; it
 * answers nothing under /v1. Assets are revalidated on every load (ETag), so an upgrade shows at once.
 */
export function consoleRouter(dir: string = consoleAssetsDir()): Router {
  const r = express.Router();
  const index = path.join(dir, 'index.html');
  if (!fs.existsSync(index)) throw new Error(`the web console is missing: ${index} does not exist`);

  const secure = (res: express.Response) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    res.setHeader('Cache-Control', 'no-cache');
  };

  r.get(['/', '/index.html'], (_req, res) => {
    secure(res);
    res.sendFile(index);
  });

  r.use('/console', express.static(dir, { index: false, dotfiles: 'ignore', fallthrough: true, redirect: false, setHeaders: secure }));
  return r;
}
