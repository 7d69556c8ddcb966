/**
 * The connector document (`policies/connectors/*.yaml`) and the JSON Schema subset its
 * operations declare their input in. Strict everywhere: an unknown field is a mistake (a misspelt
 * `idempotent` must not silently change retry behaviour), so it is refused.
 */
import { z } from 'zod';
import { SANDBOX_OPERATIONS } from './sandbox';

// ---------------------------------------------------------------------------------------------
// The JSON Schema subset

export const INPUT_TYPES = ['object', 'string', 'number', 'integer', 'boolean', 'array'] as const;
export type InputType = (typeof INPUT_TYPES)[number];

/** One node of an operation's input schema: a small, checkable subset of JSON Schema. */
export interface InputSchema {
  type: InputType;
  description?: string;
  enum?: (string | number | boolean)[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  items?: InputSchema;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, InputSchema>;
  required?: string[];
  /** false unless declared: an unexpected field in a business request is refused, not passed on. */
  additionalProperties?: boolean;
}

const COMMON_KEYWORDS = ['type', 'description', 'enum'];
const KEYWORDS_BY_TYPE: Record<InputType, readonly string[]> = {
  string: ['minLength', 'maxLength', 'pattern'],
  number: ['minimum', 'maximum'],
  integer: ['minimum', 'maximum'],
  boolean: [],
  array: ['items', 'minItems', 'maxItems'],
  object: ['properties', 'required', 'additionalProperties'],
};
const ENUM_VALUE_TYPE: Record<InputType, string | undefined> = {
  string: 'string',
  number: 'number',
  integer: 'number',
  boolean: 'boolean',
  array: undefined,
  object: undefined,
};

const Count = z.number().int().min(0);

export const InputSchemaSchema: z.ZodType<InputSchema> = z.lazy(() =>
  z
    .object({
      type: z.enum(INPUT_TYPES, {
        error: (iss) =>
          iss.input === undefined ? 'required' : `unknown type ${JSON.stringify(iss.input)} (expected ${INPUT_TYPES.join(', ')})`,
      }),
      description: z.string().optional(),
      enum: z
        .array(z.union([z.string(), z.number(), z.boolean()]))
        .min(1)
        .optional(),
      minimum: z.number().optional(),
      maximum: z.number().optional(),
      minLength: Count.optional(),
      maxLength: Count.optional(),
      pattern: z.string().optional(),
      items: InputSchemaSchema.optional(),
      minItems: Count.optional(),
      maxItems: Count.optional(),
      properties: z
        .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'property names are letters, digits and "_"' }), InputSchemaSchema)
        .optional(),
      required: z.array(z.string()).optional(),
      additionalProperties: z.boolean().optional(),
    })
    .strict()
    .superRefine((s, ctx) => {
      const allowed = new Set([...COMMON_KEYWORDS, ...KEYWORDS_BY_TYPE[s.type]]);
      for (const key of Object.keys(s)) {
        if (!allowed.has(key)) ctx.addIssue({ code: 'custom', path: [key], message: `"${key}" does not apply to type ${s.type}` });
      }
      s.required?.forEach((name, i) => {
        if (!s.properties?.[name])
          ctx.addIssue({ code: 'custom', path: ['required', i], message: `required field "${name}" is not in properties` });
      });
      const valueType = ENUM_VALUE_TYPE[s.type];
      s.enum?.forEach((v, i) => {
        const bad = valueType === undefined || typeof v !== valueType || (s.type === 'integer' && !Number.isInteger(v));
        if (bad) ctx.addIssue({ code: 'custom', path: ['enum', i], message: `enum value ${JSON.stringify(v)} is not of type ${s.type}` });
      });
      if (s.pattern !== undefined) {
        try {
          new RegExp(s.pattern, 'u');
        } catch (e) {
          ctx.addIssue({ code: 'custom', path: ['pattern'], message: `invalid pattern: ${(e as Error).message}` });
        }
      }
      for (const [lo, hi] of [
        ['minimum', 'maximum'],
        ['minLength', 'maxLength'],
        ['minItems', 'maxItems'],
      ] as const) {
        const a = s[lo];
        const b = s[hi];
        if (a !== undefined && b !== undefined && a > b)
          ctx.addIssue({ code: 'custom', path: [lo], message: `${lo} ${a} is above ${hi} ${b}` });
      }
    }),
);

/** Compiles a (validated) input schema to the zod schema that checks action requests. */
export function compileInputSchema(s: InputSchema): z.ZodType<unknown> {
  let t: z.ZodType<unknown>;
  switch (s.type) {
    case 'string': {
      let x = z.string();
      if (s.minLength !== undefined) x = x.min(s.minLength);
      if (s.maxLength !== undefined) x = x.max(s.maxLength);
      // JSON Schema patterns are unanchored ECMAScript regular expressions with unicode semantics.
      if (s.pattern !== undefined) x = x.regex(new RegExp(s.pattern, 'u'), { error: `must match ${s.pattern}` });
      t = x;
      break;
    }
    case 'number':
    case 'integer': {
      let x = s.type === 'integer' ? z.number().int() : z.number();
      if (s.minimum !== undefined) x = x.min(s.minimum);
      if (s.maximum !== undefined) x = x.max(s.maximum);
      t = x;
      break;
    }
    case 'boolean':
      t = z.boolean();
      break;
    case 'array': {
      let x = z.array(s.items ? compileInputSchema(s.items) : z.unknown());
      if (s.minItems !== undefined) x = x.min(s.minItems);
      if (s.maxItems !== undefined) x = x.max(s.maxItems);
      t = x;
      break;
    }
    case 'object': {
      const required = new Set(s.required ?? []);
      const shape: Record<string, z.ZodType<unknown>> = {};
      for (const [name, prop] of Object.entries(s.properties ?? {})) {
        const compiled = compileInputSchema(prop);
        shape[name] = required.has(name) ? compiled : compiled.optional();
      }
      const obj = z.object(shape);
      t = s.additionalProperties === true ? obj.loose() : obj.strict();
      break;
    }
  }
  if (s.enum) t = t.pipe(z.literal(s.enum as [string | number | boolean, ...(string | number | boolean)[]]));
  return t;
}

/** The declared schema as plain JSON Schema, with the defaults made explicit (for tools and docs). */
export function toJsonSchema(s: InputSchema): Record<string, unknown> {
  const out: Record<string, unknown> = { ...s };
  if (s.items) out.items = toJsonSchema(s.items);
  if (s.type === 'object') {
    out.properties = Object.fromEntries(Object.entries(s.properties ?? {}).map(([k, v]) => [k, toJsonSchema(v)]));
    out.additionalProperties = s.additionalProperties ?? false;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Connector documents

const Id = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, { error: 'ids are lower-case letters, digits, ".", "_" and "-", e.g. crm' });

export const ActionName = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/, { error: 'actions are dotted names such as crm.discount.update' });

const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'name an environment variable, e.g. CRM_TOKEN' });

/** An HTTP header name (RFC 9110 token); the ones Regent sets itself cannot be taken over. */
const RESERVED_HEADERS = ['host', 'content-type', 'content-length', 'idempotency-key'];
const HeaderName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: 'not a valid HTTP header name' })
  .refine((h) => !RESERVED_HEADERS.includes(h.toLowerCase()), { error: (iss) => `header ${String(iss.input)} is set by Regent itself` });

const description = z.string().optional();

/** Tool annotations MCP clients see (hints; defaults: not read-only, destructive). */
export const AnnotationsSchema = z
  .object({ readOnlyHint: z.boolean().optional(), destructiveHint: z.boolean().optional(), idempotentHint: z.boolean().optional() })
  .strict()
  .optional();
const annotations = AnnotationsSchema;

function baseUrlProblem(text: string): string | undefined {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return `baseUrl ${JSON.stringify(text)} is not a URL`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `baseUrl must be http or https, got ${u.protocol.replace(/:$/, '')}`;
  // Credentials come from secretEnv only, so they never sit in a file that is versioned and shown.
  if (u.username || u.password) return 'baseUrl must not contain credentials; use auth.secretEnv';
  if (u.search || u.hash || text.includes('?') || text.includes('#')) return 'baseUrl must not have a query or fragment';
  return undefined;
}

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
export const placeholders = (path: string) => [...path.matchAll(PLACEHOLDER)].map((m) => m[1]!);

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
/** Methods that HTTP itself defines as idempotent. */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'PUT', 'DELETE']);

/** Whether a repeat of the operation with the same key is safe: declared, or HTTP's own rule. */
export function restIdempotent(op: { method: string; idempotent?: boolean | undefined; idempotencyKey?: 'honoured' | 'ignored' | undefined }): boolean {
  return op.idempotent ?? (op.idempotencyKey === 'honoured' ? true : IDEMPOTENT_METHODS.has(op.method));
}

const Attributes = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'attribute names are letters, digits and "_"' }),
  z.string(),
);

const RestOperation = z
  .object({
    action: ActionName,
    description,
    annotations,
    method: z.enum(HTTP_METHODS, {
      error: (iss) =>
        iss.input === undefined ? 'required' : `unknown method ${JSON.stringify(iss.input)} (expected ${HTTP_METHODS.join(', ')})`,
    }),
    path: z
      .string()
      .regex(/^\//, { error: 'path starts with "/"' })
      .refine((p) => !/[?#]/.test(p), { error: 'path has no query or fragment (GET sends the input as the query string)' })
      .refine((p) => !/[{}]/.test(p.replace(/\{[A-Za-z_][A-Za-z0-9_]*\}/g, '')), {
        error: 'placeholders are written {name}, with a field name of the input',
      }),
    input: InputSchemaSchema,
    /** attribute name (what the policy sees) → input field */
    attributes: Attributes.default({}),
    /** The business system honours Idempotency-Key, so a repeat with the same key is safe. */
    idempotent: z.boolean().optional(),
    /**
     * `honoured`: the system honours the Idempotency-Key header, so a call whose outcome is
     * unknown is simply repeated with the same key (the same as idempotent: true).
     */
    idempotencyKey: z.enum(['honoured', 'ignored'], { error: 'idempotencyKey is honoured or ignored' }).optional(),
    /**
     * How to ask the system whether a call took effect, for a call whose outcome is unknown:
     * 2xx means it did, 404 or 410 that it did not (or, with `field`, the answer's field says
     * which); any other answer settles nothing. `{idempotencyKey}` and required input fields
     * may stand in the path.
     */
    status: z
      .object({
        method: z.literal('GET', { error: 'a status request is a GET' }).default('GET'),
        path: z
          .string()
          .regex(/^\//, { error: 'path starts with "/"' })
          .refine((p) => !/[?#]/.test(p), { error: 'path has no query or fragment' }),
        field: z.string().min(1).optional(),
        executed: z.array(z.union([z.string(), z.number(), z.boolean()])).min(1).optional(),
        notExecuted: z.array(z.union([z.string(), z.number(), z.boolean()])).min(1).optional(),
        timeoutMs: z.number().int().min(1).max(300_000).optional(),
      })
      .strict()
      .superRefine((st, ctx) => {
        if (st.field && !st.executed && !st.notExecuted)
          ctx.addIssue({ code: 'custom', path: ['field'], message: 'a status field needs the values that mean executed or notExecuted' });
        if (!st.field && (st.executed || st.notExecuted))
          ctx.addIssue({ code: 'custom', path: ['field'], message: 'executed and notExecuted values need the field of the answer they are read from' });
      })
      .optional(),
    timeoutMs: z.number().int().min(1).max(300_000).optional(),
    retries: z.number().int().min(0).max(10).optional(),
  })
  .strict()
  .superRefine((op, ctx) => {
    if (op.idempotencyKey === 'honoured' && op.idempotent === false)
      ctx.addIssue({ code: 'custom', path: ['idempotencyKey'], message: 'idempotencyKey: honoured contradicts idempotent: false' });
    if (op.status && op.input.type === 'object') {
      const props = op.input.properties ?? {};
      const required = new Set(op.input.required ?? []);
      for (const name of placeholders(op.status.path)) {
        if (name === 'idempotencyKey') continue;
        if (!props[name] || !required.has(name))
          ctx.addIssue({
            code: 'custom',
            path: ['status', 'path'],
            message: `status path placeholder {${name}} must be {idempotencyKey} or a required input field`,
          });
      }
    }
    if (op.input.type !== 'object') {
      ctx.addIssue({ code: 'custom', path: ['input', 'type'], message: 'an operation input is type object' });
      return;
    }
    const props = op.input.properties ?? {};
    const required = new Set(op.input.required ?? []);
    for (const name of placeholders(op.path)) {
      const prop = props[name];
      if (!prop) ctx.addIssue({ code: 'custom', path: ['path'], message: `path placeholder {${name}} is not a property of the input` });
      else if (!required.has(name))
        ctx.addIssue({ code: 'custom', path: ['path'], message: `path placeholder {${name}} must be a required input field` });
      else if (!['string', 'number', 'integer'].includes(prop.type))
        ctx.addIssue({
          code: 'custom',
          path: ['path'],
          message: `path placeholder {${name}} must be a string or number, not ${prop.type}`,
        });
    }
    for (const [attr, field] of Object.entries(op.attributes)) {
      if (!props[field])
        ctx.addIssue({
          code: 'custom',
          path: ['attributes', attr],
          message: `attribute ${attr} names "${field}", which is not a property of the input`,
        });
    }
    const idempotent = restIdempotent(op);
    if (!idempotent && op.retries) {
      ctx.addIssue({
        code: 'custom',
        path: ['retries'],
        message: `${op.method} is retried only when idempotent: declare idempotent: true if the system honours Idempotency-Key`,
      });
    }
  });

const kind = z.literal('Connector', { error: (iss) => (iss.input === undefined ? 'required' : 'kind must be Connector') });

/** How a credential goes on HTTP requests (rest, and mcp over Streamable HTTP): a header, an optional scheme, the secret's environment variable. */
const HttpAuth = z
  .object({
    header: HeaderName,
    /** e.g. Bearer; without one the header carries the secret alone (X-Api-Key style). */
    scheme: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/, { error: 'a scheme is one word, e.g. Bearer' })
      .optional(),
    secretEnv: EnvName,
  })
  .strict();

export const RestConnectorSchema = z
  .object({
    kind,
    id: Id,
    type: z.literal('rest'),
    description,
    baseUrl: z.string().superRefine((s, ctx) => {
      const problem = baseUrlProblem(s);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
    auth: HttpAuth.optional(),
    operations: z.array(RestOperation).min(1, { error: 'declare at least one operation' }),
  })
  .strict()
  .superRefine((doc, ctx) => {
    if (baseUrlProblem(doc.baseUrl)) return;
    // A declared path must reach the server as written; the connector refuses any request whose
    // URL the parser rewrote, so a path that needs rewriting would refuse every call.
    const base = new URL(doc.baseUrl);
    const basePath = base.pathname.replace(/\/+$/, '');
    doc.operations.forEach((op, i) => {
      const sample = basePath + op.path.replace(/\{[^{}]*\}/g, 'x');
      if (new URL(base.origin + sample).pathname !== sample) {
        ctx.addIssue({
          code: 'custom',
          path: ['operations', i, 'path'],
          message: `path ${op.path} has characters that must be percent-encoded, or "." / ".." segments`,
        });
      }
    });
  });

export const EmailConnectorSchema = z
  .object({
    kind,
    id: Id,
    type: z.literal('email'),
    description,
    smtp: z
      .object({
        host: z.string().min(1),
        port: z.number().int().min(1).max(65535),
        /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
        secure: z.boolean().optional(),
        auth: z.object({ userEnv: EnvName, passEnv: EnvName }).strict().optional(),
        timeoutMs: z.number().int().min(1).max(300_000).optional(),
      })
      .strict(),
    from: z
      .string()
      .regex(/^([^<>]*<[^\s<>@]+@[^\s<>@]+>|[^\s<>@]+@[^\s<>@]+)$/, {
        error: 'from is an address, e.g. twin@example.com or "Regent <twin@example.com>"',
      }),
    operations: z
      .array(z.object({ action: ActionName, description, annotations }).strict())
      .min(1, { error: 'declare at least one operation, e.g. email.send' }),
  })
  .strict();

export const SandboxConnectorSchema = z
  .object({
    kind,
    id: Id,
    type: z.literal('sandbox'),
    description,
    operations: z
      .array(
        z
          .object({
            action: ActionName,
            /** The built-in simulated operation; defaults to the action's own name. */
            simulates: z
              .enum(SANDBOX_OPERATIONS, {
                error: (iss) => `unknown sandbox operation ${JSON.stringify(iss.input)} (known: ${SANDBOX_OPERATIONS.join(', ')})`,
              })
              .optional(),
            description,
            annotations,
          })
          .strict()
          .superRefine((op, ctx) => {
            if (!op.simulates && !(SANDBOX_OPERATIONS as readonly string[]).includes(op.action)) {
              ctx.addIssue({
                code: 'custom',
                path: ['action'],
                message: `${op.action} is not a sandbox operation; add simulates: naming one of ${SANDBOX_OPERATIONS.join(', ')}`,
              });
            }
          }),
      )
      .min(1, { error: 'declare at least one operation' }),
  })
  .strict();

/** An MCP tool name (the spec's: 1-128 of letters, digits, "_", "-", "." and "/"). */
const ToolName = z.string().regex(/^[A-Za-z0-9_./-]{1,128}$/, { error: 'an MCP tool name: letters, digits, "_", "-", "." and "/"' });

/** A stdio server's environment value: a literal, or a secret read from Regent's environment. */
const McpEnvValue = z.union([z.string(), z.object({ secretEnv: EnvName }).strict()], {
  error: 'an env value is a string or { secretEnv: NAME }',
});

/**
 * Where the server is: `command` (stdio: Regent runs it) or `url` (Streamable HTTP), one object
 * so that a mistake is reported at its own field.
 */
const McpServer = z
  .object({
    command: z.string().min(1, { error: 'name the program to run, e.g. node' }).optional(),
    args: z.array(z.string()).optional(),
    /** The server's whole environment (plus a minimal PATH): nothing of Regent's own is passed on. */
    env: z.record(EnvName, McpEnvValue).optional(),
    cwd: z.string().min(1).optional(),
    url: z
      .string()
      .superRefine((s, ctx) => {
        const problem = baseUrlProblem(s);
        if (problem) ctx.addIssue({ code: 'custom', message: problem.replace(/^baseUrl/, 'url').replace('auth.secretEnv', 'server.auth.secretEnv') });
      })
      .optional(),
    auth: HttpAuth.optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if ((s.command === undefined) === (s.url === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'server needs either command (a stdio server Regent runs) or url (Streamable HTTP), not both' });
      return;
    }
    if (s.url !== undefined) {
      for (const k of ['args', 'env', 'cwd'] as const)
        if (s[k] !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: `${k} applies to a stdio server (command), not to url` });
    } else if (s.auth !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['auth'], message: 'auth applies to a Streamable HTTP server (url); give a stdio server its secrets in env: { NAME: { secretEnv: VAR } }' });
    }
  });

const McpOperation = z
  .object({
    action: ActionName,
    /** The upstream tool this action calls; other upstream tools are invisible. */
    tool: ToolName,
    description,
    annotations,
    /** Omitted: the upstream tool's own input schema, pinned at first load. */
    input: InputSchemaSchema.optional(),
    /** attribute name (what the policy sees) → input field */
    attributes: Attributes.default({}),
    /** A repeat with the same arguments is safe: only then is a call retried or repeated after an unknown outcome. */
    idempotent: z.boolean().optional(),
    /** A read-only upstream tool called with the same arguments for the approver's preview. */
    preview: ToolName.optional(),
  })
  .strict()
  .superRefine((op, ctx) => {
    if (!op.input) return;
    if (op.input.type !== 'object') {
      ctx.addIssue({ code: 'custom', path: ['input', 'type'], message: 'an operation input is type object' });
      return;
    }
    const props = op.input.properties ?? {};
    for (const [attr, field] of Object.entries(op.attributes)) {
      if (!props[field])
        ctx.addIssue({ code: 'custom', path: ['attributes', attr], message: `attribute ${attr} names "${field}", which is not a property of the input` });
    }
  });

export const McpConnectorSchema = z
  .object({
    kind,
    id: Id,
    type: z.literal('mcp'),
    description,
    server: McpServer,
    /** How long one upstream call may take (also connecting); then it is cut off. */
    timeoutMs: z.number().int().min(1).max(300_000).optional(),
    operations: z.array(McpOperation).min(1, { error: 'declare at least one operation' }),
  })
  .strict();

export const ConnectorSchema = z.discriminatedUnion('type', [RestConnectorSchema, EmailConnectorSchema, SandboxConnectorSchema, McpConnectorSchema], {
  error: (iss) =>
    iss.code === 'invalid_union' && 'note' in iss && iss.note === 'No matching discriminator'
      ? (iss.input as { type?: unknown } | undefined)?.type === undefined
        ? 'required'
        : `unknown connector type ${JSON.stringify((iss.input as { type?: unknown }).type)} (expected rest, email, sandbox or mcp)`
      : undefined,
});

export type RestConnectorDoc = z.infer<typeof RestConnectorSchema>;
export type RestOperationDoc = RestConnectorDoc['operations'][number];
export type EmailConnectorDoc = z.infer<typeof EmailConnectorSchema>;
export type SandboxConnectorDoc = z.infer<typeof SandboxConnectorSchema>;
export type McpConnectorDoc = z.infer<typeof McpConnectorSchema>;
export type McpOperationDoc = McpConnectorDoc['operations'][number];
export type ConnectorDoc = z.infer<typeof ConnectorSchema>;

/** The environment variables a document needs set (its secrets). */
export function secretEnvNames(doc: ConnectorDoc): { path: (string | number)[]; name: string }[] {
  if (doc.type === 'rest' && doc.auth) return [{ path: ['auth', 'secretEnv'], name: doc.auth.secretEnv }];
  if (doc.type === 'email' && doc.smtp.auth) {
    return [
      { path: ['smtp', 'auth', 'userEnv'], name: doc.smtp.auth.userEnv },
      { path: ['smtp', 'auth', 'passEnv'], name: doc.smtp.auth.passEnv },
    ];
  }
  if (doc.type === 'mcp') {
    const server = doc.server;
    if (server.url !== undefined) return server.auth ? [{ path: ['server', 'auth', 'secretEnv'], name: server.auth.secretEnv }] : [];
    return Object.entries(server.env ?? {}).flatMap(([k, v]) => (typeof v === 'object' ? [{ path: ['server', 'env', k, 'secretEnv'], name: v.secretEnv }] : []));
  }
  return [];
}
