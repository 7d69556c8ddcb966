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
