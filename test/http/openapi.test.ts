import type { Database } from '../../src/db/database';
import { apiCatalog } from '../../src/http/app';
import { buildSpec } from '../../src/http/openapi';
import { callersOf, openApiPath } from '../../src/http/registry';
import type { RunningServer } from '../../src/http/server';
import { startApi, type Services } from '../support/api';
import { createTestDatabase, type TestDatabase } from '../support/databases';

type Json = Record<string, any>;

/** Every schema node under `node`, with where it is. */
function* nodes(node: unknown, at: string): Generator<[Json, string]> {
  if (Array.isArray(node)) {
    for (const [i, x] of node.entries()) yield* nodes(x, `${at}/${i}`);
  } else if (node && typeof node === 'object') {
    yield [node as Json, at];
    for (const [k, v] of Object.entries(node)) yield* nodes(v, `${at}/${k}`);
  }
}

describe('/openapi.json and /docs', () => {
  let tdb: TestDatabase;
  let db: Database;
  let s: Services & { server: RunningServer };
  let spec: Json;
  const catalog = apiCatalog();

  beforeAll(async () => {
    tdb = await createTestDatabase('embedded');
    db = await tdb.open();
    s = await startApi(db);
    const res = await fetch(`${s.server.url}/openapi.json`);
    expect(res.status).toBe(200);
    spec = (await res.json()) as Json;
  });
  afterAll(async () => {
    await s?.server.close(1000);
    await s?.journal.stop();
    await db?.close();
    await tdb?.drop();
  });

  it('is OpenAPI 3.1 and documents every route of the registry, with who may call it', () => {
    expect(spec.openapi).toBe('3.1.0');
    expect(spec.info).toMatchObject({ title: 'Regent API', version: expect.any(String) });
    const documented = Object.entries(spec.paths as Record<string, Json>).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    expect(documented.sort()).toEqual(catalog.map((e) => `${e.method} ${openApiPath(e.path)}`).sort());
    for (const e of catalog) {
      const op = spec.paths[openApiPath(e.path)][e.method.toLowerCase()];
      expect(op.operationId).toBe(e.id);
      expect(op['x-regent-callers']).toEqual(callersOf(e));
      expect(op.description).toMatch(/\*\*Who may call:\*\*/);
      if (e.access.public) expect(op.security).toEqual([]);
      else {
        expect(op.security).toBeUndefined(); // the document-wide bearer schemes apply
        for (const status of ['401', '403', '429']) expect(op.responses[status].content['application/problem+json'].schema).toEqual({ $ref: '#/components/schemas/Problem' });
      }
    }
    const ids = catalog.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('covers the system routes, the /v1 routes named in DESIGN.md, and objectives and signals', () => {
    const keys = new Set(catalog.map((e) => `${e.method} ${e.path}`));
    for (const k of [
      'GET /healthz',
      'GET /readyz',
      'GET /metrics',
      'GET /openapi.json',
      'POST /v1/users',
      'DELETE /v1/keys/:id',
      'POST /v1/twins',
      'PUT /v1/twins/:id/mode',
      'POST /v1/kill-switch',
      'POST /v1/proposals',
      'GET /v1/proposals',
      'GET /v1/proposals/:id',
      'POST /v1/proposals/:id/decisions',
      'POST /v1/proposals/:id/cancel',
      'POST /v1/proposals/:id/audit',
      'POST /v1/twins/:id/objectives',
      'GET /v1/objectives/:id',
      'POST /v1/signals',
      'GET /v1/journal',
      'GET /v1/journal/kinds',
      'GET /v1/journal/verify',
      'GET /v1/journal/export',
      'GET /v1/journal/checkpoint',
      'GET /v1/journal/proof/:seq',
      'GET /v1/journal/entries/:seq',
      'GET /v1/connectors',
      'GET /v1/policies',
      'GET /v1/policies/versions',
    ]) expect(keys).toContain(k);
  });

  it('documents request bodies from the validating zod schemas, all strict', () => {
    let bodies = 0;
    for (const [p, ops] of Object.entries(spec.paths as Record<string, Json>)) {
      for (const [m, op] of Object.entries(ops as Record<string, Json>)) {
        const schema = op.requestBody?.content?.['application/json']?.schema;
        if (!schema) continue;
        bodies++;
        expect({ at: `${m} ${p}`, type: schema.type }).toEqual({ at: `${m} ${p}`, type: 'object' });
        for (const [node, at] of nodes(schema, `${m} ${p}`)) {
          if (node.type === 'object' && node.properties) expect({ at, additionalProperties: node.additionalProperties }).toEqual({ at, additionalProperties: false });
        }
        expect(op.responses['400']).toBeDefined();
        expect(op.responses['413']).toBeDefined();
      }
    }
    expect(bodies).toBe(catalog.filter((e) => e.body).length);
    // The twin body says what the zod schema says: a known field set, required fields, the mode enum.
    const twin = spec.paths['/v1/twins'].post.requestBody.content['application/json'].schema;
    expect(Object.keys(twin.properties).sort()).toEqual(['authority', 'id', 'mode', 'owner']);
    expect([...twin.required].sort()).toEqual(['authority', 'id', 'owner']);
    expect(twin.properties.mode.enum).toEqual(['propose', 'approve', 'execute']);
  });

  it('documents path and query parameters, and every $ref resolves', () => {
    for (const [p, ops] of Object.entries(spec.paths as Record<string, Json>)) {
      const inPath = [...p.matchAll(/\{(\w+)\}/g)].map((x) => x[1]);
      for (const op of Object.values(ops as Record<string, Json>)) {
        const params = (op.parameters ?? []) as Json[];
        expect(params.filter((x) => x.in === 'path').map((x) => x.name)).toEqual(inPath);
        for (const x of params) expect(x.schema).toBeDefined();
      }
    }
    const journal = spec.paths['/v1/journal'].get.parameters as Json[];
    expect(journal.map((x) => x.name)).toEqual(
      expect.arrayContaining(['kind', 'actor', 'twin', 'proposal', 'outcome', 'from', 'to', 'cursor', 'order', 'limit']),
    );
    expect(journal.find((x) => x.name === 'outcome')!.schema.enum).toEqual(['deny', 'propose', 'approve', 'execute']);
    for (const [node, at] of nodes(spec, '#')) {
      if (typeof node.$ref === 'string') {
        const name = node.$ref.replace('#/components/schemas/', '');
        expect({ at, ref: node.$ref, found: name in spec.components.schemas }).toEqual({ at, ref: node.$ref, found: true });
      }
    }
  });

  it('is the same document buildSpec makes from the registry', () => {
    expect(JSON.parse(JSON.stringify(buildSpec(catalog)))).toEqual(spec);
  });

  it('renders a readable reference page with only local resources and no script', async () => {
    const res = await fetch(`${s.server.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await res.text();
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<html lang="en">');
    expect(html).not.toMatch(/<script|\sstyle=|\son\w+="/i);
    for (const m of html.matchAll(/(?:src|href)="([^"]+)"/g)) expect(m[1]).toMatch(/^(\/|#)/);
    for (const e of catalog) expect(html).toContain(`id="${e.id}"`);
    expect(html).toContain('<a href="/openapi.json">');
    const css = await fetch(`${s.server.url}/docs/docs.css`);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    expect(await css.text()).toMatch(/prefers-color-scheme/);
  });
});
