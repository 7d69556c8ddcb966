/**
 * The `mcp` connector: another MCP server as a least-privilege adapter.
 *
 * - Only the operations the document declares exist; every other upstream tool is invisible.
 * - A stdio server is run by Regent (one per connector per process), with the connector's own
 *   environment and a minimal PATH, nothing of Regent's; restarted with exponential backoff when
 *   it dies; stopped at shutdown. Its stderr goes to the log line by line, redacted of the
 *   connector's secrets and rate-limited. A Streamable HTTP server gets the credential from its
 *   `secretEnv`, on requests to its own origin only.
 * - Each operation's upstream tool (input schema and description) is pinned at first load
 *   (connector_pins, journaled `connector.pinned`); a tool that later differs suspends the
 *   operation (`connector.changed`) until an admin accepts (`connector.accepted`).
 * - Upstream descriptions and results are untrusted data: descriptions never reach a model (the
 *   operation's own description does), results are redacted of the connector's secrets.
 * - `execute` goes through the durable outbox (runOnce): at most once from Regent's side; a call
 *   is repeated only where the operation declares `idempotent: true`.
 */
import { Client, ProtocolError, type Tool } from '@modelcontextprotocol/client';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { z } from 'zod';
import type { Sql } from '../db/sql';
import { InputError } from '../errors/errors';
import type { Logger } from '../log/logger';
import { VERSION } from '../version';
import { checkInFor, runOnce } from './calls';
import { formatIssues } from './input';
import { StdioChildTransport } from './mcp-stdio';
import { compileUpstreamSchema, contentText, mapStrings, refusedConnection, refusing, serverEnvironment, short, sleep, withoutAnnotations } from './mcp-upstream';
import { checkPin, toolShape, type Pin, type PinJournal, type ToolShape } from './pins';
import { compileInputSchema, toJsonSchema, type McpConnectorDoc, type McpOperationDoc } from './schema';
import { MASK, scrubber } from './secrets';
import { operationAnnotations, type Connector, type ConnectorHealth, type ExecutionResult, type Operation, type Simulation } from './types';

export interface McpDeps {
  sql: Sql;
  /** Where pins, changes and acceptances are journaled; without one (tools, tests) nothing is. */
  journal?: PinJournal;
  log?: Logger;
  /** Base delay of the restart backoff (doubles per failure, up to maxBackoffMs). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** stderr lines passed to the log per second, per server (the rest are counted and dropped). */
  stderrLinesPerSecond?: number;
  /** How often suspended operations look again at their pins (an accept by another process). */
  recheckMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_BACKOFF_MS = 500;
const DEFAULT_MAX_BACKOFF_MS = 30_000;
/** A call waits this long for a restart that is due soon; later than that it fails at once. */
const MAX_WAIT_FOR_RESTART_MS = 2000;
/** A session that lived this long resets the backoff when it dies. */
const STABLE_AFTER_MS = 30_000;
const MAX_RESULT_CHARS = 256 * 1024;
const MAX_ERROR_CHARS = 1000;

/** What one declared operation is right now. */
type OpState =
  | { kind: 'ready'; input: z.ZodType<Record<string, unknown>>; jsonSchema: Record<string, unknown> }
  /** Not callable, and why: not connected yet, suspended by a changed tool, a schema Regent cannot check. */
  | { kind: 'unavailable'; reason: string; suspended: boolean; jsonSchema: Record<string, unknown> | undefined };

interface Session {
  client: Client;
  transport: StdioChildTransport | StreamableHTTPClientTransport;
  tools: Map<string, Tool>;
  startedAt: number;
  /** Set when the session is no longer usable (it died, timed out, broke the protocol). */
  broken: string | null;
}

/** What `GET /v1/connectors` and `/readyz` show of an MCP connector. */
export type McpHealth = ConnectorHealth;

export function createMcpConnector(doc: McpConnectorDoc, env: Readonly<Record<string, string | undefined>>, deps: McpDeps): Connector & {
  health(): McpHealth;
  /** Reconnects if needed and looks at the pins again (after an accept). */
  refresh(): Promise<void>;
} {
  const { sql, journal, log } = deps;
  const timeoutMs = doc.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const backoffMs = deps.backoffMs ?? DEFAULT_BACKOFF_MS;
  const maxBackoffMs = deps.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
  const recheckMs = deps.recheckMs ?? 5000;
  const stdio = doc.server.command !== undefined;
  const serverEnv = stdio ? serverEnvironment(doc, env) : undefined;
  const httpSecret = !stdio && doc.server.auth ? (env[doc.server.auth.secretEnv] ?? '') : undefined;
  const scrub = scrubber([...(serverEnv?.secrets ?? []), httpSecret]);
  const where = stdio ? `${doc.server.command} ${(doc.server.args ?? []).join(' ')}`.trim() : new URL(doc.server.url!).origin;

  const declared = new Map<string, McpOperationDoc>(doc.operations.map((op) => [op.action, op]));
  const states = new Map<string, OpState>();
  for (const op of doc.operations)
    states.set(op.action, { kind: 'unavailable', reason: `${op.action} is not available yet: MCP server ${doc.id} has not answered yet`, suspended: false, jsonSchema: op.input && toJsonSchema(op.input) });

  let session: Session | null = null;
  let connecting: Promise<Session> | null = null;
  let closed = false;
  let failures = 0;
  let down: { reason: string; since: string; nextAt: number } | null = null;
  let retryTimer: NodeJS.Timeout | undefined;
  let recheckTimer: NodeJS.Timeout | undefined;

  // ---- stderr: line by line, redacted, rate-limited (a flood costs a counter, not the log)
  const perSecond = deps.stderrLinesPerSecond ?? 20;
  let windowStart = 0;
  let inWindow = 0;
  let dropped = 0;
  function stderrLine(line: string) {
    const now = Date.now();
    if (now - windowStart >= 1000) {
      if (dropped) log?.warn('mcp server stderr: lines dropped (rate limit)', { connector: doc.id, dropped });
      windowStart = now;
      inWindow = 0;
      dropped = 0;
    }
    if (inWindow >= perSecond) {
      dropped++;
      return;
    }
    inWindow++;
    log?.info('mcp server stderr', { connector: doc.id, line: scrub(line) });
  }

  // ---- operations: what twins, models and MCP clients see
  const operations = new Map<string, Operation>();
  for (const op of doc.operations) {
    const idempotent = op.idempotent ?? false;
    const attributeMap = Object.entries(op.attributes);
    const state = () => states.get(op.action)!;
    operations.set(op.action, {
      action: op.action,
      idempotent,
      // Never the upstream's description: that is untrusted text, shown to admins, not to models.
      description: op.description ?? `Calls the tool ${op.tool} of the MCP server behind connector ${doc.id}.`,
      annotations: operationAnnotations(op.annotations, idempotent),
      get input() {
        const s = state();
        return s.kind === 'ready' ? s.input : refusing(s.reason);
      },
      get inputJsonSchema() {
        const s = state();
        return s.kind === 'ready' ? s.jsonSchema : (s.jsonSchema ?? { type: 'object' });
      },
      unavailable: () => {
        const s = state();
        return s.kind === 'ready' ? undefined : s.reason;
      },
      attributes: (input) =>
        Object.fromEntries(attributeMap.filter(([, field]) => input[field] !== undefined).map(([attr, field]) => [attr, input[field]])),
    });
  }

  /** Each declared operation against the tools the server lists now, and its pin. */
  async function reconcile(tools: Map<string, Tool>): Promise<void> {
    let anySuspended = false;
    for (const op of doc.operations) {
      const tool = tools.get(op.tool);
      const shape: ToolShape | null = tool ? toolShape(tool) : null;
      let pin: Pin | null;
      try {
        pin = await checkPin(sql, journal, { connector: doc.id, action: op.action, tool: op.tool }, shape);
      } catch (err) {
        states.set(op.action, { kind: 'unavailable', reason: `${op.action} is unavailable: its pin cannot be read (${(err as Error).message})`, suspended: false, jsonSchema: undefined });
        continue;
      }
      const declaredSchema = op.input && toJsonSchema(op.input);
      if (!pin || !shape) {
        const reason = pin
          ? `${op.action} is suspended: MCP server ${doc.id} no longer offers the tool ${op.tool} it was pinned to`
          : `${op.action} is unavailable: MCP server ${doc.id} offers no tool ${op.tool}`;
        if (pin) anySuspended = true;
        if (states.get(op.action)?.kind === 'ready' || pin) log?.warn('mcp connector operation unavailable', { connector: doc.id, action: op.action, reason });
        states.set(op.action, { kind: 'unavailable', reason, suspended: pin !== null, jsonSchema: declaredSchema });
        continue;
      }
      if (pin.changed) {
        anySuspended = true;
        const seen = 'missing' in pin.changed ? null : pin.changed;
        const what = [
          seen && seen.tool !== undefined && seen.tool !== pin.tool ? `the connector file now names tool ${seen.tool} instead of ${pin.tool}` : null,
          seen && seen.schemaSha256 !== pin.schemaSha256 ? `input schema sha256 ${short(pin.schemaSha256)}… → ${short(seen.schemaSha256)}…` : null,
          seen && seen.descriptionSha256 !== pin.descriptionSha256 ? `description sha256 ${short(pin.descriptionSha256)}… → ${short(seen.descriptionSha256)}…` : null,
        ]
          .filter(Boolean)
          .join(', ');
        const reason = `${op.action} is suspended: the upstream tool ${op.tool} changed since it was pinned (${what || 'it vanished'}); an admin reviews and accepts it with POST /v1/connectors/${doc.id}/accept or regent connectors accept ${doc.id}`;
        if (states.get(op.action)?.kind !== 'unavailable' || !(states.get(op.action) as { suspended?: boolean }).suspended)
          log?.warn('mcp connector operation suspended', { connector: doc.id, action: op.action, tool: op.tool, reason });
        states.set(op.action, { kind: 'unavailable', reason, suspended: true, jsonSchema: declaredSchema ?? (withoutAnnotations(pin.inputSchema) as Record<string, unknown>) });
        continue;
      }
      if (op.input) {
        states.set(op.action, { kind: 'ready', input: compileInputSchema(op.input) as z.ZodType<Record<string, unknown>>, jsonSchema: declaredSchema! });
        continue;
      }
      const compiled = compileUpstreamSchema(pin.inputSchema);
      if (!compiled.ok) {
        const reason = `${op.action} is unavailable: the tool ${op.tool} of MCP server ${doc.id}: ${compiled.reason}; declare input: in the connector file`;
        states.set(op.action, { kind: 'unavailable', reason, suspended: false, jsonSchema: undefined });
        log?.warn('mcp connector operation refused', { connector: doc.id, action: op.action, reason });
        continue;
      }
      const props = (compiled.jsonSchema.properties ?? {}) as Record<string, unknown>;
      const missing = Object.entries(op.attributes).filter(([, field]) => !(field in props));
      if (missing.length) {
        const reason = `${op.action} is unavailable: attribute ${missing.map(([a, f]) => `${a} names "${f}"`).join(', ')}, which the tool ${op.tool} has no property for`;
        states.set(op.action, { kind: 'unavailable', reason, suspended: false, jsonSchema: compiled.jsonSchema });
        log?.warn('mcp connector operation refused', { connector: doc.id, action: op.action, reason });
        continue;
      }
      states.set(op.action, { kind: 'ready', input: compiled.input, jsonSchema: compiled.jsonSchema });
    }
    // While something waits for an admin, look at the pins now and then: another process (or the
    // CLI) may accept, and this one should follow without a restart.
    if (anySuspended && !recheckTimer && !closed) {
      recheckTimer = setInterval(() => {
        if (!session || session.broken) return;
        void reconcile(session.tools).catch(() => undefined);
      }, recheckMs);
      recheckTimer.unref();
    } else if (!anySuspended && recheckTimer) {
      clearInterval(recheckTimer);
      recheckTimer = undefined;
    }
  }

  async function listTools(client: Client): Promise<Map<string, Tool>> {
    const tools = new Map<string, Tool>();
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const r = await client.listTools(cursor ? { cursor } : undefined, { timeout: timeoutMs, cache: 'bypass' } as never);
      for (const t of r.tools) tools.set(t.name, t);
      cursor = r.nextCursor;
      if (!cursor) break;
    }
    return tools;
  }

  /** A fetch that talks to the server's origin only, adds the credential there, and follows no redirect. */
  function guardedFetch(origin: string): typeof fetch {
    return (async (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      if (url.origin !== origin) throw new Error(`connector ${doc.id} talks to ${origin} only, not ${url.origin}`);
      const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
      if (doc.server.auth && httpSecret !== undefined)
        headers.set(doc.server.auth.header, doc.server.auth.scheme ? `${doc.server.auth.scheme} ${httpSecret}` : httpSecret);
      return fetch(input, { ...init, headers, redirect: 'manual' });
    }) as typeof fetch;
  }

  function lost(s: Session, why: string) {
    if (s.broken) return;
    s.broken = why;
    if (session === s) session = null;
    if (closed) return;
    if (Date.now() - s.startedAt >= STABLE_AFTER_MS) failures = 0;
    failures++;
    const delay = Math.min(maxBackoffMs, backoffMs * 2 ** (failures - 1));
    down = { reason: why, since: new Date().toISOString(), nextAt: Date.now() + delay };
    log?.warn('mcp server lost; restarting with backoff', { connector: doc.id, reason: scrub(why), restartInMs: delay });
    scheduleRetry(delay);
  }

  function scheduleRetry(delay: number) {
    if (closed || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void ensure().catch(() => undefined);
    }, delay);
    retryTimer.unref();
  }

  async function connect(): Promise<Session> {
    const client = new Client({ name: `regent-connector-${doc.id}`, version: VERSION }, {
      listChanged: {
        tools: {
          onChanged: (err: Error | null, tools: Tool[] | null) => {
            if (err || !tools || !current || current.broken) return;
            current.tools = new Map(tools.map((t) => [t.name, t]));
            void reconcile(current.tools).catch((e) => log?.warn('mcp tools re-check failed', { connector: doc.id, error: (e as Error).message }));
          },
        },
      },
    } as never);
    let current: Session | undefined;
    const transport = stdio
      ? new StdioChildTransport(
          { command: doc.server.command!, args: doc.server.args ?? [], env: serverEnv!.env, cwd: doc.server.cwd },
          {
            stderr: stderrLine,
            exited: (how) => {
              if (current) lost(current, `the server ${how}`);
            },
          },
        )
      : new StreamableHTTPClientTransport(new URL(doc.server.url!), { fetch: guardedFetch(new URL(doc.server.url!).origin) } as never);
    try {
      await client.connect(transport, { timeout: timeoutMs } as never);
      const tools = await listTools(client);
      current = { client, transport, tools, startedAt: Date.now(), broken: null };
      if (stdio && (transport as StdioChildTransport).protocolError) throw new Error((transport as StdioChildTransport).protocolError!);
      await reconcile(tools);
    } catch (err) {
      const proto = stdio ? (transport as StdioChildTransport).protocolError : null;
      current = undefined;
      await client.close().catch(() => undefined);
      await transport.close().catch(() => undefined);
      throw new Error(scrub(proto ?? (err as Error).message));
    }
    if (!stdio) {
      const prior = transport.onclose;
      transport.onclose = () => {
        prior?.();
        if (current) lost(current, 'the connection closed');
      };
    }
    return current;
  }

  /** A live session: the current one, or a (re)start, waiting for a restart due soon. */
  function ensure(): Promise<Session> {
    if (closed) return Promise.reject(new Error(`connector ${doc.id} is closed`));
    if (session && !session.broken) return Promise.resolve(session);
    if (!connecting) {
      const wait = down ? down.nextAt - Date.now() : 0;
      if (wait > MAX_WAIT_FOR_RESTART_MS)
        return Promise.reject(new Error(`MCP server ${doc.id} is down (${down!.reason}); the next restart is in ${Math.ceil(wait / 1000)} s`));
      connecting = (async () => {
        if (wait > 0) await sleep(wait);
        if (retryTimer) {
          clearTimeout(retryTimer);
          retryTimer = undefined;
        }
        try {
          const s = await connect();
          if (closed) {
            await s.client.close().catch(() => undefined);
            throw new Error(`connector ${doc.id} is closed`);
          }
          session = s;
          down = null;
          log?.info('mcp server connected', { connector: doc.id, server: stdio ? 'stdio' : 'streamable-http', tools: s.tools.size });
          return s;
        } catch (err) {
          failures++;
          const delay = Math.min(maxBackoffMs, backoffMs * 2 ** (failures - 1));
          const reason = (err as Error).message;
          down = { reason, since: down?.since ?? new Date().toISOString(), nextAt: Date.now() + delay };
          for (const [action, s] of states)
            if (s.kind === 'unavailable' && !s.suspended && s.reason.includes('has not answered yet'))
              states.set(action, { ...s, reason: `${action} is not available: MCP server ${doc.id} cannot be started or reached (${reason})` });
          log?.warn('mcp server unavailable', { connector: doc.id, error: reason, restartInMs: delay });
          scheduleRetry(delay);
          throw new Error(`MCP server ${doc.id} cannot be started or reached: ${reason}`);
        }
      })().finally(() => {
        connecting = null;
      });
    }
    return connecting;
  }

  /** Stops a session that can no longer be trusted (a timeout, a protocol error): the next call starts a fresh one. */
  async function discard(s: Session, why: string) {
    lost(s, why);
    // The backoff protects against a crash loop, not against one hung call: restart at once.
    if (down) down.nextAt = Date.now();
    await s.client.close().catch(() => undefined);
    await s.transport.close().catch(() => undefined);
  }

  type Attempt =
    | { kind: 'ok'; result: Record<string, unknown> }
    | { kind: 'final'; error: string }
    /** Nothing was sent (the server could not be started or reached). */
    | { kind: 'unsent'; error: string }
    /** Sent, and no answer that says what happened came (a timeout, the server died, the connection dropped, a garbled answer). */
    | { kind: 'cut'; error: string };

  async function callOnce(tool: string, args: Record<string, unknown>): Promise<Attempt> {
    let s: Session;
    try {
      s = await ensure();
    } catch (err) {
      return { kind: 'unsent', error: scrub((err as Error).message) };
    }
    let r: Awaited<ReturnType<Client['callTool']>>;
    try {
      r = await s.client.callTool({ name: tool, arguments: args }, { timeout: timeoutMs } as never);
    } catch (err) {
      const e = err as Error & { code?: unknown };
      const proto = s.transport instanceof StdioChildTransport ? s.transport.protocolError : null;
      // A garbled answer to a request the server read: it may have acted, so this counts as
      // sent with no answer (in doubt for an operation that is not idempotent), never as failed.
      if (proto) {
        await discard(s, proto);
        return { kind: 'cut', error: `protocol error from MCP server ${doc.id}: ${scrub(proto)}` };
      }
      if (err instanceof ProtocolError) return { kind: 'final', error: `MCP server ${doc.id} refused ${tool}: ${scrub(e.message).slice(0, MAX_ERROR_CHARS)}` };
      const code = String(e.code ?? '');
      if (code === 'REQUEST_TIMEOUT' || /timed? ?out/i.test(e.message)) {
        await discard(s, `a call to ${tool} timed out after ${timeoutMs} ms`);
        return { kind: 'cut', error: `MCP server ${doc.id} did not answer ${tool} within ${timeoutMs} ms` };
      }
      if (code === 'CONNECTION_CLOSED' || code === 'SEND_FAILED' || code === 'NOT_CONNECTED' || s.broken) {
        await discard(s, s.broken ?? 'the connection closed');
        return { kind: 'cut', error: `MCP server ${doc.id} went away during ${tool} (${scrub(s.broken ?? e.message)})` };
      }
      if (code === 'INVALID_RESULT' || code === 'UNSUPPORTED_RESULT_TYPE' || /invalid|parse|schema/i.test(e.message))
        return { kind: 'cut', error: `MCP server ${doc.id} answered ${tool} with something that is not a tool result: ${scrub(e.message).slice(0, MAX_ERROR_CHARS)}` };
      await discard(s, e.message);
      // The request never left (the server refused the connection): nothing can have happened.
      if (refusedConnection(err)) return { kind: 'unsent', error: `MCP server ${doc.id} refused the connection for ${tool}: ${scrub(e.message).slice(0, MAX_ERROR_CHARS)}` };
      return { kind: 'cut', error: `MCP server ${doc.id} failed during ${tool}: ${scrub(e.message).slice(0, MAX_ERROR_CHARS)}` };
    }
    failures = 0;
    if (!r || typeof r !== 'object' || (!Array.isArray((r as { content?: unknown }).content) && (r as { structuredContent?: unknown }).structuredContent === undefined))
      return { kind: 'cut', error: `MCP server ${doc.id} answered ${tool} with something that is not a tool result` };
    if ((r as { isError?: boolean }).isError) {
      const text = scrub(contentText((r as { content?: unknown }).content)) || 'no message';
      return { kind: 'final', error: `${tool} on MCP server ${doc.id} failed: ${text.slice(0, MAX_ERROR_CHARS)}` };
    }
    return { kind: 'ok', result: bounded(tool, r as Record<string, unknown>) };
  }

  /** The result as recorded and shown: the connector's secrets redacted, the size bounded. */
  function bounded(tool: string, r: Record<string, unknown>): Record<string, unknown> {
    const result: Record<string, unknown> = { tool, content: mapStrings(r.content ?? [], scrub) };
    if (r.structuredContent !== undefined) result.structuredContent = mapStrings(r.structuredContent, scrub);
    const size = JSON.stringify(result).length;
    if (size <= MAX_RESULT_CHARS) return result;
    const text = contentText(result.content);
    return { tool, content: [{ type: 'text', text: `${text.slice(0, MAX_RESULT_CHARS / 2)}…` }], truncated: { chars: size } };
  }

  async function send(op: McpOperationDoc, args: Record<string, unknown>, key: string): Promise<ExecutionResult> {
    const idempotent = op.idempotent ?? false;
    const attempts = idempotent ? 2 : 1;
    for (let n = 1; ; n++) {
      const a = await callOnce(op.tool, args);
      if (a.kind === 'ok') return { ok: true, result: a.result };
      if (a.kind === 'final') return { ok: false, retryable: false, error: a.error };
      if (a.kind === 'unsent') return { ok: false, retryable: true, error: a.error };
      if (n < attempts) continue;
      if (idempotent) return { ok: false, retryable: true, maybeSent: true, error: `${a.error} (after ${attempts} attempts)` };
      const checkIn = checkInFor({ connector: doc.id, idempotencyKey: key, checkIn: `MCP server ${doc.id} (tool ${op.tool})` });
      return {
        ok: false,
        retryable: false,
        inDoubt: { sentAt: null, sentBy: null, lastHeard: a.error, checkIn },
        error: `${a.error}; outcome unknown and ${op.action} is not idempotent, so it is not repeated: check ${checkIn}`,
      };
    }
  }

  function prepare(action: string, input: Record<string, unknown>) {
    const op = declared.get(action);
    const operation = operations.get(action);
    if (!op || !operation) return { ok: false as const, error: `${doc.id} has no operation ${action}` };
    const why = operation.unavailable?.();
    if (why) return { ok: false as const, error: why };
    const parsed = operation.input.safeParse(input);
    if (!parsed.success) return { ok: false as const, error: `invalid input for ${action}: ${formatIssues(parsed.error.issues)}` };
    return { ok: true as const, op, args: parsed.data };
  }

  const shownServer = stdio
    ? {
        transport: 'stdio',
        command: doc.server.command,
        args: doc.server.args ?? [],
        // Names only: a literal may be harmless, a secret never leaves the connector.
        env: Object.fromEntries(Object.entries(doc.server.env ?? {}).map(([k, v]) => [k, typeof v === 'string' ? v : MASK])),
      }
    : { transport: 'streamable-http', url: doc.server.url, ...(doc.server.auth ? { headers: { [doc.server.auth.header]: doc.server.auth.scheme ? `${doc.server.auth.scheme} ${MASK}` : MASK } } : {}) };

  async function previewOf(op: McpOperationDoc, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    const tool = op.preview!;
    let s: Session;
    try {
      s = await ensure();
    } catch (err) {
      return { tool, error: scrub((err as Error).message) };
    }
    const listed = s.tools.get(tool);
    if (!listed) return { tool, error: `MCP server ${doc.id} offers no tool ${tool}` };
    if (listed.annotations?.readOnlyHint !== true) return { tool, error: `${tool} is not marked read-only (readOnlyHint) by MCP server ${doc.id}, so it is not called for a preview` };
    const a = await callOnce(tool, args);
    if (a.kind === 'ok') return { tool, untrusted: true, result: a.result };
    return { tool, error: a.error };
  }

  const connector = {
    id: doc.id,
    type: 'mcp' as const,
    operations,

    async start(): Promise<void> {
      // At start, bounded: a server that is slow or broken leaves its operations unavailable
      // (with the reason, in the log and /readyz) and is retried with backoff; Regent stays up.
      await Promise.race([ensure().then(() => undefined, () => undefined), sleep(Math.min(timeoutMs, 15_000))]);
    },

    async simulate(action: string, input: Record<string, unknown>): Promise<Simulation> {
      const p = prepare(action, input);
      if (!p.ok) throw new InputError(p.error);
      const details: Record<string, unknown> = {
        connector: doc.id,
        action,
        server: shownServer,
        call: { method: 'tools/call', params: { name: p.op.tool, arguments: p.args } },
      };
      if (p.op.preview) details.preview = await previewOf(p.op, p.args);
      return { summary: `MCP tools/call ${p.op.tool} on ${doc.id} (${stdio ? 'stdio' : where})`, details };
    },

    async execute(action: string, input: Record<string, unknown>, idempotencyKey: string, ctx?: { executor?: string }): Promise<ExecutionResult> {
      const p = prepare(action, input);
      if (!p.ok) return { ok: false, retryable: false, error: p.error };
      return runOnce(
        sql,
        {
          idempotencyKey,
          connector: doc.id,
          action,
          idempotent: p.op.idempotent ?? false,
          checkIn: `MCP server ${doc.id} (tool ${p.op.tool})`,
          ...(ctx?.executor ? { executor: ctx.executor } : {}),
        },
        () => send(p.op, p.args, idempotencyKey),
      );
    },

    health(): McpHealth {
      const ops = [...states]
        .filter(([, s]) => s.kind === 'unavailable')
        .map(([action, s]) => ({ action, tool: declared.get(action)!.tool, suspended: (s as { suspended: boolean }).suspended, reason: (s as { reason: string }).reason }));
      const state = session && !session.broken ? 'up' : down ? 'down' : 'starting';
      return { state, reason: state === 'down' ? scrub(down!.reason) : null, since: down?.since ?? null, operations: ops };
    },

    async refresh(): Promise<void> {
      // Not reachable now: what an accept changed is seen at the next connect, which reads the pins.
      const s = session && !session.broken ? session : await ensure().catch(() => undefined);
      if (s) await reconcile(s.tools);
    },

    async close(): Promise<void> {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      if (recheckTimer) clearInterval(recheckTimer);
      retryTimer = recheckTimer = undefined;
      const pending = connecting;
      const s = session;
      session = null;
      if (s) {
        s.broken = 'closed';
        await s.client.close().catch(() => undefined);
        await s.transport.close().catch(() => undefined);
      }
      await pending?.then((x) => x.transport.close()).catch(() => undefined);
    },
  };
  return connector;
}
