import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';

export const CLI = path.resolve(__dirname, '../../dist/src/cli/main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The variables a child process does not inherit from jest's: Regent's own, which each call gives. */
const OWN = /^(REGENT_|DATABASE_URL|PORT|HOST|LOG_LEVEL)/;

/** Runs the built `regent` CLI (npm test builds first) in `cwd` with only the given Regent variables. */
export function regent(args: string[], env: Record<string, string> = {}, cwd?: string): CliResult {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !OWN.test(k)));
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...clean, ...env }, cwd, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function regentAsync(args: string[], env: Record<string, string> = {}, cwd?: string) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !OWN.test(k)));
  return spawn(process.execPath, [CLI, ...args], { env: { ...clean, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

let queue: Promise<unknown> = Promise.resolve();

/**
 * Runs a `regent` command in this process, as the binary would: the same program (src/cli/program.ts,
 * which dist/src/cli/main.js runs), only the given Regent variables in the environment, and what it
 * writes to stdout and stderr (commander's messages and help, the command's output, log lines) and
 * the exit code it leaves collected into a CliResult, as regent() gives. It saves a process start
 * and the loading of the app (about a second each on the 2-core machine); what only a real process
 * shows (a handle that keeps it from exiting, signals, .env in its working directory) is left to
 * the cases that keep regent(). Calls run one at a time, since the environment is the process's.
 */
export function regentInProcess(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const run = queue.then(() => runInProcess(args, env));
  queue = run.catch(() => undefined);
  return run;
}

type Write = typeof process.stdout.write;

/**
 * Node's one-time notice, in this process only, when PGlite first loads an ES module under jest's
 * --experimental-vm-modules; the binary never prints it.
 */
const VM_MODULES_WARNING = /^\(node:\d+\) ExperimentalWarning: VM Modules is an experimental feature and might change at any time\n(\(Use `node --trace-warnings \.\.\.` to show where the warning was created\)\n)?/m;

async function runInProcess(args: string[], env: Record<string, string>): Promise<CliResult> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { runCli } = require('../../src/cli/program') as typeof import('../../src/cli/program');
  const saved = { ...process.env };
  for (const k of Object.keys(process.env)) if (OWN.test(k)) delete process.env[k];
  Object.assign(process.env, env);
  let stdout = '';
  let stderr = '';
  const capture = (into: (s: string) => void): Write =>
    ((chunk: string | Uint8Array, enc?: BufferEncoding | ((err?: Error) => void), cb?: (err?: Error) => void) => {
      into(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString(typeof enc === 'string' ? enc : 'utf8'));
      const done = typeof enc === 'function' ? enc : cb;
      if (done) process.nextTick(done);
      return true;
    }) as Write;
  const out = capture((s) => (stdout += s));
  const err = capture((s) => (stderr += s));
  const writes = { stdout: process.stdout.write, stderr: process.stderr.write };
  // winston's Console transport writes to console._stderr where there is one (jest's console has its own).
  const cons = console as unknown as { _stdout?: unknown; _stderr?: unknown };
  const streams = { stdout: cons._stdout, stderr: cons._stderr };
  const exitCode = process.exitCode;
  process.exitCode = undefined;
  process.stdout.write = out;
  process.stderr.write = err;
  cons._stdout = { write: out };
  cons._stderr = { write: err };
  try {
    await runCli([process.execPath, CLI, ...args]);
    const code = process.exitCode;
    return { code: code === undefined || code === null ? 0 : Number(code), stdout, stderr: stderr.replace(VM_MODULES_WARNING, '') };
  } finally {
    process.stdout.write = writes.stdout;
    process.stderr.write = writes.stderr;
    cons._stdout = streams.stdout;
    cons._stderr = streams.stderr;
    process.exitCode = exitCode;
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
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
