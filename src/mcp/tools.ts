/**
 * The tools Regent's MCP server offers a twin: exactly the connector operations its authority
 * chain grants (toolsFor, the same set the LLM twin is offered), named by the action with every
 * `.` replaced by `_`, plus `regent_proposal_status`. Each description says what the operation
 * does in the authority's own terms (limits, counterparties, that a person may have to approve),
 * so a model can use it without guessing.
 */
import type { ToolSpec } from '../agent/types';
import type { ToolAnnotations } from '../connectors/types';
import type { ConnectorRegistry } from '../connectors/types';
import type { CompiledAuthority, PolicyBundle } from '../policy/engine';
import type { GrantDoc } from '../policy/schema';
import { toolsFor } from '../objectives/tools';

export const STATUS_TOOL = 'regent_proposal_status';

export interface McpTool {
  name: string;
  /** The action the tool requests; null for regent_proposal_status. */
  action: string | null;
  description: string;
  inputSchema: { type: 'object'; [k: string]: unknown };
  annotations: ToolAnnotations & { title?: string };
}

/** A tool's name for an action: DESIGN.md's rule, `.` → `_`. */
export const toolName = (action: string) => action.replace(/\./g, '_');

const STATUS_SCHEMA: McpTool['inputSchema'] = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  required: ['proposal'],
  properties: { proposal: { type: 'string', description: 'The proposal id a governed tool call answered with' } },
  additionalProperties: false,
};

const statusTool: McpTool = {
  name: STATUS_TOOL,
  action: null,
  description:
    'Where one of your action requests stands: its status (pending_approval, approved, executed, rejected, ...), the policy decision with its reasons, ' +
    'and the result once it has run. Use it with the proposal id a tool call returned, e.g. after it answered pending_approval.',
  inputSchema: STATUS_SCHEMA,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true },
};

/** What a twin that may act on nothing right now is offered: the status tool only. */
export const statusOnly = (): McpTool[] => [{ ...statusTool, annotations: { ...statusTool.annotations } }];

/** A JSON Schema 2020-12 object schema of an operation's input. */
function inputSchemaOf(spec: ToolSpec): McpTool['inputSchema'] {
  const { $schema: _declared, ...rest } = spec.inputSchema;
  return { $schema: 'https://json-schema.org/draft/2020-12/schema', ...rest, type: 'object' };
}

function conditionText(when: Record<string, unknown> | undefined): string | null {
  if (!when || Object.keys(when).length === 0) return null;
  const parts = Object.entries(when).map(([field, cond]) => {
    if (cond && typeof cond === 'object' && !Array.isArray(cond)) {
      return Object.entries(cond as Record<string, unknown>)
        .map(([op, v]) => {
          const shown = Array.isArray(v) ? v.join(', ') : String(v);
          switch (op) {
            case '$in':
              return `${field} is one of ${shown}`;
            case '$nin':
              return `${field} is not ${shown}`;
            case '$lte':
              return `${field} at most ${shown}`;
            case '$lt':
              return `${field} below ${shown}`;
            case '$gte':
              return `${field} at least ${shown}`;
            case '$gt':
              return `${field} above ${shown}`;
            case '$ne':
              return `${field} is not ${shown}`;
            case '$eq':
              return `${field} is ${shown}`;
            default:
              return `${field} ${op} ${shown}`;
          }
        })
        .join(' and ');
    }
    return `${field} is ${String(cond)}`;
  });
  return parts.join(' and ');
}

/** One grant in words: when it applies, its limits, who approves. */
function grantText(g: GrantDoc, currency: string): string {
  const bits: string[] = [];
  const when = conditionText(g.when as Record<string, unknown> | undefined);
  bits.push(when ? `when ${when}` : 'for any request');
  const cur = g.currency ?? currency;
  if (g.limits?.perAction) bits.push(`up to ${g.limits.perAction} ${cur} per action`);
  if (g.limits?.perPeriod) bits.push(`${g.limits.perPeriod.amount} ${cur} per ${g.limits.perPeriod.period} in total`);
  if (g.outcome === 'execute') bits.push('runs without a person when within these limits');
  else if (g.outcome === 'approve') bits.push('always needs a person to approve');
  else if (g.outcome === 'propose') bits.push('is only ever proposed for a person to act on');
  const tiers = g.approval?.tiers ?? [];
  if (tiers.length > 0) {
    const t = tiers
      .map((tier) => `above ${tier.above} ${cur}: ${tier.quorum > 1 ? `${tier.quorum} of ` : ''}${tier.approvers.join(', ')}`)
      .join('; ');
    bits.push(`approvers when approval is needed (${t})`);
  }
  return bits.join(', ');
}

/** What the authority chain says of an action, in its own terms. */
export function authorityTerms(authority: CompiledAuthority, action: string): string {
  const grants = authority.doc.grants.filter((g) => g.action === action);
  const lines = grants.map((g) => grantText(g, authority.currency));
  const narrowing = authority.ancestors.length > 0 ? ` Narrowed from ${authority.ancestors.map((a) => a.label).join(' < ')}.` : '';
  const mode = authority.mode !== 'execute' ? ` This authority's ceiling is ${authority.mode}: nothing runs without a person.` : '';
  const hours = authority.hours ? ` Outside ${authority.hours.text} a person must approve.` : '';
  const forbids = (authority.doc.forbid ?? []).filter((f) => f.action === action && f.when && Object.keys(f.when).length > 0);
  const forbidText = forbids.map((f) => ` Refused when ${conditionText(f.when as Record<string, unknown>)}: ${f.reason}.`).join('');
  return `Granted by ${authority.label} (delegated by ${authority.delegator}): ${lines.join('; ')}.${mode}${hours}${forbidText}${narrowing}`;
}

/**
 * The tools a twin with this authority sees now: its granted operations (one implementation with
 * the LLM twin's, toolsFor) and the status tool. Empty but for the status tool while the
 * authority is not in force.
 */
export function mcpToolsFor(bundle: PolicyBundle, registry: ConnectorRegistry, authorityId: string, at = Date.now()): McpTool[] {
  const { tools } = toolsFor(bundle, registry, authorityId, at);
  const authority = bundle.authorities.get(authorityId);
  const out: McpTool[] = [];
  // Two actions can map to one name (crm.a_b and crm_a.b): the first in code-unit order keeps it,
  // the next gets _2, and so on; the status tool's name is never taken.
  const taken = new Set<string>([STATUS_TOOL]);
  for (const spec of tools) {
    let name = toolName(spec.action);
    for (let n = 2; taken.has(name); n++) name = `${toolName(spec.action)}_${n}`;
    taken.add(name);
    const what = spec.description.trim() || `${spec.action} (no description)`;
    const terms = authority ? ` ${authorityTerms(authority, spec.action)}` : '';
    out.push({
      name,
      action: spec.action,
      description:
        `${what.endsWith('.') ? what : `${what}.`}${terms} ` +
        'Every call is an action request Regent decides against this authority and journals; when a person must approve, the answer is pending_approval with the proposal id (ask regent_proposal_status later).',
      inputSchema: inputSchemaOf(spec),
      annotations: spec.annotations ?? { readOnlyHint: false, destructiveHint: true, idempotentHint: false },
    });
  }
  out.push(...statusOnly());
  return out;
}
