/**
 * OpenAPI 3.1 at GET /openapi.json and a readable reference at GET /docs, both generated from the
 * route registry (./registry.ts): the same zod schemas that validate requests (z.toJSONSchema),
 * the same access rules the gate enforces (who may call, derived from CASL), the responses each
 * route declares. The page is plain HTML and one stylesheet served from here: no script, no CDN.
 */
import { z } from 'zod';
import { ROLES } from '../policy/roles';
import { VERSION } from '../version';
import { callersOf, endpoint, implement, openApiPath, routeKey, type Bound, type Endpoint } from './registry';
import { ProblemSchema } from './schemas';

type Json = Record<string, unknown>;

/** Routes served outside the route modules (by app.ts, the console, or groups not yet on the registry). */
const MCP_RESOURCE_METADATA = z.object({
  resource: z.string(),
  authorization_servers: z.array(z.string()).optional(),
  bearer_methods_supported: z.array(z.literal('header')),
  resource_name: z.string(),
  resource_documentation: z.string(),
});

export const SYSTEM_ENDPOINTS = {
  healthz: endpoint({
    id: 'healthz',
    method: 'GET',
    path: '/healthz',
    tag: 'System',
    summary: 'Liveness: answers while the process is up',
    access: { public: true },
    responses: { 200: { description: 'Up', schema: z.object({ status: z.literal('ok'), version: z.string() }) } },
  }),
  readyz: endpoint({
    id: 'readyz',
    method: 'GET',
    path: '/readyz',
    tag: 'System',
    summary: 'Readiness: database reachable, migrations applied, a valid policy bundle in force',
    description:
      'With signal sources (policies/signals/sources), signalSources lists each with whether it is connected; one that is not makes the status "degraded" (still 200: the API serves) with a reason naming it.',
    access: { public: true },
    responses: {
      200: {
        description: 'Ready (degraded: a signal source is not connected)',
        schema: z.looseObject({
          status: z.enum(['ok', 'degraded']),
          database: z.string(),
          migrations: z.literal('applied'),
          journal: z.object({ size: z.number() }),
          reason: z.string().optional(),
          signalSources: z
            .array(z.object({
                id: z.string(),
                type: z.string(),
                connected: z.boolean(),
                since: z.string(),
                error: z.string().nullable(),
                received: z.number().describe('signals this process journaled from it'),
                repeats: z.number().describe('redeliveries and repeats of a signal already in, acknowledged again'),
                refused: z.number(),
              }))
            .optional(),
        }),
      },
    },
    errors: { 503: 'Not ready, with the reason (same shape with status "unavailable" and reason)' },
  }),
  openapi: endpoint({
    id: 'openapi',
    method: 'GET',
    path: '/openapi.json',
    tag: 'System',
    summary: 'This document (OpenAPI 3.1)',
    access: { public: true },
    responses: { 200: { description: 'The OpenAPI document', schema: z.looseObject({ openapi: z.string() }) } },
  }),
  docs: endpoint({
    id: 'docs',
    method: 'GET',
    path: '/docs',
    tag: 'System',
    summary: 'The API reference as a web page',
    access: { public: true },
    responses: { 200: { description: 'HTML', media: { 'text/html': { description: 'The reference page' } } } },
  }),
  docsCss: endpoint({
    id: 'docsStylesheet',
    method: 'GET',
    path: '/docs/docs.css',
    tag: 'System',
    summary: 'The reference page’s stylesheet',
    access: { public: true },
    responses: { 200: { description: 'CSS', media: { 'text/css': { description: 'The stylesheet' } } } },
  }),
  console: endpoint({
    id: 'console',
    method: 'GET',
    path: '/',
    tag: 'Console',
    summary: 'The web console (sign in with an API key); its assets are under /console/',
    access: { public: true },
    responses: { 200: { description: 'HTML', media: { 'text/html': { description: 'The console' } } } },
  }),
  consoleIndex: endpoint({
    id: 'consoleIndex',
    method: 'GET',
    path: '/index.html',
    tag: 'Console',
    summary: 'The web console (same as /)',
    access: { public: true },
    responses: { 200: { description: 'HTML', media: { 'text/html': { description: 'The console' } } } },
  }),
  mcpResource: endpoint({
    id: 'mcpResourceMetadata',
    method: 'GET',
    path: '/.well-known/oauth-protected-resource',
    tag: 'MCP',
    summary: 'OAuth protected resource metadata (RFC 9728) of the MCP endpoint /mcp',
    description:
      'Named by the 401 challenge of /mcp. `authorization_servers` lists the OIDC issuer when REGENT_OIDC_* is set; without it, /mcp takes twin API keys only. The MCP endpoint itself (POST/GET/DELETE /mcp, Streamable HTTP) is described in the README: it speaks JSON-RPC, not this API.',
    access: { public: true },
    responses: { 200: { description: 'The metadata', schema: MCP_RESOURCE_METADATA } },
  }),
  mcpResourcePath: endpoint({
    id: 'mcpResourceMetadataForPath',
    method: 'GET',
    path: '/.well-known/oauth-protected-resource/mcp',
    tag: 'MCP',
    summary: 'The same metadata at the path-inserted URL RFC 9728 clients also try',
    access: { public: true },
    responses: { 200: { description: 'The metadata', schema: MCP_RESOURCE_METADATA } },
  }),
  me: endpoint({
    id: 'getMe',
    method: 'GET',
    path: '/v1/me',
    tag: 'People',
    summary: 'Who the key (or token) belongs to, and the capabilities it has',
    access: { capabilities: ['killSwitch.read'], twin: true, scope: 'any valid key, a twin’s included' },
    responses: {
      200: {
        description: 'The caller',
        schema: z.looseObject({
          kind: z.enum(['user', 'twin']),
          id: z.string(),
          ref: z.string(),
          keyId: z.string(),
          roles: z.array(z.string()),
          capabilities: z.array(z.string()),
        }),
      },
    },
  }),
};

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad input: the field and what is wrong with it',
  401: 'No valid credentials (API key or, when configured, an OIDC token)',
  403: 'Authenticated, but not allowed (names the capability)',
  404: 'Not found',
  409: 'Conflict',
  413: 'Request body larger than the limit (REGENT_MAX_BODY_BYTES)',
  429: 'Rate limited (Retry-After says when to try again)',
  503: 'A dependency (storage, policy, identity provider) is unavailable: nothing was done',
};

/** Moves zod's local $defs into components.schemas and points the refs there. */
function lift(schema: Json, components: Record<string, Json>): Json {
  const defs = (schema.$defs ?? {}) as Record<string, Json>;
  const rewrite = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(rewrite);
    if (v && typeof v === 'object') {
      const out: Json = {};
      for (const [k, x] of Object.entries(v)) {
        if (k === '$schema' || k === '$defs') continue;
        out[k] = k === '$ref' && typeof x === 'string' ? x.replace(/^#\/\$defs\//, '#/components/schemas/') : rewrite(x);
      }
      return out;
    }
    return v;
  };
  for (const [name, def] of Object.entries(defs)) components[name] = rewrite(def) as Json;
  return rewrite(schema) as Json;
}

function jsonSchema(s: z.ZodType, io: 'input' | 'output', components: Record<string, Json>): Json {
  return lift(z.toJSONSchema(s, { io, unrepresentable: 'any', reused: 'inline' }) as Json, components);
}

function parameters(e: Endpoint, components: Record<string, Json>): Json[] {
  const out: Json[] = [];
  for (const [where, obj] of [
    ['path', e.params],
    ['query', e.query],
  ] as const) {
    if (!obj) continue;
    for (const [name, field] of Object.entries(obj.shape as Record<string, z.ZodType>)) {
      const schema = jsonSchema(field, 'input', components);
      const description = (schema.description as string | undefined) ?? field.description;
      delete schema.description;
      out.push({
        name,
        in: where,
        required: where === 'path' || !field.safeParse(undefined).success,
        ...(description ? { description } : {}),
        schema,
      });
    }
  }
  return out;
}

export function accessText(e: Endpoint): string {
  if (e.access.public) return `Anyone, without credentials${e.access.note ? ` (${e.access.note})` : ''}.`;
  const callers = callersOf(e).map((c) => (c === 'twin' ? "a twin's own key" : c));
  return `${callers.join(', ')}${e.access.scope ? ` (${e.access.scope})` : ''}.`;
}

function problemsOf(e: Endpoint): Record<number, string> {
  const out: Record<number, string> = {};
  if (e.params || e.query || e.body) out[400] = STATUS_TEXT[400]!;
  if (!e.access.public) {
    out[401] = STATUS_TEXT[401]!;
    out[403] = STATUS_TEXT[403]!;
    out[429] = STATUS_TEXT[429]!;
  }
  if (e.body) out[413] = STATUS_TEXT[413]!;
  for (const [k, v] of Object.entries(e.errors ?? {})) out[Number(k)] = v;
  return out;
}

/** The OpenAPI 3.1 document for `endpoints`. */
export function buildSpec(endpoints: readonly Endpoint[]): Json {
  const components: Record<string, Json> = {};
  const problemRef = { $ref: '#/components/schemas/Problem' };
  // Problem carries a meta id, so converting it files it under components.schemas.Problem.
  jsonSchema(ProblemSchema, 'output', components);
  const paths: Record<string, Record<string, Json>> = {};
  const tags = new Set<string>();
  const ids = new Set<string>();
  for (const e of endpoints) {
    if (ids.has(e.id)) throw new Error(`two endpoints have the operationId ${e.id}`);
    ids.add(e.id);
    tags.add(e.tag);
    const responses: Record<string, Json> = {};
    for (const [status, r] of Object.entries(e.responses)) {
      const content: Json = {};
      if (r.schema) content['application/json'] = { schema: jsonSchema(r.schema, 'output', components) };
      for (const [type, m] of Object.entries(r.media ?? {})) {
        content[type] = { ...(m.schema ? { schema: jsonSchema(m.schema, 'output', components) } : {}), description: m.description };
      }
      responses[status] = { description: r.description, ...(Object.keys(content).length ? { content } : {}) };
    }
    for (const [status, description] of Object.entries(problemsOf(e))) {
      responses[status] = { description, content: { 'application/problem+json': { schema: problemRef } } };
    }
    const op: Json = {
      operationId: e.id,
      summary: e.summary,
      description: [e.description, `**Who may call:** ${accessText(e)}`].filter(Boolean).join('\n\n'),
      tags: [e.tag],
      'x-regent-callers': callersOf(e),
      ...(e.access.public ? { security: [] } : { 'x-regent-capabilities': e.access.capabilities }),
    };
    const params = parameters(e, components);
    if (params.length) op.parameters = params;
    if (e.body) {
      op.requestBody = {
        required: !e.bodyOptional,
        content: { 'application/json': { schema: jsonSchema(e.body, 'input', components) } },
      };
    }
    op.responses = responses;
    (paths[openApiPath(e.path)] ??= {})[e.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Regent API',
      version: VERSION,
      description:
        'The governed control plane for executive work twins. Every /v1 route takes `Authorization: Bearer <API key>` (or an OIDC token where configured); errors are application/problem+json with an errorId that is also in the server log. Request bodies are strict: unknown fields are refused. Responses may gain fields.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: '/' }],
    tags: [...tags].map((name) => ({ name })),
    security: [{ apiKey: [] }, { oidc: [] }],
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        apiKey: { type: 'http', scheme: 'bearer', bearerFormat: 'rgt_<id>_<secret>', description: 'A Regent API key (shown once when made)' },
        oidc: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A token from the configured identity provider (REGENT_OIDC_*)' },
      },
    },
  };
}

// ---- The reference page ----

const esc = (s: unknown) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Just enough Markdown for the descriptions: `code` and **bold**. */
const md = (s: string) =>
  esc(s)
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
    .split(/\n\n+/)
    .map((p) => `<p>${p}</p>`)
    .join('');

const pretty = (v: unknown) => `<pre>${esc(JSON.stringify(v, null, 2))}</pre>`;

export function renderDocs(spec: Json): string {
  const paths = spec.paths as Record<string, Record<string, Json>>;
  const byTag = new Map<string, { method: string; path: string; op: Json }[]>();
  for (const [p, ops] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const tag = (op.tags as string[])[0]!;
      (byTag.get(tag) ?? byTag.set(tag, []).get(tag)!).push({ method, path: p, op });
    }
  }
  const info = spec.info as Json;
  const toc = [...byTag]
    .map(
      ([tag, ops]) =>
        `<li>${esc(tag)}<ul>${ops
          .map((o) => `<li><a href="#${esc(o.op.operationId)}"><span class="m m-${o.method}">${o.method.toUpperCase()}</span> ${esc(o.path)}</a></li>`)
          .join('')}</ul></li>`,
    )
    .join('');
  const sections = [...byTag]
    .map(([tag, ops]) => {
      const items = ops.map(({ method, path, op }) => {
        const params = (op.parameters ?? []) as Json[];
        const paramRows = params
          .map(
            (p) =>
              `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${p.required ? 'yes' : 'no'}</td><td>${md(String(p.description ?? ''))}<details><summary>schema</summary>${pretty(p.schema)}</details></td></tr>`,
          )
          .join('');
        const body = op.requestBody as Json | undefined;
        const bodySchema = body ? ((body.content as Json)['application/json'] as Json).schema : undefined;
        const responses = Object.entries(op.responses as Record<string, Json>)
          .map(([status, r]) => {
            const content = (r.content ?? {}) as Record<string, Json>;
            const media = Object.entries(content)
              .map(([type, c]) => `<div class="media"><code>${esc(type)}</code>${c.description ? ` ${esc(c.description)}` : ''}${c.schema && !(c.schema as Json).$ref ? `<details><summary>schema</summary>${pretty(c.schema)}</details>` : ''}</div>`)
              .join('');
            return `<tr><td class="status s${status[0]}">${esc(status)}</td><td>${esc(r.description)}${media}</td></tr>`;
          })
          .join('');
        return `<section class="op" id="${esc(op.operationId)}">
<h3><span class="m m-${method}">${method.toUpperCase()}</span> <code>${esc(path)}</code></h3>
<p class="summary">${esc(op.summary)}</p>
${md(String(op.description ?? ''))}
${paramRows ? `<h4>Parameters</h4><table><thead><tr><th>Name</th><th>In</th><th>Required</th><th>Description</th></tr></thead><tbody>${paramRows}</tbody></table>` : ''}
${bodySchema ? `<h4>Request body${body!.required ? '' : ' (optional)'}: <code>application/json</code></h4>${pretty(bodySchema)}` : ''}
<h4>Responses</h4><table><tbody>${responses}</tbody></table>
</section>`;
      });
      return `<h2 id="tag-${esc(tag)}">${esc(tag)}</h2>${items.join('\n')}`;
    })
    .join('\n');
  const problem = ((spec.components as Json).schemas as Json).Problem;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(info.title)} ${esc(info.version)} — reference</title>
<link rel="stylesheet" href="/docs/docs.css">
</head>
<body>
<header><h1>${esc(info.title)} <small>${esc(info.version)}</small></h1>
<p>${md(String(info.description))}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1). Roles: ${ROLES.map((r) => `<code>${r}</code>`).join(', ')}; a twin calls with its own key.</p></header>
<div class="layout">
<nav aria-label="Routes"><ul>${toc}</ul></nav>
<main>
${sections}
<h2 id="problem">Errors</h2>
<p>Every refusal is <code>application/problem+json</code>:</p>
${pretty(problem)}
</main>
</div>
</body>
</html>
`;
}

export const DOCS_CSS = `:root{color-scheme:light dark;--fg:#1b1f24;--bg:#fff;--muted:#57606a;--line:#d0d7de;--code:#f6f8fa;--accent:#0b5cad}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#9198a1;--line:#30363d;--code:#161b22;--accent:#4493f8}}
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header{padding:1rem 2rem;border-bottom:1px solid var(--line)}h1 small{color:var(--muted);font-weight:400;font-size:.6em}
.layout{display:grid;grid-template-columns:minmax(14rem,20rem) 1fr}nav{border-right:1px solid var(--line);padding:1rem;position:sticky;top:0;max-height:100vh;overflow:auto;font-size:.9rem}
nav ul{list-style:none;padding-left:.5rem;margin:.25rem 0}nav a{color:var(--fg);text-decoration:none}nav a:hover,nav a:focus{text-decoration:underline}
main{padding:1rem 2rem;min-width:0}.op{border-top:1px solid var(--line);padding:1rem 0}.summary{font-weight:600}
a{color:var(--accent)}a:focus-visible{outline:2px solid var(--accent);outline-offset:2px}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.875em}pre{background:var(--code);padding:.75rem;overflow:auto;border-radius:4px}
table{border-collapse:collapse;width:100%;margin:.5rem 0}td,th{border:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top}
.m{display:inline-block;min-width:4.2em;text-align:center;border-radius:3px;padding:0 .3em;font:600 .8rem ui-monospace,monospace;color:#fff;background:#57606a}
.m-get{background:#0969da}.m-post{background:#1a7f37}.m-put{background:#9a6700}.m-patch{background:#8250df}.m-delete{background:#cf222e}
.status{font-weight:600;white-space:nowrap}.s2{color:#1a7f37}.s4{color:#bc4c00}.s5{color:#cf222e}.media{margin-top:.25rem}
@media (max-width:800px){.layout{grid-template-columns:1fr}nav{position:static;max-height:none;border-right:0;border-bottom:1px solid var(--line)}main,header{padding:1rem}}
`;

/** GET /openapi.json, /docs and /docs/docs.css for the endpoints `all()` returns (computed once). */
export function docsRoutes(all: () => readonly Endpoint[]): Bound[] {
  let spec: Json | undefined;
  let html: string | undefined;
  const specOf = () => (spec ??= buildSpec(all()));
  return [
    implement(SYSTEM_ENDPOINTS.openapi, () => specOf()),
    implement(SYSTEM_ENDPOINTS.docs, (_input, _req, res) => {
      html ??= renderDocs(specOf());
      res.type('text/html; charset=utf-8').send(html);
      return undefined;
    }),
    implement(SYSTEM_ENDPOINTS.docsCss, (_input, _req, res) => {
      res.type('text/css; charset=utf-8').send(DOCS_CSS);
      return undefined;
    }),
  ];
}

/** Checks a list of endpoints for duplicates (method and path, or operationId). */
export function assertUnique(endpoints: readonly Endpoint[]): void {
  const seen = new Set<string>();
  for (const e of endpoints) {
    const k = routeKey(e);
    if (seen.has(k)) throw new Error(`two endpoints declare ${k}`);
    seen.add(k);
  }
}
