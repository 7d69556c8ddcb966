import { createHash } from 'node:crypto';
import { z } from 'zod';
import { checkConnectorSources, readConnectorSources } from '../../connectors/load';
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
});

const ConnectorSchema = z
  .object({ id: z.string(), type: z.enum(['rest', 'email', 'sandbox']), operations: z.array(OperationSchema) })
  .meta({ id: 'Connector', description: 'A connector as the console shows it: never its credentials' });

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
        const connectors = [...registry.connectors.values()]
          .sort((a, b) => a.id.localeCompare(b.id))
          .map((c) => ({
            id: c.id,
            type: c.type,
            operations: [...c.operations.values()]
              .sort((a, b) => a.action.localeCompare(b.action))
              .map((o) => ({ action: o.action, description: o.description ?? null, idempotent: o.idempotent, input: o.inputJsonSchema })),
          }));
        return { loaded: true, connectors };
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
