/**
 * The MCP story as a new user meets it: an agent's MCP client (the v1 SDK, as Claude Desktop and
 * most agents ship it) calls a tool with the twin's key; the call needs approval and is held; the
 * approver sees it in the console's inbox, marked with the client it came from, and clicks
 * Approve; the held call answers with the executed outcome. Any console error fails the test.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Browser } from 'playwright-core';
import { describeBrowser, launchBrowser, openPage, signIn, startServer, type TestServer, type Watched } from './support';

const AUTHORITY = `kind: Authority
id: dana-twin
version: 1
delegator: user:dana
delegate: twin:dana-twin
parent: null
valid: { from: 2026-01-01T00:00:00Z, until: 2099-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: crm.discount.update
    outcome: approve
    approval:
      tiers:
        - { above: "0", approvers: [role:sales-director], quorum: 1 }
      expiresAfter: PT1H
`;

describeBrowser('an MCP call approved in the console', () => {
  let s: TestServer;
  let browser: Browser;
  let w: Watched | undefined;
  let client: Client | undefined;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    s = await startServer({ 'dana-twin': AUTHORITY }, {}, { REGENT_MCP_HOLD_MS: '50000' });
    for (const [id, roles] of [
      ['dana', ['executive']],
      ['sara', ['approver', 'sales-director']],
    ] as const) keys[id] = (await s.api('POST', '/v1/users', s.adminKey, { id, name: id, roles })).body!.apiKey;
    keys.twin = (await s.api('POST', '/v1/twins', keys.dana!, { id: 'dana-twin', owner: 'user:dana', authority: 'dana-twin', mode: 'execute' })).body!.apiKey;
    browser = await launchBrowser();
  }, 60_000);

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await w?.close();
    await browser?.close();
    await s?.close();
  });

  it('holds the call until the approver clicks Approve, then answers executed', async () => {
    client = new Client({ name: 'claude-desktop', version: '1.4' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${s.url}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${keys.twin}` } } }));
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['crm_discount_update', 'regent_proposal_status']);
    const held = client.callTool(
      { name: 'crm_discount_update', arguments: { account: 'acme', discountPct: 10, amount: '900.00', currency: 'EUR' } },
      undefined,
      { timeout: 60_000 },
    );

    w = await openPage(browser);
    await signIn(w, s.url, keys.sara!);
    const card = w.page.locator('article.proposal').first();
    await card.getByText('via MCP: claude-desktop 1.4').waitFor();
    await w.screenshot('inbox-mcp-call');
    await card.getByRole('button', { name: 'Approve' }).click();
    await card.waitFor({ state: 'detached' });

    const r = (await held) as { structuredContent: Record<string, unknown>; isError?: boolean };
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toMatchObject({ status: 'executed', decision: { outcome: 'approve' } });
    w.assertClean();
  });
});
