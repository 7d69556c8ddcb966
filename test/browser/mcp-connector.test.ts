/**
 * An MCP connector in the console: its server's state, an operation suspended because the
 * upstream tool changed (pinned and now side by side), and an admin's Accept, after which the
 * operation runs again. The fixture server (test/fixtures/mcp/fault-server.js) changes its
 * `echo` tool when its state file says so and it is restarted. Any console error, uncaught
 * exception, failed request or unexpected error response fails the test.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { tmpDir } from '../support/databases';
import { OPTIONAL_ROUTES, a11yProblems, describeBrowser, launchBrowser, openPage, signIn, startServer, type TestServer, type Watched } from './support';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'mcp', 'fault-server.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeBrowser('an MCP connector in the console', () => {
  let s: TestServer;
  let browser: Browser;
  let state: string;
  const pages: Watched[] = [];

  beforeAll(async () => {
    state = path.join(tmpDir('regent-browser-mcp-'), 'state');
    fs.writeFileSync(state, 'a');
    s = await startServer(
      {},
      {
        'connectors/fx.yaml': `kind: Connector
id: fx
type: mcp
timeoutMs: 5000
server:
  command: ${process.execPath}
  args: [${FIXTURE}]
  env: { FIXTURE_STATE: ${state} }
operations:
  - action: fx.echo
    tool: echo
    description: Echoes a text back
  - action: fx.die
    tool: die
`,
      },
    );
    browser = await launchBrowser();
  }, 60_000);

  afterEach(async () => {
    const open = pages.splice(0);
    try {
      for (const w of open) w.assertClean();
    } finally {
      for (const w of open) await w.close();
    }
  });

  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  it('shows a suspended operation with the change, and an admin accepts it', async () => {
    const fx = s.regent.connectors!.connectors.get('fx')!;
    // The upstream changes its echo tool, and the server restarts (it dies during a call).
    fs.writeFileSync(state, 'b');
    await fx.execute('fx.die', {}, `browser-die-${Date.now()}`);
    const echo = fx.operations.get('fx.echo')!;
    for (let i = 0; i < 100 && !echo.unavailable?.(); i++) await sleep(100);
    expect(echo.unavailable?.()).toMatch(/suspended/);

    const w = await openPage(browser);
    w.expectError(OPTIONAL_ROUTES, 404);
    pages.push(w);
    await signIn(w, s.url, s.adminKey);
    await w.page.getByRole('link', { name: 'Admin' }).click();
    await w.page.getByRole('link', { name: 'Connectors' }).click();
    const card = w.page.locator('article.card', { hasText: 'fx.echo' });
    await card.getByText('server up').waitFor();
    await card.getByText('suspended', { exact: true }).waitFor();
    const changes = card.getByRole('region', { name: 'Upstream changes of fx' });
    await changes.getByText('Pinned and now').click();
    await changes.getByText('Echoes text, now with a note').waitFor();
    expect(await a11yProblems(w.page)).toEqual([]);
    await w.screenshot('admin-connectors-mcp-suspended');

    await changes.getByRole('button', { name: 'Accept upstream changes' }).click();
    await w.page.getByRole('dialog', { name: 'Accept the upstream changes of fx?' }).getByRole('button', { name: 'Accept changes' }).click();
    await w.page.getByText('Accepted: fx.echo').waitFor();
    await card.getByRole('region', { name: 'Upstream changes of fx' }).waitFor({ state: 'detached' });
    expect(echo.unavailable?.()).toBeUndefined();
    expect(await fx.execute('fx.echo', { text: 'hi', note: 'accepted' }, `browser-echo-${Date.now()}`)).toMatchObject({ ok: true });
  });
});
