/**
 * Regent's MCP server as clients in the field meet it: the v1 SDK client (2025-era protocol) and
 * the v2 client negotiating 2026-07-28, over Streamable HTTP on loopback, against the whole
 * server (`regent serve`'s wiring) on both databases.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client';
import { call } from '../support/api';
import { describeEachDatabase } from '../support/databases';
import { startRegentApi, vicAuthority, type RegentApi } from '../support/regent-api';

const DISCOUNT = { account: 'acme', discountPct: 12, amount: '1200.00', currency: 'EUR' };

type AnyClient = {
  listTools(): Promise<{ tools: Array<{ name: string; description?: string; inputSchema: Record<string, unknown>; annotations?: Record<string, unknown> }> }>;
  callTool(params: { name: string; arguments?: Record<string, unknown>; _meta?: Record<string, unknown> }, ...rest: unknown[]): Promise<unknown>;
  close(): Promise<void>;
};

interface ToolResult {
  content: Array<{ type: string; text?: string }>;
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
}

describeEachDatabase('MCP gateway (/mcp)', (getDb) => {
  let api: RegentApi;
  const keys: Record<string, string> = {};
  const clients: AnyClient[] = [];

  beforeAll(async () => {
    api = await startRegentApi(getDb(), {
      extraPolicies: { 'authorities/vic-mcp.yaml': vicAuthority('vic-mcp') },
      env: { REGENT_RATE_LIMIT_PER_MINUTE: '0', REGENT_MCP_HOLD_MS: '4000' },
      start: true,
    });
    for (const [id, roles] of [
      ['vic', ['executive']],
      ['sara', ['approver', 'sales-director']],
    ] as const) {
      keys[id] = (await call(`${api.url}/v1/users`, 'POST', api.adminKey, { id, name: id, roles })).body!.apiKey;
    }
    keys.twin = (await call(`${api.url}/v1/twins`, 'POST', keys.vic!, { id: 'vic-mcp', owner: 'user:vic', authority: 'vic-mcp', mode: 'execute' })).body!.apiKey;
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await api?.close();
  });

  const url = () => new URL(`${api.url}/mcp`);
  const auth = (key: string) => ({ requestInit: { headers: { Authorization: `Bearer ${key}` } } });

  async function v1(name = 'v1-agent', version = '1.4.0'): Promise<AnyClient> {
    const c = new V1Client({ name, version });
    await c.connect(new V1Transport(url(), auth(keys.twin!)));
    clients.push(c as unknown as AnyClient);
    return c as unknown as AnyClient;
  }
  async function v2(mode: 'auto' | 'legacy' = 'auto', name = 'v2-agent'): Promise<AnyClient & { getProtocolEra(): string | undefined }> {
    const c = new V2Client({ name, version: '2.4.0' }, mode === 'auto' ? { versionNegotiation: { mode: 'auto' } } : {});
    await c.connect(new V2Transport(url(), auth(keys.twin!)));
    clients.push(c as unknown as AnyClient);
    return c as unknown as AnyClient & { getProtocolEra(): string | undefined };
  }

  it('lists exactly the granted operations and the status tool, shaped as DESIGN.md fixes, to v1 and v2 clients', async () => {
    const modern = await v2('auto');
    expect(modern.getProtocolEra()).toBe('modern');
    for (const c of [await v1(), modern, await v2('legacy')]) {
      const { tools } = await c.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(['crm_discount_update', 'crm_note_create', 'regent_proposal_status']);
      const discount = tools.find((t) => t.name === 'crm_discount_update')!;
      expect(discount.inputSchema).toMatchObject({ type: 'object', required: expect.arrayContaining(['account', 'discountPct']) });
      expect(discount.inputSchema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
      expect(discount.description).toMatch(/vic-mcp v1/);
      expect(discount.description).toMatch(/role:sales-director/);
      expect(discount.annotations).toEqual({ readOnlyHint: false, destructiveHint: true, idempotentHint: true });
      expect(tools.find((t) => t.name === 'regent_proposal_status')!.annotations).toMatchObject({ readOnlyHint: true });
    }
  });

  it('tools/list answers 2026-07-28 clients with private, zero-TTL cache hints (the list varies by credential)', async () => {
    const bodies: string[] = [];
    const recording: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (String(init?.body ?? '').includes('"tools/list"')) bodies.push(await res.clone().text());
      return res;
    };
    const c = new V2Client({ name: 'cache-check', version: '1' }, { versionNegotiation: { mode: 'auto' } });
    await c.connect(new V2Transport(url(), { ...auth(keys.twin!), fetch: recording }));
    clients.push(c as unknown as AnyClient);
    await c.listTools();
    expect(bodies.join('\n')).toMatch(/"ttlMs":0/);
    expect(bodies.join('\n')).toMatch(/"cacheScope":"private"/);
  });

  it('runs an execute-mode call at once, recording the client and protocol in the proposal', async () => {
    const c = await v1('claude-desktop', '1.4');
    const r = (await c.callTool({ name: 'crm_note_create', arguments: { account: 'acme', text: 'called via MCP' } })) as ToolResult;
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toMatchObject({ status: 'executed', decision: { outcome: 'execute' } });
    const id = r.structuredContent!.proposal as string;
    const p = (await call(`${api.url}/v1/proposals/${id}`, 'GET', keys.vic!)).body!;
    expect(p.context).toEqual({ via: 'mcp', mcp: { client: { name: 'claude-desktop', version: '1.4' }, protocol: '2025-11-25', tool: 'crm_note_create' } });
    const m = await v2('auto', 'cursor');
    const r2 = (await m.callTool({ name: 'crm_note_create', arguments: { account: 'acme', text: 'second' } })) as ToolResult;
    const p2 = (await call(`${api.url}/v1/proposals/${r2.structuredContent!.proposal}`, 'GET', keys.vic!)).body!;
    expect(p2.context).toMatchObject({ mcp: { client: { name: 'cursor', version: '2.4.0' }, protocol: '2026-07-28' } });
  });

  it('holds a call that needs approval until an approver approves, with progress, then answers the outcome', async () => {
    const c = await v1();
    const progress: unknown[] = [];
    const pending = c.callTool(
      { name: 'crm_discount_update', arguments: DISCOUNT, _meta: { 'regent/idempotencyKey': 'hold-approve-1' } },
      undefined,
      { onprogress: (p: unknown) => progress.push(p), timeout: 30_000 },
    ) as Promise<ToolResult>;
    let id: string | undefined;
    while (!id) {
      const list = (await call(`${api.url}/v1/proposals?status=pending_approval`, 'GET', keys.sara!)).body!;
      id = list.proposals.find((p: { idempotencyKey: string }) => p.idempotencyKey === 'hold-approve-1')?.id;
      if (!id) await new Promise((r) => setTimeout(r, 50));
    }
    expect((await call(`${api.url}/v1/proposals/${id}/decisions`, 'POST', keys.sara!, { decision: 'approve' })).status).toBe(200);
    const r = await pending;
    expect(r.structuredContent).toMatchObject({ proposal: id, status: 'executed' });
    expect(progress.length).toBeGreaterThanOrEqual(1);
  });

  it('answers pending_approval after the hold, and regent_proposal_status answers later', async () => {
    const c = await v2('auto');
    const r = (await c.callTool({ name: 'crm_discount_update', arguments: { ...DISCOUNT, account: 'globex' }, _meta: { 'regent/idempotencyKey': 'hold-timeout-1' } })) as ToolResult;
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toMatchObject({ status: 'pending_approval', approval: { approvers: ['role:sales-director'], quorum: 1 } });
    expect(r.content[0]!.text).toMatch(/regent_proposal_status/);
    const id = r.structuredContent!.proposal as string;
    await call(`${api.url}/v1/proposals/${id}/decisions`, 'POST', keys.sara!, { decision: 'reject', comment: 'not this quarter' });
    const s = (await c.callTool({ name: 'regent_proposal_status', arguments: { proposal: id } })) as ToolResult;
    expect(s.isError).toBe(true);
    expect(s.structuredContent).toMatchObject({ proposal: id, status: 'rejected' });
  });

  it('refuses bad arguments as an isError result naming the field, journaled; an unknown tool is -32602', async () => {
    const c = await v1();
    const bad = (await c.callTool({ name: 'crm_discount_update', arguments: { account: 'acme', discountPct: 'lots' } })) as ToolResult;
    expect(bad.isError).toBe(true);
    expect(bad.content[0]!.text).toMatch(/discountPct/);
    const none = (await c.callTool({ name: 'crm_note_create' })) as ToolResult;
    expect(none.isError).toBe(true);
    await expect(c.callTool({ name: 'payments_transfer', arguments: {} })).rejects.toMatchObject({ code: -32602 });
    const journal = (await call(`${api.url}/v1/journal?kind=proposal.refused`, 'GET', api.adminKey)).body!;
    const reasons = journal.entries.map((e: { data: { reason: string } }) => e.data.reason).join('\n');
    expect(reasons).toMatch(/discountPct/);
    expect(reasons).toMatch(/unknown tool "payments_transfer"/);
  });

  it('a retried call without an idempotency key is the same request', async () => {
    const c = await v1();
    const args = { account: 'initech', text: `retry ${Date.now()}` };
    const a = (await c.callTool({ name: 'crm_note_create', arguments: args })) as ToolResult;
    const b = (await c.callTool({ name: 'crm_note_create', arguments: args })) as ToolResult;
    expect(b.structuredContent!.proposal).toBe(a.structuredContent!.proposal);
    expect(b.content[0]!.text).toMatch(/made before/);
  });

  it('a person’s key gets a plain 403; no key gets 401 pointing at the protected resource metadata', async () => {
    const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'curl', version: '1' } } };
    const post = (key: string | null, headers: Record<string, string> = {}) =>
      fetch(`${api.url}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
        body: JSON.stringify(init),
      });
    const person = await post(keys.vic!);
    expect(person.status).toBe(403);
    expect(person.headers.get('www-authenticate')).toBeNull();
    expect((await person.json()).detail).toMatch(/twin's API key/);
    const anon = await post(null);
    expect(anon.status).toBe(401);
    expect(anon.headers.get('www-authenticate')).toBe(`Bearer realm="regent", resource_metadata="${api.url}/.well-known/oauth-protected-resource"`);
    const meta = await (await fetch(`${api.url}/.well-known/oauth-protected-resource`)).json();
    expect(meta).toMatchObject({ resource: `${api.url}/mcp`, bearer_methods_supported: ['header'] });
    const rebinding = await post(keys.twin!, { origin: 'http://evil.example' });
    expect(rebinding.status).toBe(403);
    // fetch will not send another Host: a raw request names one, as a rebound DNS name would.
    const otherHost = await new Promise<number>((resolve, reject) => {
      const u = new URL(api.url);
      const req = http.request(
        { host: u.hostname, port: u.port, path: '/mcp', method: 'POST', headers: { host: 'evil.example:80', authorization: `Bearer ${keys.twin}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(init));
    });
    expect(otherHost).toBe(403);
  });

  it('a kill switch, a mode change and a policy reload change what is offered at once, told on subscriptions/listen', async () => {
    const c = (await v2('auto')) as unknown as V2Client;
    let heard = 0;
    c.setNotificationHandler('notifications/tools/list_changed', async () => {
      heard++;
    });
    const sub = await c.listen({ toolsListChanged: true });
    expect(sub.honoredFilter).toMatchObject({ toolsListChanged: true });
    const names = async () => (await c.listTools()).tools.map((t) => t.name).sort();
    const until = async (n: number) => {
      while (heard < n) await new Promise((r) => setTimeout(r, 20));
    };

    await call(`${api.url}/v1/kill-switch`, 'POST', keys.vic!, { engaged: true, twin: 'vic-mcp' });
    await until(1);
    expect(await names()).toEqual(['regent_proposal_status']);
    // A granted tool called while halted is refused (journaled), not unknown.
    const halted = (await c.callTool({ name: 'crm_note_create', arguments: { account: 'acme', text: 'while halted' } })) as ToolResult;
    expect(halted.isError).toBe(true);
    expect(halted.structuredContent).toMatchObject({ proposal: null, status: 'refused' });
    expect(halted.content[0]!.text).toMatch(/kill switch/);
    await call(`${api.url}/v1/kill-switch`, 'POST', keys.vic!, { engaged: false, twin: 'vic-mcp' });
    await until(2);
    expect(await names()).toEqual(['crm_discount_update', 'crm_note_create', 'regent_proposal_status']);

    await call(`${api.url}/v1/twins/vic-mcp/mode`, 'PUT', keys.vic!, { mode: 'propose' });
    await until(3);
    const proposeMode = (await c.listTools()).tools.find((t) => t.name === 'crm_note_create')!;
    expect(proposeMode.description).toMatch(/propose mode/);
    const proposed = (await c.callTool({ name: 'crm_note_create', arguments: { account: 'acme', text: 'in propose mode' } })) as ToolResult;
    expect(proposed.structuredContent).toMatchObject({ status: 'proposed' });
    await call(`${api.url}/v1/twins/vic-mcp/mode`, 'PUT', keys.vic!, { mode: 'execute' });
    await until(4);

    const file = path.join(api.policiesDir, 'authorities/vic-mcp.yaml');
    const original = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, original.replace(/version: 1/, 'version: 2').replace(/  - action: crm\.discount\.update[\s\S]*$/, ''));
    try {
      await api.regent.policy!.reload('system');
      await until(5);
      expect(await names()).toEqual(['crm_note_create', 'regent_proposal_status']);
    } finally {
      fs.writeFileSync(file, original.replace(/version: 1/, 'version: 3'));
      await api.regent.policy!.reload('system');
    }
    await until(6);
    await sub.close();
  });

  it('a client that leaves while its call is held: the proposal stands, and the journal says so', async () => {
    const controller = new AbortController();
    const c = await v1();
    const held = c.callTool({ name: 'crm_discount_update', arguments: { ...DISCOUNT, account: 'umbrella' }, _meta: { 'regent/idempotencyKey': 'leaves-1' } }, undefined, {
      signal: controller.signal,
    });
    let id: string | undefined;
    while (!id) {
      const list = (await call(`${api.url}/v1/proposals?status=pending_approval`, 'GET', keys.sara!)).body!;
      id = list.proposals.find((p: { idempotencyKey: string }) => p.idempotencyKey === 'leaves-1')?.id;
      if (!id) await new Promise((r) => setTimeout(r, 50));
    }
    controller.abort();
    await expect(held).rejects.toBeDefined();
    let left: { data: Record<string, unknown> } | undefined;
    while (!left) {
      const j = (await call(`${api.url}/v1/journal?kind=mcp.call_left`, 'GET', api.adminKey)).body!;
      left = j.entries.find((e: { subject: string }) => e.subject === `proposal:${id}`);
      if (!left) await new Promise((r) => setTimeout(r, 50));
    }
    expect(left.data).toMatchObject({ tool: 'crm_discount_update', status: 'pending_approval' });
    expect((await call(`${api.url}/v1/proposals/${id}`, 'GET', keys.vic!)).body!.status).toBe('pending_approval');
  });

  it('malformed JSON-RPC, unknown methods and huge arguments get clear errors, never a 5xx', async () => {
    const post = (body: string) =>
      fetch(`${api.url}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${keys.twin}`, 'mcp-protocol-version': '2025-11-25' },
        body,
      });
    const notJson = await post('{"jsonrpc": "2.0", "id": 1, "method": ');
    expect(notJson.status).toBe(400);
    const notRpc = await post(JSON.stringify({ hello: 'world' }));
    expect(notRpc.status).toBeGreaterThanOrEqual(400);
    expect(notRpc.status).toBeLessThan(500);
    const c = await v1();
    await expect((c as unknown as V1Client).request({ method: 'resources/list', params: {} } as never, {} as never)).rejects.toBeDefined();
    const huge = await post(
      JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'crm_note_create', arguments: { account: 'acme', text: 'x'.repeat(400_000) } } }),
    );
    expect(huge.status).toBe(413);
    const long = (await c.callTool({ name: 'crm_note_create', arguments: { account: 'acme', text: 'y'.repeat(20_000) } })) as ToolResult;
    expect(long.isError).toBe(true);
    expect(long.content[0]!.text).toMatch(/text/);
  });

  it('journals each client, and the journal verifies', async () => {
    const j = (await call(`${api.url}/v1/journal?kind=mcp.initialized`, 'GET', api.adminKey)).body!;
    const names = j.entries.map((e: { data: { client: { name: string } } }) => e.data.client.name);
    expect(names).toEqual(expect.arrayContaining(['claude-desktop', 'v1-agent', 'cursor']));
    const verified = await call(`${api.url}/v1/journal/verify`, 'GET', api.adminKey);
    expect(verified.body).toMatchObject({ ok: true });
  });
});
