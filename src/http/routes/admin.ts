import { createHash } from 'node:crypto';
import { z } from 'zod';
import { checkConnectorSources, readConnectorSources } from '../../connectors/load';
import { acceptChanges, readPins, type Pin } from '../../connectors/pins';
import { NotFoundError } from '../../errors/errors';
import { loadBundleFromSources, readPolicySources, type LoadError, type PolicySource } from '../../policy/load';
import type { ApiDeps } from '../app';
import { endpoint, implement, type ApiModule } from '../registry';
import { Timestamp } from '../schemas';

const VERSION = /^sha256:[0-9a-f]{64}$/;

const OperationSchema = z.object({
  action: z.string(),
  description: z.string().nullable(),
  idempotent: z.boolean(),
  input: z.record(z.string(), z.unknown()).describe('JSON Schema of the operation’s input'),
  unavailable: z.string().nullable().describe('Why the operation cannot be called now (null: it can)'),
  suspended: z.boolean().describe('MCP: its upstream tool changed since it was pinned; waits for an admin to accept'),
});

const HealthSchema = z
  .object({
    state: z.enum(['starting', 'up', 'down']),
    reason: z.string().nullable(),
    since: z.string().nullable(),
  })
  .describe('MCP connectors: whether their server is reached');

/** An MCP operation's pin as the admin reviews it before accepting: the upstream tool as pinned and as now seen. */
const PinSchema = z.object({
  action: z.string(),
  tool: z.string(),
  pinned: z.object({ schemaSha256: z.string(), descriptionSha256: z.string(), description: z.string(), inputSchema: z.record(z.string(), z.unknown()), at: z.string(), by: z.string() }),
  changed: z
    .object({
      missing: z.boolean(),
      schemaSha256: z.string().nullable(),
      descriptionSha256: z.string().nullable(),
      description: z.string().nullable().describe('The upstream’s new description: untrusted text, for review'),
      inputSchema: z.record(z.string(), z.unknown()).nullable(),
      seenAt: z.string(),
    })
    .nullable(),
});

const ConnectorSchema = z
  .object({
    id: z.string(),
    type: z.enum(['rest', 'email', 'sandbox', 'mcp']),
    health: HealthSchema.nullable(),
    operations: z.array(OperationSchema),
    pins: z.array(PinSchema).describe('MCP connectors: what each operation’s upstream tool was pinned to (empty for other types)'),
  })
  .meta({ id: 'Connector', description: 'A connector as the console shows it: never its credentials' });

const AcceptedSchema = z.object({
  connector: z.string(),
  accepted: z.array(
    z.object({
      action: z.string(),
      tool: z.string(),
      old: z.object({ schemaSha256: z.string(), descriptionSha256: z.string() }),
      new: z.object({ schemaSha256: z.string(), descriptionSha256: z.string() }),
    }),
  ),
  missing: z.array(z.string()).describe('Operations whose upstream tool vanished: nothing to pin, they stay suspended'),
});

const FileSchema = z.object({
  file: z.string().describe('e.g. policies/authorities/cfo-twin.yaml'),
  kind: z.enum(['authority', 'connector']),
  sha256: z.string(),
  text: z.string(),
  valid: z.boolean(),
  errors: z.array(z.object({ line: z.number().int(), message: z.string() })),
  inForce: z.boolean().nullable().describe('Authorities: whether this text is the one in force; connectors (loaded at start): null'),
});

const SummarySchema = z.looseObject({
  authorities: z.array(z.string()),
  files: z.array(z.string()),
  previous: z.string().nullable(),
  added: z.array(z.string()),
  removed: z.array(z.string()),
  changed: z.array(z.string()),
});

const VersionSchema = z.object({
  version: z.string(),
  createdAt: Timestamp,
  loadedBy: z.string(),
  summary: SummarySchema,
  inForce: z.boolean(),
});

const endpoints = {
  connectors: endpoint({
    id: 'listConnectors',
    method: 'GET',
    path: '/v1/connectors',
    tag: 'Administration',
    summary: 'Connectors in force: ids, types and operations (never credentials)',
    access: { capabilities: ['connector.manage'] },
    responses: {
      200: {
        description: 'Connectors (empty when the server runs without the pipeline)',
        schema: z.object({ loaded: z.boolean(), connectors: z.array(ConnectorSchema) }),
      },
    },
  }),
  accept: endpoint({
    id: 'acceptConnectorChanges',
    method: 'POST',
    path: '/v1/connectors/:id/accept',
    tag: 'Administration',
    summary: 'Accept the upstream tool changes of an MCP connector: pin them, and resume its suspended operations',
    description:
      'An MCP connector pins each operation’s upstream tool (input schema and description) at first load; a tool that changes suspends the operation until an admin reviews the change (`GET /v1/connectors`, `pins`) and accepts it here. Journaled `connector.accepted`, one entry per operation. Nothing pending: an empty list.',
    access: { capabilities: ['connector.manage'] },
    params: z.object({ id: z.string().min(1).max(200) }).strict(),
    responses: { 200: { description: 'What was accepted', schema: AcceptedSchema } },
    errors: { 404: 'No such connector' },
  }),
  policies: endpoint({
    id: 'listPolicyFiles',
    method: 'GET',
    path: '/v1/policies',
    tag: 'Administration',
    summary: 'Policy files on disk with their validation status, and the version in force',
    description:
      'Authority files are validated together, as a reload would (errors with their line); connector files as at start. `disk.version` is what the files would give if loaded now.',
    access: { capabilities: ['policy.manage'] },
    responses: {
      200: {
        description: 'The files and versions',
        schema: z.object({
          inForce: z.object({ version: z.string(), createdAt: Timestamp.nullable(), loadedBy: z.string().nullable() }).nullable(),
          disk: z.object({ valid: z.boolean(), version: z.string().nullable(), matchesInForce: z.boolean() }),
          errors: z.array(z.object({ file: z.string(), line: z.number().int(), message: z.string() })),
          files: z.array(FileSchema),
        }),
      },
    },
  }),
  versions: endpoint({
    id: 'listPolicyVersions',
    method: 'GET',
    path: '/v1/policies/versions',
    tag: 'Administration',
    summary: 'Every policy version that has been in force, newest first',
    access: { capabilities: ['policy.manage'] },
    query: z
      .object({
        limit: z.coerce.number().int().min(1).max(1000).default(100),
      })
      .strict(),
    responses: {
      200: { description: 'Versions', schema: z.object({ inForce: z.string().nullable(), versions: z.array(VersionSchema) }) },
    },
  }),
  version: endpoint({
    id: 'getPolicyVersion',
    method: 'GET',
    path: '/v1/policies/versions/:version',
    tag: 'Administration',
    summary: 'One recorded policy version with its files',
    access: { capabilities: ['policy.manage'] },
    params: z.object({ version: z.string().regex(VERSION, 'must be sha256:<64 hex digits>').describe('sha256:<hex>') }).strict(),
    responses: {
      200: {
        description: 'The version',
        schema: VersionSchema.extend({ sources: z.array(z.object({ file: z.string(), text: z.string() })) }),
      },
    },
    errors: { 404: 'No such version recorded' },
  }),
};

/** A pin as the console shows it: the upstream tool as pinned, and as last seen when it differs. */
function showPin(p: Pin): z.infer<typeof PinSchema> {
  const c = p.changed;
  return {
    action: p.action,
    tool: p.tool,
    pinned: { schemaSha256: p.schemaSha256, descriptionSha256: p.descriptionSha256, description: p.description, inputSchema: p.inputSchema, at: p.pinnedAt, by: p.pinnedBy },
    changed: !c
      ? null
      : 'missing' in c
        ? { missing: true, schemaSha256: null, descriptionSha256: null, description: null, inputSchema: null, seenAt: c.seenAt }
        : { missing: false, schemaSha256: c.schemaSha256, descriptionSha256: c.descriptionSha256, description: c.description, inputSchema: c.inputSchema, seenAt: c.seenAt },
  };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function byFile(errors: readonly LoadError[]): Map<string, { line: number; message: string }[]> {
  const out = new Map<string, { line: number; message: string }[]>();
  for (const e of errors) {
    const list = out.get(e.file) ?? out.set(e.file, []).get(e.file)!;
    list.push({ line: e.line, message: e.message });
  }
  return out;
}

/** Read-only views for the console's admin pages: connectors, policy files and versions. */
export const adminApi: ApiModule = {
  name: 'admin',
  endpoints: Object.values(endpoints),
  bind(deps: ApiDeps) {
    const history = deps.policyHistory;
    const inForce = () => deps.policy?.version() ?? null;

    return [
      implement(endpoints.connectors, async () => {
        const registry = deps.connectors;
        if (!registry) return { loaded: false, connectors: [] };
        const connectors = await Promise.all(
          [...registry.connectors.values()]
            .sort((a, b) => a.id.localeCompare(b.id))
            .map(async (c) => {
              const health = c.health?.();
              const suspended = new Set((health?.operations ?? []).filter((o) => o.suspended).map((o) => o.action));
              return {
                id: c.id,
                type: c.type,
                health: health ? { state: health.state, reason: health.reason, since: health.since } : null,
                operations: [...c.operations.values()]
                  .sort((a, b) => a.action.localeCompare(b.action))
                  .map((o) => ({
                    action: o.action,
                    description: o.description ?? null,
                    idempotent: o.idempotent,
                    input: o.inputJsonSchema,
                    unavailable: o.unavailable?.() ?? null,
                    suspended: suspended.has(o.action),
                  })),
                pins: c.type === 'mcp' ? [...(await readPins(deps.db.sql, c.id)).values()].sort((a, b) => a.action.localeCompare(b.action)).map(showPin) : [],
              };
            }),
        );
        return { loaded: true, connectors };
      }),

      implement(endpoints.accept, async ({ params }, req) => {
        const connector = deps.connectors?.connectors.get(params.id);
        if (!connector) throw new NotFoundError(`no connector ${params.id} is in force`);
        const r = await acceptChanges(deps.db.sql, deps.journal, connector.id, req.principal.ref);
        await connector.refresh?.().catch(() => undefined);
        return { connector: connector.id, ...r };
      }),

      implement(endpoints.policies, async () => {
        const version = inForce();
        const recorded = version ? await history.findVersion(version) : undefined;
        const inForceText = new Map((recorded?.sources ?? []).map((s: PolicySource) => [s.file, s.text]));
        const dir = deps.policiesDir;
        const errors: LoadError[] = [];
        const files: z.infer<typeof FileSchema>[] = [];
        let diskVersion: string | null = null;
        if (dir) {
          const read = readPolicySources(dir);
          if (!read.ok) errors.push(...read.errors);
          else {
            const loaded = loadBundleFromSources(read.sources);
            if (loaded.ok) diskVersion = loaded.bundle.version;
            else errors.push(...loaded.errors);
            const perFile = byFile(loaded.ok ? [] : loaded.errors);
            for (const s of read.sources) {
              const errs = perFile.get(s.file) ?? [];
              files.push({
                file: s.file,
                kind: 'authority',
                sha256: sha256(s.text),
                text: s.text,
                valid: errs.length === 0,
                errors: errs,
                inForce: inForceText.get(s.file) === s.text,
              });
            }
          }
          const connectorSources = readConnectorSources(dir);
          const checked = checkConnectorSources(connectorSources, process.env);
          const connectorErrors = checked.ok ? [] : checked.errors;
          errors.push(...connectorErrors);
          const perFile = byFile(connectorErrors);
          for (const s of connectorSources) {
            const errs = perFile.get(s.file) ?? [];
            files.push({ file: s.file, kind: 'connector', sha256: sha256(s.text), text: s.text, valid: errs.length === 0, errors: errs, inForce: null });
          }
        }
        return {
          inForce: version ? { version, createdAt: recorded?.createdAt ?? null, loadedBy: recorded?.loadedBy ?? null } : null,
          disk: { valid: dir !== undefined && errors.length === 0, version: diskVersion, matchesInForce: diskVersion !== null && diskVersion === version },
          errors: errors.map((e) => ({ file: e.file, line: e.line, message: e.message })),
          files,
        };
      }),

      implement(endpoints.versions, async ({ query }) => {
        const current = inForce();
        const versions = await history.versions(query.limit);
        return { inForce: current, versions: versions.map((v) => ({ ...v, inForce: v.version === current })) };
      }),

      implement(endpoints.version, async ({ params }) => {
        const v = await history.findVersion(params.version);
        if (!v) throw new NotFoundError(`no recorded policy version ${params.version} (see GET /v1/policies/versions)`);
        return { version: v.version, createdAt: v.createdAt, loadedBy: v.loadedBy, summary: v.summary, inForce: v.version === inForce(), sources: v.sources };
      }),
    ];
  },
};
