import { isIP } from 'node:net';
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
  DATABASE_STATEMENT_TIMEOUT_MS: intFrom(100, 3_600_000).default(15_000),
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
  REGENT_IN_DOUBT_LOOKUP_MS: intFrom(100, 86_400_000).default(30_000),
  REGENT_WEBHOOK_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  REGENT_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  OPENAI_BASE_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL of an OpenAI-compatible API, e.g. http://127.0.0.1:11434/v1' }).optional(),
  OPENAI_API_KEY: z.string().min(1).optional(),
  REGENT_MODEL: z
    .string()
    .regex(/^\S{1,200}$/, 'must be a model name without spaces, e.g. gpt-4.1-mini or llama3.1')
    .optional(),
  REGENT_AGENT_STEP_BUDGET: intFrom(1, 1000).default(20),
  REGENT_AGENT_RATE_PER_MINUTE: intFrom(1, 100_000).default(30),
  // The HTTP API's guards (src/http/security.ts).
  REGENT_CORS_ORIGINS: z
    .string()
    .transform((s) => s.split(',').map((o) => o.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^https?:\/\/[^/\s,]+$/, 'must be a comma-separated list of origins like https://console.example.com (scheme and host, no path)')))
    .optional(),
  REGENT_RATE_LIMIT_PER_MINUTE: intFrom(0, 1_000_000).default(600),
  REGENT_AUTH_FAILURES_PER_MINUTE: intFrom(1, 1_000_000).default(30),
  REGENT_MAX_BODY_BYTES: intFrom(1024, 64 * 1024 * 1024).default(256 * 1024),
  // The knowledge corpus (src/knowledge).
  REGENT_MAX_DOCUMENT_BYTES: intFrom(1, 256 * 1024 * 1024).default(10 * 1024 * 1024),
  REGENT_KNOWLEDGE_PURGE_INTERVAL_MS: intFrom(1000, 86_400_000).default(300_000),
  REGENT_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  // Behind a load balancer: which hops may say who the client is (X-Forwarded-For).
  REGENT_TRUST_PROXY: z
    .string()
    .transform((s) => s.split(',').map((t) => t.trim()).filter(Boolean))
    .pipe(
      z
        .array(z.string().refine(isProxyToken, 'must be loopback, linklocal, uniquelocal, an IP address or a CIDR range like 10.0.0.0/8'))
        .min(1, 'must name at least one proxy (loopback, an address or a CIDR range)'),
    )
    .optional(),
  // OIDC/JWT bearer tokens (src/http/oidc.ts): issuer, audience and JWKS URL together, or none.
  REGENT_OIDC_ISSUER: z.string().min(1).optional(),
  // The URL clients reach this server at (behind a proxy, or bound to all interfaces): /mcp
  // accepts its Host and Origin, and RFC 9728's metadata names it.
  REGENT_PUBLIC_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://regent.example.com' })
    .refine((u) => !/[?#]/.test(u), 'must have no query or fragment')
    .optional(),
  REGENT_MCP_HOLD_MS: intFrom(0, 55_000).default(20_000),
  REGENT_MCP_RETRY_WINDOW_MS: intFrom(1000, 86_400_000).default(600_000),
  REGENT_OIDC_AUDIENCE: z.string().min(1).optional(),
  REGENT_OIDC_JWKS_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  REGENT_OIDC_USER_CLAIM: z.string().regex(/^[A-Za-z0-9_.:/-]{1,100}$/, 'must be a claim name such as sub or preferred_username').default('sub'),
  REGENT_OIDC_ROLES_CLAIM: z.string().regex(/^[A-Za-z0-9_.:/-]{1,100}$/, 'must be a claim name such as regent_roles').optional(),
});

export type Env = z.infer<typeof EnvSchema>;

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  database: { kind: 'embedded'; dir: string } | { kind: 'postgres'; url: string; poolMax: number; statementTimeoutMs?: number };
  logLevel: (typeof LOG_LEVELS)[number];
  signingKey: string | undefined;
  journalOrigin: string;
  checkpointEvery: number;
  checkpointIntervalMs: number;
  policiesDir: string;
  shutdownTimeoutMs: number;
  /** How long an executor holds a claim before another process may take the work over. */
  executionLeaseMs: number;
  /** How often an in-doubt call is looked up again where its connector declares a status request. */
  inDoubtLookupMs: number;
  /** Where pending approvals are announced (signed with the secret), if anywhere. */
  webhook: { url: string; secret: string } | undefined;
  /** The language model twins plan free-text objectives with; undefined: playbooks only. */
  llm: { baseUrl: string | undefined; apiKey: string; model: string } | undefined;
  agent: {
    /** Action requests an objective may make when it names no stepBudget of its own. */
    stepBudget: number;
    /** Action requests per twin and minute, across all its objectives and all processes. */
    ratePerMinute: number;
  };
  /** Guards of the HTTP API. */
  http: HttpConfig;
  /** OIDC/JWT bearer tokens, when configured. */
  oidc: OidcConfig | undefined;
  /** Regent's MCP server at /mcp. */
  mcp: McpSettings;
  /** The knowledge corpus: the largest document accepted, and how often passages past retention are purged. */
  knowledge: { maxDocumentBytes: number; purgeIntervalMs: number };
}

export interface McpSettings {
  /** The URL clients use (REGENT_PUBLIC_URL); undefined: loopback names only. */
  publicUrl: string | undefined;
  /** How long a call that needs approval is held open before answering pending_approval. */
  holdMs: number;
  /** Identical calls without an idempotency key within this window are one request. */
  retryWindowMs: number;
}

export interface HttpConfig {
  /** Origins allowed to call the API from a browser (CORS); empty: CORS is off. */
  corsOrigins: string[];
  /** Requests per minute per API key (or OIDC user); 0 turns the limit off. */
  rateLimitPerMinute: number;
  /** Refused sign-ins per minute per client address before further attempts get 429. */
  authFailuresPerMinute: number;
  maxBodyBytes: number;
  /** When set, GET /metrics requires `Authorization: Bearer <token>`. */
  metricsToken: string | undefined;
  /**
   * The proxies (load balancers) trusted to name the client in X-Forwarded-For; empty: none,
   * the client is whoever connected.
   */
  trustProxy: string[];
}

export interface OidcConfig {
  issuer: string;
  audience: string;
  jwksUrl: string;
  /** The claim whose value is the Regent user id. */
  userClaim: string;
  /** When set, the claim holding the user's roles (replacing the roles Regent records). */
  rolesClaim: string | undefined;
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
    const shown = ['REGENT_SIGNING_KEY', 'DATABASE_URL', 'REGENT_WEBHOOK_SECRET', 'OPENAI_API_KEY', 'REGENT_METRICS_TOKEN'].includes(name) ? '' : ` (got "${present[name]}")`;
    throw new ConfigError(`${name}: ${issue.message}${shown}`);
  }
  const e = parsed.data;
  if (e.REGENT_WEBHOOK_URL && !e.REGENT_WEBHOOK_SECRET) throw new ConfigError('REGENT_WEBHOOK_SECRET: is required when REGENT_WEBHOOK_URL is set (receivers check the signature with it)');
  if (e.REGENT_MODEL && !e.OPENAI_API_KEY)
    throw new ConfigError(
      'OPENAI_API_KEY: is required when REGENT_MODEL is set (servers that need no key, such as Ollama, accept any value)',
    );
  const oidcSet = [e.REGENT_OIDC_ISSUER, e.REGENT_OIDC_AUDIENCE, e.REGENT_OIDC_JWKS_URL].filter((v) => v !== undefined).length;
  if (oidcSet > 0 && oidcSet < 3) {
    const missing = (['REGENT_OIDC_ISSUER', 'REGENT_OIDC_AUDIENCE', 'REGENT_OIDC_JWKS_URL'] as const).find((k) => e[k] === undefined)!;
    throw new ConfigError(`${missing}: is required with the other REGENT_OIDC_ settings (issuer, audience and JWKS URL go together)`);
  }
  if (e.REGENT_OIDC_JWKS_URL && new URL(e.REGENT_OIDC_JWKS_URL).protocol === 'http:' && !isLoopback(new URL(e.REGENT_OIDC_JWKS_URL).hostname)) {
    throw new ConfigError(`REGENT_OIDC_JWKS_URL: must be https unless it is on this machine (got "${e.REGENT_OIDC_JWKS_URL}")`);
  }
  const dataDir = path.resolve(e.REGENT_DATA_DIR);
  return {
    port: e.PORT,
    host: e.HOST,
    dataDir,
    database: e.DATABASE_URL
      ? { kind: 'postgres', url: e.DATABASE_URL, poolMax: e.DATABASE_POOL_MAX, statementTimeoutMs: e.DATABASE_STATEMENT_TIMEOUT_MS }
      : { kind: 'embedded', dir: path.join(dataDir, 'pg') },
    logLevel: e.LOG_LEVEL,
    signingKey: e.REGENT_SIGNING_KEY,
    journalOrigin: e.REGENT_JOURNAL_ORIGIN,
    checkpointEvery: e.REGENT_CHECKPOINT_EVERY,
    checkpointIntervalMs: e.REGENT_CHECKPOINT_INTERVAL_MS,
    policiesDir: path.resolve(e.REGENT_POLICIES_DIR),
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    executionLeaseMs: e.REGENT_EXECUTION_LEASE_MS,
    inDoubtLookupMs: e.REGENT_IN_DOUBT_LOOKUP_MS,
    webhook: e.REGENT_WEBHOOK_URL ? { url: e.REGENT_WEBHOOK_URL, secret: e.REGENT_WEBHOOK_SECRET! } : undefined,
    llm: e.REGENT_MODEL ? { baseUrl: e.OPENAI_BASE_URL, apiKey: e.OPENAI_API_KEY!, model: e.REGENT_MODEL } : undefined,
    agent: { stepBudget: e.REGENT_AGENT_STEP_BUDGET, ratePerMinute: e.REGENT_AGENT_RATE_PER_MINUTE },
    http: {
      corsOrigins: e.REGENT_CORS_ORIGINS ?? [],
      rateLimitPerMinute: e.REGENT_RATE_LIMIT_PER_MINUTE,
      authFailuresPerMinute: e.REGENT_AUTH_FAILURES_PER_MINUTE,
      maxBodyBytes: e.REGENT_MAX_BODY_BYTES,
      metricsToken: e.REGENT_METRICS_TOKEN,
      trustProxy: e.REGENT_TRUST_PROXY ?? [],
    },
    knowledge: { maxDocumentBytes: e.REGENT_MAX_DOCUMENT_BYTES, purgeIntervalMs: e.REGENT_KNOWLEDGE_PURGE_INTERVAL_MS },
    mcp: { publicUrl: e.REGENT_PUBLIC_URL?.replace(/\/+$/, ''), holdMs: e.REGENT_MCP_HOLD_MS, retryWindowMs: e.REGENT_MCP_RETRY_WINDOW_MS },
    oidc: e.REGENT_OIDC_ISSUER
      ? {
          issuer: e.REGENT_OIDC_ISSUER,
          audience: e.REGENT_OIDC_AUDIENCE!,
          jwksUrl: e.REGENT_OIDC_JWKS_URL!,
          userClaim: e.REGENT_OIDC_USER_CLAIM,
          rolesClaim: e.REGENT_OIDC_ROLES_CLAIM,
        }
      : undefined,
  };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The HTTP guards with every variable unset, for apps built without a Config (tests). */
export const DEFAULT_HTTP_CONFIG: HttpConfig = loadConfig({}).http;

/** A proxy Express's `trust proxy` understands: a preset name, an IP address, or a CIDR range. */
function isProxyToken(t: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(t)) return true;
  const [address, bits, ...rest] = t.split('/');
  if (rest.length > 0 || !address) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
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
