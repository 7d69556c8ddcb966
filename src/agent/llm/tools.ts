/**
 * The tools a model is offered: exactly the operations in the run's `ctx.tools` (what the twin's
 * authority grants and a connector offers), nothing else. Names are made safe for every
 * OpenAI-compatible server (`^[A-Za-z0-9_-]{1,64}$`) and mapped back to the action through a
 * table, never by reversing the string.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ToolSpec } from '../types';

export interface OfferedTool {
  /** The name the model sees, e.g. `crm_discount_update`. */
  name: string;
  spec: ToolSpec;
  /** The JSON Schema as offered to the model (the operation's schema, minus `$schema`). */
  parameters: Record<string, unknown>;
  /** The operation's schema compiled for a first check of the (restored) arguments; null when it cannot be compiled (the pipeline still checks). */
  validator: z.ZodType<unknown> | null;
}

const MAX_NAME = 64;

function baseName(action: string): string {
  let name = action.replace(/[^A-Za-z0-9_-]/g, '_');
  if (name.length === 0) name = 'tool';
  if (name.length > MAX_NAME) name = `${name.slice(0, MAX_NAME - 9)}_${createHash('sha256').update(action).digest('hex').slice(0, 8)}`;
  return name;
}

/** Offered tools by model-facing name; fails on duplicate actions (a run's tools are a set). */
export function offerTools(specs: ToolSpec[]): Map<string, OfferedTool> {
  const out = new Map<string, OfferedTool>();
  const actions = new Set<string>();
  // Plain code-unit order, so names do not depend on the machine's locale.
  for (const spec of [...specs].sort((a, b) => (a.action < b.action ? -1 : a.action > b.action ? 1 : 0))) {
    if (actions.has(spec.action)) throw new Error(`tool ${spec.action} is offered twice`);
    actions.add(spec.action);
    let name = baseName(spec.action);
    for (let n = 2; out.has(name); n++) {
      const suffix = `_${n}`;
      name = baseName(spec.action).slice(0, MAX_NAME - suffix.length) + suffix;
    }
    const { $schema: _ignored, ...parameters } = spec.inputSchema;
    if (parameters.type === undefined) parameters.type = 'object';
    out.set(name, { name, spec, parameters, validator: compile(parameters) });
  }
  return out;
}

function compile(schema: Record<string, unknown>): z.ZodType<unknown> | null {
  try {
    return z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]) as z.ZodType<unknown>;
  } catch {
    return null;
  }
}

/** Schema problems in the model's terms (paths and rules, never the values themselves). */
export function schemaProblems(tool: OfferedTool, args: Record<string, unknown>): string[] {
  if (!tool.validator) return [];
  const r = tool.validator.safeParse(args);
  if (r.success) return [];
  return r.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(arguments)'}: ${i.message}`);
}
