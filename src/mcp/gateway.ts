/**
 * Regent's MCP server at `/mcp`: any agent that speaks the Model Context Protocol uses Regent as
 * its tool server, with a twin's key, and every call is a governed action request.
 *
 * Served with the official SDK (v2): `createMcpHandler` answers 2026-07-28 requests and, in its
 * stateless legacy mode, the 2025-era revisions (2025-06-18, 2025-11-25) that most clients still
 * speak. Regent answers `tools/list` and `tools/call` with the SDK's low-level handlers, so that
 * its own validation, policy and journal see every call (the SDK would refuse bad arguments
 * before Regent could journal them).
 */
import type { Request, RequestHandler, Response, Router } from 'express';
import express from 'express';
import { createMcpHandler, ProtocolError, ProtocolErrorCode, Server, type ServerEventBus } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import type { JournalService } from '../journal/service';
import type { Logger } from '../log/logger';
import type { PeopleService } from '../people/service';
import type { Principal } from '../people/types';
import type { PolicyService } from '../policy/service';
import type { ProposalService } from '../proposals/service';
import type { TwinService } from '../twins/service';
import type { ConnectorRegistry } from '../connectors/types';
import { ForbiddenError } from '../errors/errors';
import { VERSION } from '../version';
import { authenticate, journalForbidden, type AuthDeps } from '../http/auth';
import { createCallHandler, refusal, type CallDeps, type CallResult } from './calls';
import { clean, createSessionCodec, type McpClient } from './session';
import { mcpToolsFor, STATUS_TOOL, statusOnly, type McpTool } from './tools';
import { hostGuard, resourceMetadataUrl, type Origins } from './origins';

export interface McpConfig {
  /** How long a call that needs approval is held open before answering pending_approval. */
  holdMs: number;
  /** How often a held call looks at its proposal. */
  pollMs: number;
  /** Identical calls without an idempotency key within this window are one request. */
  retryWindowMs: number;
  /** Where this server is reached, and which Host and Origin headers it accepts. */
  origins: Origins;
}

export interface McpDeps {
  log: Logger;
  journal: Pick<JournalService, 'append'>;
  people: Pick<PeopleService, 'identify'>;
  twins: Pick<TwinService, 'getForAction'>;
  proposals: Pick<ProposalService, 'create' | 'get' | 'byIdempotencyKey'>;
  policy: Pick<PolicyService, 'bundle'>;
  connectors: () => ConnectorRegistry;
  /** Signs the session ids handed to 2025-era clients (derived from the journal key). */
  sessionSecret: Buffer;
  config: McpConfig;
  /** Where tools/list changes are announced (subscriptions/listen); one bus across processes. */
  bus?: ServerEventBus;
  auth: Pick<AuthDeps, 'oidc' | 'failures'>;
  /** The per-key rate limit of the API, shared with it. */
  rateLimit?: RequestHandler;
  /** Where this is the only process making proposals (embedded database): see CallDeps.derivedKeysSince. */
  derivedKeysSince?: CallDeps['derivedKeysSince'];
}

/** What the express layer learned of the request, handed to the SDK handlers. */
interface RequestInfo {
  twin: string;
  /** The client, as a signed session id of a 2025-era client says it. */
  sessionClient: McpClient | undefined;
  /** The protocol revision the request's header names (2025-era clients send it after initialize). */
  headerProtocol: string | undefined;
  /** Aborted when the client goes away before the answer is written. */
  gone: AbortSignal;
}

const ENVELOPE_CLIENT = 'io.modelcontextprotocol/clientInfo';
const ENVELOPE_PROTOCOL = 'io.modelcontextprotocol/protocolVersion';

function clientOf(info: RequestInfo, envelope: Record<string, unknown> | undefined): McpClient {
  const ci = envelope?.[ENVELOPE_CLIENT] as { name?: unknown; version?: unknown } | undefined;
  const protocol = typeof envelope?.[ENVELOPE_PROTOCOL] === 'string' ? (envelope[ENVELOPE_PROTOCOL] as string) : undefined;
  if (ci) return { name: clean(ci.name), version: clean(ci.version, 60), protocol: clean(protocol ?? info.headerProtocol, 40) };
  if (info.sessionClient) return { ...info.sessionClient, protocol: clean(info.headerProtocol ?? info.sessionClient.protocol, 40) };
  return { name: 'unknown', version: 'unknown', protocol: clean(info.headerProtocol ?? protocol, 40) };
}

export function createMcpGateway(deps: McpDeps) {
  const { log } = deps;
  const codec = createSessionCodec(deps.sessionSecret);
  const calls = createCallHandler({
    proposals: deps.proposals,
    journal: deps.journal,
    log,
    holdMs: deps.config.holdMs,
    pollMs: deps.config.pollMs,
    retryWindowMs: deps.config.retryWindowMs,
    progressEveryMs: 5000,
    ...(deps.derivedKeysSince ? { derivedKeysSince: deps.derivedKeysSince } : {}),
  });

  /**
   * The twins as last read, for a second at most: which tools a twin has (its authority and
   * mode) and whether it is halted. Any change announced on the bus (a mode change, a kill
   * switch, a policy reload, in any process) forgets them at once. The pipeline reads the twin
   * again inside the transaction that decides a call, so a twin changed within that second is
   * still decided as it is then.
   */
  const twinCache = new Map<string, { twin: Awaited<ReturnType<McpDeps['twins']['getForAction']>>; at: number }>();
  const TWIN_TTL_MS = 1000;
  let cacheEpoch = 0;
  deps.bus?.subscribe(() => {
    cacheEpoch++;
    twinCache.clear();
  });
  async function twinOf(id: string) {
    const now = Date.now();
    const hit = twinCache.get(id);
    if (hit && now - hit.at < TWIN_TTL_MS) return hit.twin;
    const epoch = cacheEpoch;
    const twin = await deps.twins.getForAction(id);
    // A change announced while this read was on its way may not be in it: not kept.
    if (epoch === cacheEpoch) {
      if (twinCache.size > 10_000) twinCache.clear();
      twinCache.set(id, { twin, at: now });
    }
    return twin;
  }

  /**
   * The tools a twin is offered now: its authority's grants (the LLM twin's set), nothing while
   * it is halted by a kill switch or policy is unavailable; the status tool always.
   */
  const toolCache = new Map<string, { registry: ConnectorRegistry; tools: McpTool[] }>();

  async function toolsOf(twinId: string, opts: { evenWhenHalted: boolean }): Promise<{ tools: McpTool[]; halted?: boolean }> {
    const twin = await twinOf(twinId);
    if (!twin) return { tools: statusOnly() };
    if (twin.halted && !opts.evenWhenHalted) return { tools: statusOnly(), halted: true };
    let bundle;
    try {
      bundle = deps.policy.bundle();
    } catch {
      return { tools: statusOnly() };
    }
    // The list with its descriptions is computed once a second per authority and mode (calls
    // look a tool up on every request); policy decides each call itself, so a validity window
    // that ends within that second refuses the call at the pipeline, as for any request.
    const key = `${bundle.version}\u0000${twin.authority}\u0000${twin.mode}\u0000${Math.floor(Date.now() / 1000)}`;
    const registry = deps.connectors();
    const cached = toolCache.get(key);
    if (cached && cached.registry === registry) return { tools: cached.tools, halted: twin.halted };
    const tools = mcpToolsFor(bundle, registry, twin.authority);
    if (twin.mode !== 'execute') {
      for (const t of tools) {
        if (t.action === null) continue;
        t.description +=
          twin.mode === 'propose'
            ? ' This twin is in propose mode: a call is recorded for a person to act on and nothing runs.'
            : ' This twin is in approve mode: a person approves every call before it runs.';
      }
    }
    if (toolCache.size > 500) toolCache.clear();
    toolCache.set(key, { registry, tools });
    return { tools, halted: twin.halted };
  }

  function buildServer(info: RequestInfo): Server {
    const server = new Server(
      { name: 'regent', version: VERSION },
      {
        capabilities: { tools: { listChanged: true } },
        instructions:
          'Regent governs every tool here: each call is an action request decided against the delegated authority of the twin whose key you use, and journaled. ' +
          'A call a person must approve answers pending_approval with a proposal id; ask regent_proposal_status later. Refusals say why.',
      },
    );
    server.setRequestHandler('tools/list', async () => {
      const { tools } = await toolsOf(info.twin, { evenWhenHalted: false });
      return {
        tools: tools.map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema, annotations: t.annotations })),
      };
    });
    server.setRequestHandler('tools/call', async (req, ctx): Promise<CallResult> => {
      const client = clientOf(info, ctx.mcpReq.envelope as Record<string, unknown> | undefined);
      const name = req.params.name;
      const args = req.params.arguments;
      if (name === STATUS_TOOL) return calls.status(info.twin, (args as Record<string, unknown> | undefined)?.proposal);
      // Granted tools are looked up even while the twin is halted: a call then is refused by the
      // pipeline (denied, journaled) rather than reported as a tool that does not exist.
      const { tools, halted } = await toolsOf(info.twin, { evenWhenHalted: true });
      const tool = tools.find((t) => t.name === name);
      if (!tool || tool.action === null) {
        const reason = `unknown tool ${JSON.stringify(String(name).slice(0, 200))}: not a tool this twin is granted`;
        await deps.journal
          .append({ kind: 'proposal.refused', actor: `twin:${info.twin}`, data: { reason, action: null } })
          .catch((err) => log.error('could not journal a refused MCP call', { error: err }));
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown tool: ${String(name).slice(0, 200)}`);
      }
      if (args !== undefined && (args === null || typeof args !== 'object' || Array.isArray(args))) {
        const reason = `arguments of ${tool.name} must be an object`;
        await deps.journal
          .append({ kind: 'proposal.refused', actor: `twin:${info.twin}`, data: { reason, action: tool.action } })
          .catch((err) => log.error('could not journal a refused MCP call', { error: err }));
        return refusal(reason);
      }
      if (halted) {
        // Nothing is recorded to run later: the caller is told now, and the refusal journaled.
        const reason = `twin ${info.twin} is halted by a kill switch: nothing it asks for runs until the switch is released`;
        await deps.journal
          .append({ kind: 'proposal.refused', actor: `twin:${info.twin}`, data: { reason, action: tool.action } })
          .catch((err) => log.error('could not journal a refused MCP call', { error: err }));
        return refusal(reason);
      }
      const token = ctx.mcpReq._meta?.progressToken;
      const signal = AbortSignal.any([ctx.mcpReq.signal, info.gone]);
      return calls.call({
        twin: info.twin,
        tool: tool.name,
        action: tool.action,
        args: (args ?? {}) as Record<string, unknown>,
        meta: ctx.mcpReq._meta as Record<string, unknown> | undefined,
        client,
        signal,
        ...(token !== undefined
          ? {
              progress: (progress: number, message: string) =>
                ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: token, progress, message } }),
            }
          : {}),
      });
    });
    return server;
  }

  const handler = createMcpHandler(
    (ctx) => {
      const info = (ctx.authInfo?.extra as { regent?: RequestInfo } | undefined)?.regent;
      if (!info) throw new Error('MCP request without Regent request info');
      return buildServer(info);
    },
    {
      ...(deps.bus ? { bus: deps.bus } : {}),
      keepAliveMs: 10_000,
      onerror: (err) => log.warn('MCP request refused by the protocol layer', { error: err.message }),
    },
  );
  const node = toNodeHandler(handler);

  /** Only a twin's key: a person gets a plain 403 with the reason (never insufficient_scope, which sends clients into a step-up flow). */
  const twinOnly: RequestHandler = (req, _res, next) => {
    const p: Principal = req.principal;
    if (p.kind !== 'twin') {
      next(
        new ForbiddenError(
          `${p.ref} is a person's key; /mcp takes a twin's API key (the twin acts, and each call is decided against its authority)`,
          { capability: 'twin' },
        ),
      );
      return;
    }
    next();
  };

  /** Calls being served in this process, by twin, session and JSON-RPC id: a cancellation ends their wait. */
  const held = new Map<string, AbortController>();
  const heldKey = (twin: string, session: string | undefined, id: string | number) => `${twin}\u0000${session ?? ''}\u0000${typeof id}:${id}`;

  async function serve(req: Request, res: Response) {
    const p = req.principal as Principal & { kind: 'twin' };
    const gone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    const body = req.body as { method?: unknown; params?: Record<string, unknown> } | undefined;
    const single = body && typeof body === 'object' && !Array.isArray(body) ? body : undefined;
    const info: RequestInfo = {
      twin: p.id,
      sessionClient: codec.read(req.get('mcp-session-id'), p.id),
      headerProtocol: req.get('mcp-protocol-version'),
      gone: gone.signal,
    };
    // A 2025-era client cancels a request with a notification on a new POST; with no sessions the
    // SDK cannot route it, so Regent ends the wait of the held call it names (in this process).
    if (req.method === 'POST' && single?.method === 'notifications/cancelled') {
      const target = single.params?.requestId;
      if (typeof target === 'string' || typeof target === 'number') held.get(heldKey(p.id, req.get('mcp-session-id'), target))?.abort();
    }
    if (req.method === 'POST' && single && typeof single.method === 'string' && single.method === 'tools/call' && 'id' in single) {
      const key = heldKey(p.id, req.get('mcp-session-id'), (single as { id: string | number }).id);
      held.set(key, gone);
      res.on('close', () => {
        if (held.get(key) === gone) held.delete(key);
      });
    }
    if (req.method === 'POST' && single?.method === 'initialize') {
      // A 2025-era client says who it is once: carried in a signed session id from here on.
      const params = single.params ?? {};
      const ci = (params.clientInfo ?? {}) as { name?: unknown; version?: unknown };
      const client: McpClient = { name: clean(ci.name), version: clean(ci.version, 60), protocol: clean(params.protocolVersion, 40) };
      res.setHeader('Mcp-Session-Id', codec.issue(p.id, client));
      await initialized(p.id, client, 'legacy');
    } else if (req.method === 'POST' && single?.method === 'server/discover') {
      const meta = (single.params?._meta ?? {}) as Record<string, unknown>;
      await initialized(p.id, clientOf(info, meta), 'modern');
    }
    if (req.method === 'DELETE') {
      // Ending a session: Regent keeps none, so there is nothing to end.
      res.status(204).end();
      return;
    }
    (req as Request & { auth?: unknown }).auth = { token: 'regent', clientId: p.id, scopes: [], extra: { regent: info } };
    await node(req, res, req.body);
  }

  async function initialized(twin: string, client: McpClient, era: 'legacy' | 'modern') {
    await deps.journal
      .append({ kind: 'mcp.initialized', actor: `twin:${twin}`, data: { client: { name: client.name, version: client.version }, protocol: client.protocol, era } })
      .catch((err) => log.error('could not journal an MCP client starting', { error: err }));
    log.info('MCP client connected', { twin, client: client.name, version: client.version, protocol: client.protocol });
  }

  return {
    /** /mcp and the RFC 9728 metadata, for the app to mount before its /v1 routes. */
    router(): Router {
      const r = express.Router();
      const guard = hostGuard(deps.config.origins);
      const metadata: RequestHandler = (req, res) => {
        res.setHeader('Cache-Control', 'max-age=300');
        res.json({
          resource: `${deps.config.origins.base(req)}/mcp`,
          ...(deps.config.origins.authorizationServers.length > 0 ? { authorization_servers: deps.config.origins.authorizationServers } : {}),
          bearer_methods_supported: ['header'],
          resource_name: 'Regent',
          resource_documentation: `${deps.config.origins.base(req)}/docs`,
        });
      };
      r.get(['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp'], guard, metadata);
      const chain: RequestHandler[] = [
        guard,
        authenticate({
          people: deps.people,
          journal: deps.journal,
          log,
          ...deps.auth,
          challenge: (req) => `resource_metadata="${resourceMetadataUrl(deps.config.origins.base(req))}"`,
        }),
        twinOnly,
      ];
      if (deps.rateLimit) chain.push(deps.rateLimit);
      r.all('/mcp', ...chain, (req, res, next) => {
        serve(req, res).catch(next);
      });
      // A 403 (a person's key) is journaled like any refused request of the API.
      r.use('/mcp', journalForbidden({ journal: deps.journal, log }));
      return r;
    },

    /** Tells open subscriptions/listen streams that what is offered may have changed. */
    toolsChanged(): void {
      handler.notify.toolsChanged();
    },

    close: () => handler.close(),
  };
}

export type McpGateway = ReturnType<typeof createMcpGateway>;
