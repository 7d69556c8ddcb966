import path from 'node:path';
import { z } from 'zod';

/** Log levels winston understands (npm levels). */
export const LOG_LEVELS = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] as const;

const intFrom = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

/**
 * Every environment variable Regent reads, in one place. `.env.example` documents each one;
 * a test keeps the two in step.
 */
export const EnvSchema = z.object({
  PORT: intFrom(0, 65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  REGENT_DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  DATABASE_POOL_MAX: intFrom(1, 1000).default(10),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  REGENT_SIGNING_KEY: z
    .string()
    .regex(/^PRIVATE\+KEY\+/, 'must be a signing key as printed by `regent journal keygen` (PRIVATE+KEY+…)')
    .optional(),
  REGENT_JOURNAL_ORIGIN: z
    .string()
    .regex(/^[^\s+]+$/, 'must be one word without spaces or "+" (a C2SP checkpoint origin)')
    .default('regent.local/journal'),
  REGENT_CHECKPOINT_EVERY: intFrom(1, 1_000_000).default(1000),
  REGENT_CHECKPOINT_INTERVAL_MS: intFrom(100, 3_600_000).default(10_000),
  REGENT_POLICIES_DIR: z.string().min(1).default('./policies'),
  SHUTDOWN_TIMEOUT_MS: intFrom(100, 600_000).default(10_000),
  REGENT_EXECUTION_LEASE_MS: intFrom(100, 3_600_000).default(30_000),
  REGENT_WEBHOOK_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  REGENT_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
});

export type Env = z.infer<typeof EnvSchema>;

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  database: { kind: 'embedded'; dir: string } | { kind: 'postgres'; url: string; poolMax: number };
  logLevel: (typeof LOG_LEVELS)[number];
  signingKey: string | undefined;
  journalOrigin: string;
  checkpointEvery: number;
  checkpointIntervalMs: number;
  policiesDir: string;
  shutdownTimeoutMs: number;
  /** How long an executor holds a claim before another process may take the work over. */
  executionLeaseMs: number;
  /** Where pending approvals are announced (signed with the secret), if anywhere. */
  webhook: { url: string; secret: string } | undefined;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Parses the environment once. The first problem becomes one line naming the variable and what
 * is wrong, so start-up can print it and stop.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings (as left by `FOO=` in a .env file) mean "not set", as people expect.
  const present = Object.fromEntries(
    Object.keys(EnvSchema.shape)
      .filter((k) => env[k] !== undefined && env[k] !== '')
      .map((k) => [k, env[k]]),
  );
  const parsed = EnvSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? 'environment');
    const shown = ['REGENT_SIGNING_KEY', 'DATABASE_URL', 'REGENT_WEBHOOK_SECRET'].includes(name) ? '' : ` (got "${present[name]}")`;
    throw new ConfigError(`${name}: ${issue.message}${shown}`);
  }
  const e = parsed.data;
  if (e.REGENT_WEBHOOK_URL && !e.REGENT_WEBHOOK_SECRET) throw new ConfigError('REGENT_WEBHOOK_SECRET: is required when REGENT_WEBHOOK_URL is set (receivers check the signature with it)');
  const dataDir = path.resolve(e.REGENT_DATA_DIR);
  return {
    port: e.PORT,
    host: e.HOST,
    dataDir,
    database: e.DATABASE_URL
      ? { kind: 'postgres', url: e.DATABASE_URL, poolMax: e.DATABASE_POOL_MAX }
      : { kind: 'embedded', dir: path.join(dataDir, 'pg') },
    logLevel: e.LOG_LEVEL,
    signingKey: e.REGENT_SIGNING_KEY,
    journalOrigin: e.REGENT_JOURNAL_ORIGIN,
    checkpointEvery: e.REGENT_CHECKPOINT_EVERY,
    checkpointIntervalMs: e.REGENT_CHECKPOINT_INTERVAL_MS,
    policiesDir: path.resolve(e.REGENT_POLICIES_DIR),
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    executionLeaseMs: e.REGENT_EXECUTION_LEASE_MS,
    webhook: e.REGENT_WEBHOOK_URL ? { url: e.REGENT_WEBHOOK_URL, secret: e.REGENT_WEBHOOK_SECRET! } : undefined,
  };
}

/** A database URL safe to print: the password is masked. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable url>';
  }
}
