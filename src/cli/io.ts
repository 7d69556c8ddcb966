import { ConfigError, loadConfig, type Config } from '../config/config';
import { createLogger, type Logger } from '../log/logger';

// Loaded on first use, so `regent --help` and light commands start fast.
import type * as appModule from '../app';
import { type Regent } from '../app';
const app = (): typeof appModule => require('../app');

/** A failure the CLI reports as one line and a non-zero exit. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Config and a logger for a command. Commands other than `serve` log warnings and worse unless LOG_LEVEL says otherwise. */
export function setup(command: 'serve' | 'tool'): { config: Config; log: Logger } {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`configuration: ${err.message}`, 2);
    throw err;
  }
  const level = command === 'serve' || process.env.LOG_LEVEL ? config.logLevel : 'warn';
  return { config, log: createLogger(level) };
}

/** Runs a command action: one line on stderr and exit 1 (or the error's code) on failure. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      const e = err as Error & { exitCode?: number };
      process.stderr.write(`regent: ${(e.message || String(err)).split('\n')[0]}\n`);
      process.exitCode = e instanceof CliError ? e.exitCode : 1;
    }
  };
}

export function positiveInt(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new CliError(`${name} must be a positive whole number (got "${v}")`, 2);
    return Number(v);
  };
}

/** Opens the configured database (and journal) for one command, and closes it afterwards. */
export async function withRegent<T>(command: string, fn: (r: Regent) => Promise<T>): Promise<T> {
  const { config, log } = setup('tool');
  const regent = await app().openRegent(config, log, { command });
  try {
    return await fn(regent);
  } finally {
    await regent.close();
  }
}
