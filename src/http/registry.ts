/**
 * The route registry: every HTTP route is declared once, as an Endpoint (method, path, summary,
 * the zod schemas of its path, query and body, its responses, and who may call it). The same
 * declaration
 *   - mounts the route on express (mountEndpoints), with its access gate and input validation;
 *   - generates /openapi.json and the /docs page (./openapi.ts);
 *   - drives the authorization matrix test (callersOf), which also checks that the express app
 *     serves no route the registry does not declare.
 * So the spec, the routes and who may call them cannot drift apart.
 */
import type { Request, RequestHandler, Response, Router } from 'express';
import { z } from 'zod';
import { RegentError } from '../errors/errors';
import { parseInput } from '../errors/input';
import { ROLES, canSome, type Capability } from '../policy/roles';
import type { ApiDeps } from './app';
import { checkSome, refuseNonTwin } from './auth';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Everyone who can knock: the four roles, a twin's key, and no credentials at all. */
export const CALLERS = [...ROLES, 'twin', 'anonymous'] as const;
export type Caller = (typeof CALLERS)[number];

/**
 * Who may call. `public`: anyone, no credentials (health, metrics, the spec). Otherwise the caller
 * is authenticated and must be a person holding one of `capabilities` (CASL, src/policy/roles.ts)
 * for at least one resource, or, with `twin: true`, a twin's own key. `scope` says in words what
 * the handler narrows further (an executive's own twins, a twin's own proposals).
 */
export type Access =
  | { public: true; note?: string }
  | { public?: false; capabilities: readonly Capability[]; twin?: boolean; scope?: string };

export interface ResponseDoc {
  description: string;
  /** The application/json body. */
  schema?: z.ZodType;
  /** Other media types (text/csv, application/gzip, …), each with a description. */
  media?: Record<string, { description: string; schema?: z.ZodType }>;
}

export interface Endpoint {
  /** The OpenAPI operationId, unique. */
  id: string;
  method: Method;
  /** Express syntax: /v1/twins/:id */
  path: string;
  tag: string;
  summary: string;
  description?: string;
  access: Access;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** The body may be left out (treated as {}). */
  bodyOptional?: boolean;
  /**
   * The body is documented here but validated by the service, which journals refused requests
   * (POST /v1/proposals: every refused action request is journaled).
   */
  bodyCheckedBy?: 'service';
  /** Successful answers by status. */
  responses: Readonly<Record<number, ResponseDoc>>;
  /** Refusals specific to this route, beyond those every route of its kind has (400, 401, 403, 413, 429). */
  errors?: Readonly<Record<number, string>>;
}

/** Declares an endpoint (keeps the literal types of its schemas for the handler's input). */
export function endpoint<const E extends Endpoint>(e: E): E {
  return e;
}

type Out<S> = S extends z.ZodType ? z.output<S> : Record<string, never>;

export interface Input<E extends Endpoint> {
  params: Out<E['params']>;
  query: Out<E['query']>;
  body: E['bodyCheckedBy'] extends 'service' ? unknown : E['body'] extends z.ZodType ? z.output<E['body']> : undefined;
}

/** A handler's answer with a status other than the endpoint's first success status, or headers. */
export class Reply {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {}
}

export const reply = (status: number, body: unknown, headers?: Record<string, string>) => new Reply(status, body, headers);

/**
 * Handles one endpoint: returns the JSON body (sent with the endpoint's first success status),
 * a Reply, or undefined after answering itself (streams).
 */
export type Handler<E extends Endpoint> = (input: Input<E>, req: Request, res: Response) => unknown;

export interface Bound {
  endpoint: Endpoint;
  handler: Handler<Endpoint>;
}

export function implement<E extends Endpoint>(e: E, handler: Handler<E>): Bound {
  return { endpoint: e, handler: handler as unknown as Handler<Endpoint> };
}

/**
 * A module of /v1 routes: what it declares (static, for the spec), and its handlers given the
 * server's services. Mounting checks that the two match exactly.
 */
export interface ApiModule {
  name: string;
  endpoints: readonly Endpoint[];
  /** Whether the server serves the module (e.g. the pipeline only runs with policies); default yes. */
  available?(deps: ApiDeps): boolean;
  bind(deps: ApiDeps): readonly Bound[];
}

export const openApiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

export const routeKey = (e: Pick<Endpoint, 'method' | 'path'>) => `${e.method} ${e.path}`;

/** Who may call `e`, derived from the same CASL rules the gate enforces. */
export function callersOf(e: Endpoint): Caller[] {
  if (e.access.public) return [...CALLERS];
  const caps = e.access.capabilities;
  const out: Caller[] = ROLES.filter((role) => caps.some((c) => canSome({ id: 'anyone', roles: [role] }, c)));
  if (e.access.twin) out.push('twin');
  return out;
}

/** The first 2xx status an endpoint declares: what a plain return value is sent with. */
export function successStatus(e: Endpoint): number {
  const codes = Object.keys(e.responses)
    .map(Number)
    .filter((s) => s >= 200 && s < 300)
    .sort((a, b) => a - b);
  if (!codes.length) throw new Error(`${routeKey(e)} declares no success response`);
  return codes[0]!;
}

/**
 * The access gate: refuses (403, journaled by journalForbidden) before anything is parsed or
 * loaded, so a caller who may not use a route learns nothing about its inputs or resources.
 */
function gate(e: Endpoint): RequestHandler {
  const access = e.access;
  if (access.public) return (_req, _res, next) => next();
  return (req, _res, next) => {
    const p = req.principal;
    if (!p) throw new RegentError('internal', `${routeKey(e)} is not public but the request was not authenticated`);
    if (p.kind === 'twin') {
      if (access.twin) return next();
      // Throws: a twin's key is refused on people's routes, naming the capability.
      checkSome(req, access.capabilities[0]!);
      return next();
    }
    if (access.capabilities.some((c) => canSome({ id: p.id, roles: p.appRoles }, c))) return next();
    if (!access.capabilities.length) refuseNonTwin();
    checkSome(req, access.capabilities[0]!); // throws with the caller and the capability
    next();
  };
}

const NO_QUERY = z.object({}).strict();

function inputOf(e: Endpoint, req: Request): Input<Endpoint> {
  const params = e.params ? parseInput(e.params, { ...req.params }, 'path') : {};
  const query = parseInput(e.query ?? NO_QUERY, { ...(req.query as Record<string, unknown>) }, 'query');
  let body: unknown;
  if (e.bodyCheckedBy === 'service') body = req.body;
  else if (e.body) body = parseInput(e.body, req.body === undefined && e.bodyOptional ? {} : req.body, 'body');
  return { params, query, body } as Input<Endpoint>;
}

/** Mounts bound endpoints on a router: gate, validation, handler, answer. */
export function mountEndpoints(router: Router, bound: readonly Bound[]): void {
  for (const { endpoint: e, handler } of bound) {
    const method = e.method.toLowerCase() as 'get' | 'post' | 'put' | 'patch' | 'delete';
    const status = successStatus(e);
    router[method](e.path, gate(e), async (req: Request, res: Response) => {
      const out = await handler(inputOf(e, req), req, res);
      if (res.headersSent || out === undefined) return;
      if (out instanceof Reply) {
        for (const [k, v] of Object.entries(out.headers)) res.setHeader(k, v);
        res.status(out.status).json(out.body);
      } else res.status(status).json(out);
    });
  }
}

/** Binds a module and checks it implements exactly what it declares (a mismatch stops start-up). */
export function bindModule(m: ApiModule, deps: ApiDeps): readonly Bound[] {
  const bound = m.bind(deps);
  const declared = new Set(m.endpoints.map(routeKey));
  const implemented = new Set(bound.map((b) => routeKey(b.endpoint)));
  for (const k of declared) if (!implemented.has(k)) throw new Error(`route module ${m.name} declares ${k} but has no handler for it`);
  for (const k of implemented) if (!declared.has(k)) throw new Error(`route module ${m.name} handles ${k}, which it does not declare`);
  return bound;
}
