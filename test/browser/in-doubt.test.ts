/**
 * Actions in doubt in the web console. A real Regent server, a rest connector whose
 * business system takes the POST and never answers within the operation's timeout: the operation
 * is not idempotent, so each call ends in_doubt. The twin's owner sees them under In doubt (with
 * where to check), cannot settle one without evidence, settles one as "did not take effect" and
 * sees it leave; one settled meanwhile by an admin shows the server's 409 and leaves too; one is
 * settled from the proposal's own page, which then shows who settled it, how and on what evidence.
 * Any console error, uncaught exception, failed request or unexpected error response fails the test.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Request } from 'playwright-core';
import { startReceiver, type Receiver } from '../../src/connectors/testing/receiver';
import {
  ARTIFACTS,
  OPTIONAL_ROUTES,
  a11yProblems,
  describeBrowser,
  launchBrowser,
  openPage,
  signIn,
  startServer,
  type TestServer,
  type Watched,
} from './support';

const TIMEOUT_MS = 300;

const AUTHORITY = `kind: Authority
id: ops-twin
version: 1
description: Browser-test authority for ops-twin, discount requests at a CRM that never answers in time.
delegator: user:olga
delegate: twin:ops-twin
parent: null
valid: { from: 2026-01-01T00:00:00Z, until: 2099-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: crm.discount.request
    outcome: execute
    limits: { perAction: "1000", perPeriod: { amount: "5000", period: month } }
`;

/** Not idempotent (a POST, no idempotent flag, no idempotencyKey: honoured, no status lookup). */
const CONNECTOR = (url: string) => `kind: Connector
id: crm
type: rest
baseUrl: ${url}
operations:
  - action: crm.discount.request
    method: POST
    path: /accounts/{account}/discount-requests
    timeoutMs: ${TIMEOUT_MS}
    input:
      type: object
      required: [account, amount, currency]
      properties: { account: { type: string }, amount: { type: string }, currency: { type: string } }
    attributes: { counterparty: account, amount: amount, currency: currency }
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeBrowser('actions in doubt in the console', () => {
  let s: TestServer;
  let receiver: Receiver;
  let browser: Browser;
  const keys: Record<string, string> = {};
  let twinKey = '';
  let seq = 0;
  const pages: Watched[] = [];

  beforeAll(async () => {
    // The CRM takes every request and answers long after the operation's timeout.
    receiver = await startReceiver(() => ({ status: 201, body: { accepted: true }, delayMs: 30_000 }));
    s = await startServer({ 'ops-twin': AUTHORITY }, { 'connectors/crm.yaml': CONNECTOR(receiver.url) });
    for (const [id, roles] of [
      ['olga', ['executive']],
      ['vic', ['executive']],
      ['audrey', ['auditor']],
    ] as const) {
      const r = await s.api('POST', '/v1/users', s.adminKey, { id, name: id[0]!.toUpperCase() + id.slice(1), roles });
      expect(r.status).toBe(201);
      keys[id] = r.body!.apiKey;
    }
    const t = await s.api('POST', '/v1/twins', keys.olga!, { id: 'ops-twin', owner: 'user:olga', authority: 'ops-twin', mode: 'execute' });
    expect(t.status).toBe(201);
    twinKey = t.body!.apiKey;
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
    await receiver?.close();
  });

  async function page(): Promise<Watched> {
    const w = await openPage(browser);
    w.expectError(OPTIONAL_ROUTES, 404);
    pages.push(w);
    return w;
  }

  const view = async (id: string, key = keys.olga!) => (await s.api('GET', `/v1/proposals/${id}`, key)).body!;

  /** The twin asks for a discount; the call is sent, cut off by the timeout, and ends in doubt. */
  async function inDoubt(account: string, amount: string): Promise<Record<string, any>> {
    const r = await s.api('POST', '/v1/proposals', twinKey, {
      action: 'crm.discount.request',
      args: { account, amount, currency: 'EUR' },
      rationale: `Goodwill discount for ${account}`,
      idempotencyKey: `doubt-${++seq}`,
    });
    expect(r.status).toBe(201);
    expect(r.body!.decision.outcome).toBe('execute');
    const id = r.body!.id as string;
    const end = Date.now() + 20_000;
    let p = await view(id);
    while (['approved', 'executing'].includes(p.status) && Date.now() < end) {
      await sleep(100);
      p = await view(id);
    }
    expect([id, p.status]).toEqual([id, 'in_doubt']);
    return p;
  }

  it('shows the owner each action in doubt with where to check, and settles it only with evidence', async () => {
    const p1 = await inDoubt('acme', '40.00');
    const p2 = await inDoubt('globex', '25.00');
    const p3 = await inDoubt('initech', '15.00');

    // What the API says of a call in doubt (the console shows these fields).
    const sent = receiver.requests.filter((r) => r.method === 'POST' && r.url === '/accounts/acme/discount-requests');
    expect(sent).toHaveLength(1); // never repeated: a repeat could give the discount twice
    const key = sent[0]!.headers['idempotency-key'] as string;
    expect(key).toBeTruthy();
    expect(p1.inDoubt).toMatchObject({
      since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      connector: 'crm',
      checkIn: expect.stringContaining(key),
      error: expect.any(String),
    });
    expect(p1.inDoubt.checkIn).toMatch(/^crm\b/);
    expect(p1.inDoubt.sentAt === null || typeof p1.inDoubt.sentAt === 'string').toBe(true);
    expect(p1.inDoubt.executor === null || typeof p1.inDoubt.executor === 'string').toBe(true);
    expect(p1.reconciliation).toBeNull();
    const listed = (await s.api('GET', '/v1/proposals?status=in_doubt', keys.olga!)).body!.proposals as { id: string }[];
    expect(listed.map((p) => p.id).sort()).toEqual([p1.id, p2.id, p3.id].sort());

    const w = await page();
    const reconcileCalls: Request[] = [];
    w.page.on('request', (r) => {
      if (r.method() === 'POST' && /\/reconcile$/.test(r.url())) reconcileCalls.push(r);
    });
    // Timers stay real until paused below (to hold the list's polling still for one step).
    await w.page.clock.install();
    await signIn(w, s.url, keys.olga!);

    // The nav says how many wait for her, like a badge.
    const navLink = w.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: /In doubt/ });
    await navLink.locator('.nav-count', { hasText: '3' }).waitFor();
    // Read out as "In doubt, 3 waiting".
    expect(await w.page.getByRole('link', { name: /^In doubt\s*,\s*3 waiting$/ }).count()).toBe(1);
    await navLink.click();
    await w.page.getByRole('heading', { level: 1, name: 'In doubt' }).waitFor();
    expect(await navLink.getAttribute('aria-current')).toBe('page');

    const row = (id: string) => w.page.locator(`article.doubt[data-id="${id}"]`);
    const r1 = row(p1.id);
    await r1.waitFor();
    expect(await w.page.locator('article.doubt').count()).toBe(3);
    // textContent: the headings are upper-cased by CSS, which innerText would reflect.
    const text = (await r1.textContent()) ?? '';
    for (const want of [
      'crm.discount.request · acme',
      '€40.00',
      'ops-twin',
      'user:olga',
      'Where to check',
      p1.inDoubt.checkIn,
      p1.inDoubt.lastHeard ?? 'nothing: no answer came',
    ])
      expect([want, text.includes(want)]).toEqual([want, true]);
    if (p1.inDoubt.executor) expect(text).toContain(p1.inDoubt.executor);
    expect(text).toMatch(/in doubt/i);
    // Oldest first.
    const order = await w.page.locator('article.doubt').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.id));
    expect(order).toEqual([p1.id, p2.id, p3.id]);
    expect(await a11yProblems(w.page)).toEqual([]);
    await w.page.screenshot({ path: '/tmp/in-doubt.png', fullPage: true });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    fs.copyFileSync('/tmp/in-doubt.png', path.join(ARTIFACTS, 'in-doubt.png'));

    // No evidence: the form refuses, and nothing is sent.
    await r1.getByLabel('It did not take effect').check();
    await r1.getByRole('button', { name: 'Reconcile' }).click();
    const refusal = r1.getByRole('alert').filter({ hasText: 'Evidence is required' });
    await refusal.waitFor();
    expect(await r1.getByLabel('Evidence').getAttribute('aria-invalid')).toBe('true');
    expect(reconcileCalls).toHaveLength(0);
    expect((await view(p1.id)).status).toBe('in_doubt');

    // With evidence: settled as not executed, the row leaves and a toast confirms.
    const evidence = `Looked in crm for idempotency key ${key}: no discount request on acme.`;
    await r1.getByLabel('Evidence').fill(evidence);
    await r1.getByRole('button', { name: 'Reconcile' }).click();
    await r1.waitFor({ state: 'detached' });
    await w.page.locator('.toast-ok', { hasText: /Reconciled crm\.discount\.request · acme: it did not take effect/ }).waitFor();
    expect(reconcileCalls).toHaveLength(1);
    expect(reconcileCalls[0]!.postDataJSON()).toEqual({ outcome: 'not_executed', evidence });
    await navLink.locator('.nav-count', { hasText: '2' }).waitFor();
    const settled = await view(p1.id);
    expect(settled.status).toBe('failed');
    expect(settled.reconciliation).toMatchObject({ outcome: 'not_executed', evidence, by: 'user:olga', at: expect.any(String) });
    expect(settled.inDoubt).toMatchObject({ checkIn: p1.inDoubt.checkIn }); // kept once settled

    // Settled meanwhile by an admin: the server's 409 is shown, and the row leaves. The page's
    // timers are held so its polling cannot remove the row before the click.
    const r2 = row(p2.id);
    await r2.getByLabel('It took effect').check();
    await r2.getByLabel('Evidence').fill('crm shows the request applied');
    await w.page.clock.pauseAt(Date.now() + 50);
    const byAdmin = await s.api('POST', `/v1/proposals/${p2.id}/reconcile`, s.adminKey, {
      outcome: 'executed',
      evidence: 'Checked by the admin in crm: applied',
    });
    expect(byAdmin.status).toBe(200);
    w.expectError(/\/reconcile$/, 409);
    await r2.getByRole('button', { name: 'Reconcile' }).click();
    await w.page.locator('.toast-error', { hasText: 'Could not reconcile crm.discount.request · globex' }).waitFor();
    await r2.waitFor({ state: 'detached' });
    await w.page.clock.resume();
    expect(await view(p2.id)).toMatchObject({
      status: 'executed',
      reconciliation: { by: expect.stringMatching(/^user:/), outcome: 'executed' },
    });

    // The proposal's own page: what is known of the call, and the form to settle it there.
    await w.page.goto(`${s.url}/#/proposals/${p3.id}?from=in-doubt`);
    await w.page.getByRole('heading', { level: 1, name: 'crm.discount.request · initech' }).waitFor();
    const doubtPanel = w.page.locator('section.doubt-panel');
    await doubtPanel.waitFor();
    expect(await doubtPanel.innerText()).toContain(p3.inDoubt.checkIn);
    expect(await navLink.getAttribute('aria-current')).toBe('page');
    expect(await w.page.getByRole('main').getByRole('link', { name: '← In doubt' }).getAttribute('href')).toBe('#/in-doubt');
    expect(await a11yProblems(w.page)).toEqual([]);
    await doubtPanel.getByLabel('It took effect').check();
    await doubtPanel.getByLabel('Evidence').fill('crm request list shows it applied at 10:02');
    await doubtPanel.getByRole('button', { name: 'Reconcile' }).click();
    const reconciled = w.page.locator('section', { has: w.page.getByRole('heading', { name: 'Reconciled' }) });
    await reconciled.waitFor();
    const settledText = await reconciled.innerText();
    for (const want of ['took effect', 'user:olga', 'crm request list shows it applied at 10:02'])
      expect([want, settledText.includes(want)]).toEqual([want, true]);
    expect(await doubtPanel.count()).toBe(0);
    expect(await w.page.locator('.page-head .badge').innerText()).toBe('executed');
    expect((await view(p3.id)).reconciliation).toMatchObject({ outcome: 'executed', by: 'user:olga' });
    await navLink.locator('.nav-count').waitFor({ state: 'hidden' });

    // A settled one's page shows who settled it, how, and on what evidence.
    await w.page.goto(`${s.url}/#/proposals/${p1.id}?from=in-doubt`);
    await w.page.getByRole('heading', { level: 1, name: 'crm.discount.request · acme' }).waitFor();
    const r = await w.page.locator('section', { has: w.page.getByRole('heading', { name: 'Reconciled' }) }).innerText();
    for (const want of ['did not take effect', 'not_executed', 'user:olga', evidence])
      expect([want, r.includes(want)]).toEqual([want, true]);
    expect(await w.page.locator('.page-head .badge').innerText()).toBe('failed');
    // What was known while it was in doubt stays on the page, folded away.
    const known = w.page.locator('section', { has: w.page.getByRole('heading', { name: 'Reconciled' }) }).locator('details');
    await known.locator('summary').click();
    expect(await known.innerText()).toContain(p1.inDoubt.checkIn);
    await w.screenshot('in-doubt-settled');

    // Nothing is left for her.
    await navLink.click();
    await w.page.getByText('Nothing is in doubt.').waitFor();
  });

  it('answers reconcile as the contract says: owner or admin only, evidence required, once only', async () => {
    const p = await inDoubt('umbrella', '10.00');
    const url = `/v1/proposals/${p.id}/reconcile`;
    const ok = { outcome: 'not_executed', evidence: 'no such request in crm' };

    const twin = await s.api('POST', url, twinKey, ok);
    expect(twin.status).toBe(403);
    expect(twin.headers.get('content-type')).toMatch(/problem\+json/);
    const other = await s.api('POST', url, keys.vic!, ok);
    expect(other.status).toBe(403);
    expect(other.headers.get('content-type')).toMatch(/problem\+json/);
    const auditor = await s.api('POST', url, keys.audrey!, ok);
    expect(auditor.status).toBe(403);

    for (const bad of [
      { outcome: 'not_executed' },
      { outcome: 'not_executed', evidence: '' },
      { outcome: 'not_executed', evidence: '   ' },
      { outcome: 'not_executed', evidence: 'x'.repeat(4001) },
      { outcome: 'maybe', evidence: 'x' },
      { evidence: 'x' },
      { ...ok, extra: true },
    ]) {
      const r = await s.api('POST', url, keys.olga!, bad);
      expect([bad, r.status]).toEqual([bad, 400]);
    }
    expect((await view(p.id)).status).toBe('in_doubt');

    // Who sees it: the owner and the auditor; not another executive.
    const seen = async (k: string) =>
      ((await s.api('GET', '/v1/proposals?status=in_doubt', k)).body!.proposals as { id: string }[]).map((x) => x.id);
    expect(await seen(keys.olga!)).toContain(p.id);
    expect(await seen(keys.audrey!)).toContain(p.id);
    expect(await seen(keys.vic!)).not.toContain(p.id);

    const done = await s.api('POST', url, keys.olga!, ok);
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ status: 'failed', reconciliation: { outcome: 'not_executed', by: 'user:olga' } });
    const again = await s.api('POST', url, keys.olga!, { outcome: 'executed', evidence: 'second thoughts' });
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toMatch(/problem\+json/);
  });
});
