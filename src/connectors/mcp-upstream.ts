/**
 * What the mcp connector does with what an upstream MCP server offers and answers, apart from
 * talking to it: its tool schemas (annotations stripped, compiled to a validator), the server's
 * own environment, and reading tool results.
 */
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/client/validators/ajv';
import { z } from 'zod';
import { MINIMAL_PATH } from './mcp-stdio';
import { compileInputSchema, InputSchemaSchema, toJsonSchema, type McpConnectorDoc } from './schema';

/** Keywords that annotate a schema without constraining it; stripped before it is checked or shown to a model. */
const ANNOTATION_KEYWORDS = new Set(['$schema', '$id', '$comment', 'title', 'description', 'examples', 'default', 'readOnly', 'writeOnly', 'deprecated']);

/**
 * The schema without annotations (which include the upstream's descriptions: untrusted text that
 * never reaches a model). Only schema positions are walked, so a property named `title` stays.
 */
export function withoutAnnotations(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withoutAnnotations);
  if (!schema || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema as Record<string, unknown>)) {
    if (ANNOTATION_KEYWORDS.has(k)) continue;
    if (['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'].includes(k) && v && typeof v === 'object' && !Array.isArray(v))
      out[k] = Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([name, s]) => [name, withoutAnnotations(s)]));
    else if (['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains', 'propertyNames', 'unevaluatedProperties', 'unevaluatedItems'].includes(k))
      out[k] = withoutAnnotations(v);
    else if (['allOf', 'anyOf', 'oneOf', 'prefixItems'].includes(k) && Array.isArray(v)) out[k] = v.map(withoutAnnotations);
    else out[k] = v;
  }
  return out;
}

let ajv: AjvJsonSchemaValidator | undefined;

/**
 * The zod schema that checks requests for an upstream tool's input schema: compiled by Regent's
 * own JSON Schema subset where it fits (strict: unknown fields refused), else checked by the
 * SDK's JSON Schema validator (ajv), else refused with the reason.
 */
export function compileUpstreamSchema(
  schema: Record<string, unknown>,
): { ok: true; input: z.ZodType<Record<string, unknown>>; jsonSchema: Record<string, unknown> } | { ok: false; reason: string } {
  const plain = withoutAnnotations(schema) as Record<string, unknown>;
  if (plain.type !== 'object') return { ok: false, reason: `its input schema is not of type object` };
  const subset = InputSchemaSchema.safeParse(plain);
  if (subset.success) {
    return { ok: true, input: compileInputSchema(subset.data) as z.ZodType<Record<string, unknown>>, jsonSchema: toJsonSchema(subset.data) };
  }
  let validate: (v: unknown) => { valid: boolean; errorMessage?: string | undefined };
  try {
    ajv ??= new AjvJsonSchemaValidator();
    // The original (with its $schema, so the right dialect checks it); annotations do not constrain.
    validate = ajv.getValidator(schema as never);
    validate({}); // a schema the engine cannot compile throws here at the latest
  } catch (err) {
    return { ok: false, reason: `its input schema cannot be checked by Regent: ${(err as Error).message.slice(0, 200)}` };
  }
  const input = z.record(z.string(), z.unknown()).superRefine((v, ctx) => {
    const r = validate(v);
    if (!r.valid) ctx.addIssue({ code: 'custom', message: r.errorMessage ?? 'does not match the tool’s input schema' });
  });
  return { ok: true, input, jsonSchema: plain };
}

/** Whether an error (or one it was caused by) is a refused TCP connection. */
export function refusedConnection(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++)
    if (e.code === 'ECONNREFUSED') return true;
  return false;
}

export const refusing = (reason: string): z.ZodType<Record<string, unknown>> =>
  z.record(z.string(), z.unknown()).superRefine((_v, ctx) => ctx.addIssue({ code: 'custom', message: reason }));

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const short = (h: string) => h.slice(0, 12);

/** Text of a tool result's content blocks, for errors. */
export function contentText(content: unknown): string {
  if (!Array.isArray(content)) return '';
  return content
    .map((c: { type?: string; text?: string }) => (c && c.type === 'text' && typeof c.text === 'string' ? c.text : c?.type ? `[${c.type}]` : ''))
    .filter(Boolean)
    .join('\n');
}

/** Every string in a JSON value passed through `f`. */
export function mapStrings(v: unknown, f: (s: string) => string): unknown {
  if (typeof v === 'string') return f(v);
  if (Array.isArray(v)) return v.map((x) => mapStrings(x, f));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [f(k), mapStrings(x, f)]));
  return v;
}

/** The environment of a stdio server: its declared values (secrets resolved) and PATH, nothing else. */
export function serverEnvironment(doc: McpConnectorDoc, env: Readonly<Record<string, string | undefined>>): { env: Record<string, string>; secrets: string[] } {
  const out: Record<string, string> = {};
  const secrets: string[] = [];
  for (const [k, v] of Object.entries(doc.server.env ?? {})) {
    if (typeof v === 'string') out[k] = v;
    else {
      const value = env[v.secretEnv] ?? '';
      out[k] = value;
      if (value) secrets.push(value);
    }
  }
  out.PATH ??= MINIMAL_PATH;
  return { env: out, secrets };
}

