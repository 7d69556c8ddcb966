/**
 * Loads `policies/connectors/*.yaml` into a registry, all or nothing: every problem in every file
 * is reported with `file:line`, and a registry is only returned when there are none. Secrets are
 * read from the environment here, once, and handed to the connector that owns them.
 */
import { parseDocuments } from '../yaml/documents';
import { readYamlSources } from '../yaml/folder';
import { dotted, valueAt, type Path } from '../yaml/positions';
import { byFile, byPosition, formatProblem, type YamlProblem } from '../yaml/problems';
import type { z } from 'zod';
import type { Sql } from '../db/sql';
import { createEmailConnector } from './email';
import type { Logger } from '../log/logger';
import { createMcpConnector, type McpDeps } from './mcp';
import type { PinJournal } from './pins';
import { createRegistry } from './registry';
import { createRestConnector } from './rest';
import { createSandboxConnector } from './sandbox';
import {
  ConnectorSchema,
  EmailConnectorSchema,
  McpConnectorSchema,
  RestConnectorSchema,
  SandboxConnectorSchema,
  secretEnvNames,
  type ConnectorDoc,
} from './schema';
import type { Connector, ConnectorRegistry } from './types';

/** A problem at `file:line`. */
export type LoadError = YamlProblem;

export interface ConnectorSource {
  /** Label used in messages, e.g. policies/connectors/crm.yaml */
  file: string;
  text: string;
}

export type Env = Readonly<Record<string, string | undefined>>;

export interface ConnectorDeps {
  sql: Sql;
  /** Where MCP connectors journal pins and changes of their upstream tools. */
  journal?: PinJournal;
  /** Where MCP servers' stderr and connection trouble are logged. */
  log?: Logger;
  /** MCP connectors' restart backoff and pin re-check period; tests shorten them. */
  mcp?: Pick<McpDeps, 'backoffMs' | 'maxBackoffMs' | 'recheckMs' | 'stderrLinesPerSecond'>;
  /** Base delay of REST retry backoff; tests shorten it. */
  restBackoffMs?: number;
}

/** A validated document and where it came from. */
export interface CheckedConnector {
  doc: ConnectorDoc;
  file: string;
  lineOf(path: readonly (string | number)[]): number;
}

export type CheckResult = { ok: true; connectors: CheckedConnector[] } | { ok: false; errors: LoadError[] };
export type LoadConnectorsResult = { ok: true; registry: ConnectorRegistry } | { ok: false; errors: LoadError[] };

const SCHEMA_BY_TYPE: Record<string, z.ZodType> = {
  rest: RestConnectorSchema,
  email: EmailConnectorSchema,
  sandbox: SandboxConnectorSchema,
  mcp: McpConnectorSchema,
};

/** Which type's fields an unknown-field message lists: the schema of the document's own `type`. */
const schemaOfType = (data: unknown): z.ZodType | undefined => SCHEMA_BY_TYPE[String(valueAt(data, ['type']))];

/** Checks across documents: unique ids, an action in one connector only, secrets present. */
function crossCheck(connectors: CheckedConnector[], env: Env): LoadError[] {
  const errors: LoadError[] = [];
  const at = (c: CheckedConnector, path: Path) => `${c.file}:${c.lineOf(path)}`;
  const ids = new Map<string, CheckedConnector>();
  const actions = new Map<string, { c: CheckedConnector; i: number }>();
  for (const c of connectors) {
    const first = ids.get(c.doc.id);
    if (first)
      errors.push({ file: c.file, line: c.lineOf(['id']), message: `duplicate connector id "${c.doc.id}" (also in ${at(first, ['id'])})` });
    else ids.set(c.doc.id, c);
    c.doc.operations.forEach((op, i) => {
      const prior = actions.get(op.action);
      if (prior) {
        errors.push({
          file: c.file,
          line: c.lineOf(['operations', i, 'action']),
          message: `action ${op.action} is already declared by connector ${prior.c.doc.id} (${at(prior.c, ['operations', prior.i, 'action'])}); an action belongs to one connector`,
        });
      } else actions.set(op.action, { c, i });
    });
    for (const s of secretEnvNames(c.doc)) {
      // Only the name is ever reported: the value, when there is one, is nobody's business here.
      const value = env[s.name];
      if (!value) {
        errors.push({
          file: c.file,
          line: c.lineOf(s.path),
          message: `environment variable ${s.name} (${dotted(s.path)}) is not set; set it, or rename the file to *.yaml.example to disable connector ${c.doc.id}`,
        });
      } else if (/[\u0000-\u001f\u007f]/.test(value)) {
        // A line break in a header value would be refused by fetch with the value in its message.
        errors.push({
          file: c.file,
          line: c.lineOf(s.path),
          message: `environment variable ${s.name} contains control characters (a line break?); credentials are one line`,
        });
      }
    }
  }
  return errors;
}

/** Validates sources against the schema and each other, without making connectors. */
export function checkConnectorSources(sources: readonly ConnectorSource[], env: Env): CheckResult {
  const { docs: connectors, errors } = parseDocuments([...sources].sort(byFile), ConnectorSchema, 'Connector', schemaOfType);
  errors.push(...crossCheck(connectors, env));
  return errors.length ? { ok: false, errors: errors.sort(byPosition) } : { ok: true, connectors };
}

/** Makes the connector of a checked document; its secrets are read from `env` here and only here. */
function makeConnector(doc: ConnectorDoc, env: Env, deps: ConnectorDeps): Connector {
  switch (doc.type) {
    case 'rest':
      return createRestConnector(doc, doc.auth ? env[doc.auth.secretEnv] : undefined, {
        sql: deps.sql,
        ...(deps.restBackoffMs !== undefined ? { backoffMs: deps.restBackoffMs } : {}),
      });
    case 'email':
      return createEmailConnector(
        doc,
        doc.smtp.auth ? { user: env[doc.smtp.auth.userEnv]!, pass: env[doc.smtp.auth.passEnv]! } : undefined,
        { sql: deps.sql },
      );
    case 'sandbox':
      return createSandboxConnector(doc, { sql: deps.sql });
    case 'mcp':
      return createMcpConnector(doc, env, {
        sql: deps.sql,
        ...(deps.journal ? { journal: deps.journal } : {}),
        ...(deps.log ? { log: deps.log } : {}),
        ...deps.mcp,
      });
  }
}

export function loadConnectorsFromSources(sources: readonly ConnectorSource[], env: Env, deps: ConnectorDeps): LoadConnectorsResult {
  const checked = checkConnectorSources(sources, env);
  if (!checked.ok) return checked;
  return { ok: true, registry: createRegistry(checked.connectors.map((c) => makeConnector(c.doc, env, deps))) };
}

/**
 * Reads `<dir>/connectors/*.yaml` (`*.yaml.example` files are documentation, not loaded). No
 * directory means no connectors: every action is then unknown, and denied.
 */
export const readConnectorSources = (dir: string): ConnectorSource[] => readYamlSources(dir, 'connectors');

/** Loads the connectors of a policies directory (`policies/connectors/*.yaml`). */
export function loadConnectors(dir: string, env: Env, deps: ConnectorDeps): LoadConnectorsResult {
  return loadConnectorsFromSources(readConnectorSources(dir), env, deps);
}

/** `file:line: message` lines, for the CLI and logs. */
export const formatConnectorErrors = (errors: readonly LoadError[]) => errors.map(formatProblem).join('\n');
