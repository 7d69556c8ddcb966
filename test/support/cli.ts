import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';

export const CLI = path.resolve(__dirname, '../../dist/src/cli/main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `regent` CLI (npm test builds first) in `cwd` with only the given Regent variables. */
export function regent(args: string[], env: Record<string, string> = {}, cwd?: string): CliResult {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(REGENT_|DATABASE_URL|PORT|HOST|LOG_LEVEL)/.test(k)));
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...clean, ...env }, cwd, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function regentAsync(args: string[], env: Record<string, string> = {}, cwd?: string) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(REGENT_|DATABASE_URL|PORT|HOST|LOG_LEVEL)/.test(k)));
  return spawn(process.execPath, [CLI, ...args], { env: { ...clean, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface ServeProcess {
  child: ReturnType<typeof regentAsync>;
  url: string;
  /** Everything it printed so far (the banner: URL, verifier key, first admin key). */
  out: () => string;
}

/** Starts `regent serve` with `env` and resolves once it listens. */
export async function startServe(env: Record<string, string>): Promise<ServeProcess> {
  const child = regentAsync(['serve'], env);
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.stderr!.on('data', (d) => (out += d));
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
  });
  // Wait for the rest of the banner (the admin key comes after the URL).
  await new Promise((r) => setTimeout(r, 200));
  return { child, url, out: () => out };
}
