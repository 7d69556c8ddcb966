import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';
import { CONSOLE_CSP, consoleAssetsDir, consoleRouter, packageRoot } from './index';

describe('the console module', () => {
  let server: ReturnType<ReturnType<typeof express>['listen']>;
  let base: string;

  beforeAll(async () => {
    const app = express();
    app.use(consoleRouter());
    app.use((_req, res) => res.status(404).send('not here'));
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it('finds its assets from the package root, whether run from src/ or dist/', () => {
    const root = packageRoot();
    expect(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).name).toBe('regent');
    expect(packageRoot(path.join(root, 'dist', 'src', 'console'))).toBe(root);
    expect(fs.existsSync(path.join(consoleAssetsDir(), 'index.html'))).toBe(true);
  });

  it('serves the app at / with a strict same-origin CSP and no caching surprises', async () => {
    const r = await fetch(`${base}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/html/);
    expect(r.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('cache-control')).toBe('no-cache');
    expect(await r.text()).toContain('<script type="module" src="/console/js/app.js"></script>');
  });

  it('serves scripts and styles under /console with their types', async () => {
    const js = await fetch(`${base}/console/js/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    const css = await fetch(`${base}/console/app.css`);
    expect(css.headers.get('content-type')).toMatch(/text\/css/);
    // Every stylesheet the page links (app.css, then the rest in order) is served.
    const html = await (await fetch(`${base}/`)).text();
    const sheets = [...html.matchAll(/<link rel="stylesheet" href="([^"]+)"/g)].map((m) => m[1]!);
    expect(sheets[0]).toBe('/console/app.css');
    expect(sheets.length).toBeGreaterThan(1);
    for (const href of sheets) {
      const r = await fetch(`${base}${href}`);
      expect({ href, status: r.status, type: r.headers.get('content-type') }).toMatchObject({ href, status: 200, type: expect.stringMatching(/text\/css/) });
    }
  });

  it('serves nothing outside its folder and leaves other paths alone', async () => {
    for (const p of [
      '/console/../../package.json',
      '/console/%2e%2e/%2e%2e/package.json',
      '/console/',
      '/console/js/nope.js',
      '/v1/twins',
      '/app.js',
    ]) {
      const r = await fetch(`${base}${p}`);
      expect([p, r.status]).toEqual([p, 404]);
    }
  });

  it('uses no inline script or style and loads nothing from another origin', () => {
    const dir = consoleAssetsDir();
    const html = fs.readFileSync(path.join(dir, 'index.html'), 'utf8');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\sstyle=|<style/);
    for (const f of fs.readdirSync(path.join(dir, 'js'))) {
      const js = fs.readFileSync(path.join(dir, 'js', f), 'utf8');
      expect([f, /\beval\(|new Function\(|innerHTML|outerHTML|insertAdjacentHTML|document\.write/.test(js)]).toEqual([f, false]);
      expect([f, /(?:import|from)\s*['"]https?:/.test(js)]).toEqual([f, false]);
    }
  });
});
