/**
 * The web console in Chromium, as each role uses it: approvers decide from the inbox (one by one,
 * in bulk, by keyboard, with edits), executives govern their twins, auditors search, check and
 * export the journal, admins manage people and keys. Any console error, uncaught exception, failed
 * request or unexpected error response fails the test. Screenshots go to test/browser/artifacts/.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { JOURNAL_KINDS } from '../../src/journal/contract';
import {
  ARTIFACTS,
  AUTHORITY,
  DISCOUNT_PLAYBOOK,
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

describeBrowser('the web console', () => {
  let s: TestServer;
  let browser: Browser;
  const keys: Record<string, string> = {};
  let twinKey = '';
  let seq = 0;
  const pages: Watched[] = [];

  beforeAll(async () => {
    s = await startServer({ 'dana-twin': AUTHORITY('dana-twin', 'dana') }, { 'playbooks/renewal-offer.yaml': DISCOUNT_PLAYBOOK });
    for (const [id, roles] of [
      ['dana', ['executive']],
      ['sara', ['approver', 'sales-director']],
      ['audrey', ['auditor']],
    ] as const) {
      const r = await s.api('POST', '/v1/users', s.adminKey, { id, name: id[0]!.toUpperCase() + id.slice(1), roles });
      expect(r.status).toBe(201);
      keys[id] = r.body!.apiKey;
    }
    const t = await s.api('POST', '/v1/twins', keys.dana!, {
      id: 'dana-twin',
      owner: 'user:dana',
      authority: 'dana-twin',
      mode: 'approve',
    });
    expect(t.status).toBe(201);
    twinKey = t.body!.apiKey;
    browser = await launchBrowser();
  });

  afterEach(async () => {
    // Every page of the test must have stayed clean; close them all either way.
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

  async function page(viewport?: { width: number; height: number }): Promise<Watched> {
    const w = await openPage(browser, viewport);
    pages.push(w);
    return w;
  }

  /** The twin asks for a discount (twins use the API, people the console). */
  async function propose(account: string, amount: string, discountPct = 10): Promise<{ id: string; status: string }> {
    const r = await s.api('POST', '/v1/proposals', twinKey, {
      action: 'crm.discount.update',
      args: { account, discountPct, amount, currency: 'EUR' },
      rationale: `Renewal for ${account} is at risk; ${discountPct}% keeps it`,
      idempotencyKey: `browser-${++seq}`,
    });
    expect(r.status).toBe(201);
    return r.body as { id: string; status: string };
  }

  /** No unlabeled controls, landmarks in place, AA contrast: on the page (or open dialog) as it is now. */
  const accessible = async (w: Watched) => expect(await a11yProblems(w.page)).toEqual([]);
  const statusOf = async (id: string) => (await s.api('GET', `/v1/proposals/${id}`, keys.sara!)).body!;
  const card = (w: Watched, id: string) => w.page.locator(`article.proposal[data-id="${id}"]`);

  it('refuses a missing or wrong key with a clear message, and keeps no key', async () => {
    const w = await page();
    w.expectError(/\/v1\/me$/, 401);
    await w.page.goto(s.url);
    await w.page.getByRole('button', { name: 'Sign in' }).click();
    await w.page.getByRole('alert').filter({ hasText: 'Enter your API key' }).waitFor();
    await w.page.getByLabel('API key').fill('rgt_0123456789ab_notarealsecret');
    await w.page.getByRole('button', { name: 'Sign in' }).click();
    const alert = w.page.getByRole('alert').filter({ hasText: 'Cannot sign in' });
    await alert.waitFor();
    expect(await alert.innerText()).toMatch(/not valid/);
    expect(await w.page.evaluate(() => sessionStorage.getItem('regent.apiKey'))).toBeNull();
    expect(await w.page.getByLabel('API key').getAttribute('aria-invalid')).toBe('true');
    await accessible(w);
    await w.screenshot('sign-in-refused');
  });

  it('serves the console under a strict same-origin CSP, with everything local', async () => {
    const r = await fetch(`${s.url}/`);
    expect(r.status).toBe(200);
    const csp = r.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    const html = await r.text();
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script>(?!<)|style=/);
    // The API's own 404 still answers for unknown paths.
    expect((await fetch(`${s.url}/nope`)).status).toBe(404);
  });

  it('lets an approver approve one card and reject another with a reason', async () => {
    const a = await propose('acme', '1200.00');
    const b = await propose('globex', '800.00');
    const w = await page();
    await signIn(w, s.url, keys.sara!);
    expect(await w.page.getByRole('link', { name: 'Inbox' }).getAttribute('aria-current')).toBe('page');
    const ca = card(w, a.id);
    await ca.getByText('Set acme').waitFor(); // the connector's preview has loaded
    const text = await ca.innerText();
    for (const want of [
      'crm.discount.update · acme',
      '€1,200.00',
      'dana-twin',
      'Renewal for acme is at risk',
      'sales-director',
      'left',
      'acme',
    ])
      expect(text).toContain(want);
    expect(text).toMatch(/Approvals\s*0 of 1/);
    await accessible(w);
    await w.screenshot('inbox-approver');

    await ca.getByRole('button', { name: 'Approve' }).click();
    await ca.waitFor({ state: 'detached' });
    expect(['approved', 'executing', 'executed']).toContain((await statusOf(a.id)).status);

    const cb = card(w, b.id);
    await cb.getByRole('button', { name: 'Reject' }).click();
    const dialog = w.page.getByRole('dialog', { name: /Reject crm.discount.update · globex/ });
    await dialog.waitFor();
    // Focus is inside the dialog, on the reason.
    expect(await w.page.evaluate(() => document.activeElement?.tagName)).toBe('TEXTAREA');
    await dialog.getByRole('button', { name: 'Reject' }).click();
    await dialog.getByRole('alert').waitFor();
    expect(await dialog.getByRole('alert').innerText()).toMatch(/reason/i);
    await accessible(w);
    await dialog.getByLabel('Reason').fill('Margin too thin this quarter');
    await dialog.getByRole('button', { name: 'Reject' }).click();
    await dialog.waitFor({ state: 'detached' });
    await cb.waitFor({ state: 'detached' });
    const rejected = await statusOf(b.id);
    expect(rejected.status).toBe('rejected');
    expect(rejected.reviews.map((r: { comment: string }) => r.comment)).toContain('Margin too thin this quarter');
  });

  it('approves and rejects selected cards in bulk, driven by the keyboard', async () => {
    const [p1, p2, p3, p4] = [
      await propose('initech', '300.00'),
      await propose('umbrella', '400.00'),
      await propose('acme', '500.00', 5),
      await propose('globex', '600.00', 5),
    ];
    const w = await page();
    await signIn(w, s.url, keys.sara!);
    for (const p of [p1, p2, p3, p4]) await card(w, p!.id).waitFor();

    // ? shows the shortcuts; Escape closes the dialog and gives focus back.
    await w.page.keyboard.press('?');
    const help = w.page.getByRole('dialog', { name: 'Keyboard shortcuts' });
    await help.waitFor();
    await w.page.keyboard.press('Escape');
    await help.waitFor({ state: 'detached' });

    // Most urgent first: the oldest of these four expires first.
    const order = await w.page.locator('article.proposal').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.id));
    const mine = order.filter((id) => [p1, p2, p3, p4].some((p) => p!.id === id));
    expect(mine).toEqual([p1!.id, p2!.id, p3!.id, p4!.id]);
    const first = order.indexOf(p1!.id);
    for (let i = 0; i <= first; i++) await w.page.keyboard.press('j');
    expect(await w.page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.id)).toBe(p1!.id);
    await w.page.keyboard.press('x');
    await w.page.keyboard.press('j');
    await w.page.keyboard.press('x');
    await w.page.getByText('2 selected').waitFor();
    expect(await card(w, p1!.id).getByRole('checkbox').isChecked()).toBe(true);
    expect(await card(w, p2!.id).getByRole('checkbox').isChecked()).toBe(true);

    await w.page.getByRole('button', { name: 'Approve selected' }).click();
    const confirm = w.page.getByRole('dialog', { name: 'Approve 2 proposals?' });
    await confirm.getByRole('button', { name: 'Approve 2' }).click();
    await card(w, p1!.id).waitFor({ state: 'detached' });
    await card(w, p2!.id).waitFor({ state: 'detached' });
    for (const p of [p1, p2]) expect(['approved', 'executing', 'executed']).toContain((await statusOf(p!.id)).status);

    // r on the current card asks for a reason, then rejects.
    await card(w, p3!.id).focus();
    await w.page.keyboard.press('r');
    const reject = w.page.getByRole('dialog', { name: /Reject/ });
    await reject.getByLabel('Reason').fill('Not this account');
    await reject.getByRole('button', { name: 'Reject' }).click();
    await card(w, p3!.id).waitFor({ state: 'detached' });
    expect((await statusOf(p3!.id)).status).toBe('rejected');

    // Bulk reject asks one reason for all.
    await card(w, p4!.id).getByRole('checkbox').check();
    await w.page.getByRole('button', { name: 'Reject selected' }).click();
    const bulk = w.page.getByRole('dialog', { name: 'Reject 1 proposal?' });
    await bulk.getByLabel('Reason (for all of them)').fill('Pricing review pending');
    await bulk.getByRole('button', { name: 'Reject 1' }).click();
    await card(w, p4!.id).waitFor({ state: 'detached' });
    expect((await statusOf(p4!.id)).status).toBe('rejected');
    await w.screenshot('inbox-after-bulk');
  });

  it('edits a proposal’s args, which policy decides again', async () => {
    const p = await propose('globex', '900.00', 10);
    const w = await page();
    await signIn(w, s.url, keys.sara!);
    const c = card(w, p.id);
    await c.getByRole('button', { name: 'Edit' }).click();
    const dialog = w.page.getByRole('dialog', { name: /Edit crm.discount.update · globex/ });
    await dialog.getByLabel('amount').fill('950.00');
    await accessible(w);
    await w.screenshot('inbox-edit');
    await dialog.getByRole('button', { name: 'Save and re-decide' }).click();
    await dialog.waitFor({ state: 'detached' });
    await w.page.getByText(/policy now says approve/).waitFor();
    await c.getByText('€950.00').waitFor();
    const edited = await statusOf(p.id);
    expect(edited.args.amount).toBe('950.00');
    expect(edited.status).toBe('pending_approval');

    // As JSON: a discount beyond the grant is denied, and the card leaves the inbox.
    await c.getByRole('button', { name: 'Edit' }).click();
    const again = w.page.getByRole('dialog', { name: /Edit/ });
    await again.getByRole('button', { name: 'Edit as JSON' }).click();
    const json = again.getByLabel('Arguments (JSON)');
    const args = JSON.parse(await json.inputValue());
    expect(args).toEqual({ account: 'globex', discountPct: 10, amount: '950.00', currency: 'EUR' });
    await json.fill(JSON.stringify({ ...args, discountPct: 40 }));
    await again.getByRole('button', { name: 'Save and re-decide' }).click();
    await again.waitFor({ state: 'detached' });
    await c.waitFor({ state: 'detached' });
    expect((await statusOf(p.id)).status).toBe('denied');
  });

  it('shows new proposals without a reload, keeping focus and selection where they were', async () => {
    const first = await propose('initech', '111.00');
    const w = await page();
    await signIn(w, s.url, keys.sara!);
    const c = card(w, first.id);
    await c.getByRole('checkbox').check();
    await c.getByRole('button', { name: 'Edit' }).focus();
    const later = await propose('umbrella', '222.00');
    await card(w, later.id).waitFor({ timeout: 12_000 });
    expect(await c.getByRole('checkbox').isChecked()).toBe(true);
    const focused = await w.page.evaluate(() => {
      const a = document.activeElement as HTMLElement | null;
      return { text: a?.textContent, card: a?.closest<HTMLElement>('.proposal')?.dataset.id };
    });
    expect(focused).toEqual({ text: 'Edit', card: first.id });
    // Decided elsewhere (another approver): the card goes away by itself.
    await s.api('POST', `/v1/proposals/${later.id}/decisions`, keys.sara!, { decision: 'reject', comment: 'handled by phone' });
    await card(w, later.id).waitFor({ state: 'detached', timeout: 12_000 });
    await s.api('POST', `/v1/proposals/${first.id}/decisions`, keys.sara!, { decision: 'reject', comment: 'cleanup' });
  });

  it('renders the inbox at phone width without sideways scrolling', async () => {
    const p = await propose('acme', '1750.00');
    const w = await page({ width: 390, height: 844 });
    await signIn(w, s.url, keys.sara!);
    const c = card(w, p.id);
    await c.getByText('Set acme').waitFor();
    expect(await w.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    const box = (await c.getByRole('button', { name: 'Approve' }).boundingBox())!;
    expect(box.x).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width).toBeLessThanOrEqual(390);
    expect(box.height).toBeGreaterThanOrEqual(40); // a thumb-sized target
    await accessible(w);
    await w.screenshot('inbox-phone');
    await c.getByRole('button', { name: 'Approve' }).click();
    await c.waitFor({ state: 'detached' });
  });

  it('lets an executive switch a mode after confirming, stop and resume a twin, and assign a playbook objective', async () => {
    const w = await page();
    w.expectError(OPTIONAL_ROUTES, 404);
    await signIn(w, s.url, keys.dana!);
    expect(await w.page.getByRole('link', { name: 'Twins' }).getAttribute('aria-current')).toBe('page');
    // The inbox is there for requests that name Dana herself; she starts on her twins.
    expect(await w.page.getByRole('link', { name: 'Inbox' }).count()).toBe(1);
    const twin = w.page.locator('article.twin[data-twin="dana-twin"]');
    await twin.waitFor();
    expect(await twin.getByRole('radio', { name: 'Approve' }).isChecked()).toBe(true);
    await accessible(w);

    // Cancelling the confirmation changes nothing.
    await twin.getByRole('radio', { name: 'Execute' }).check();
    const confirm = w.page.getByRole('dialog', { name: 'Switch dana-twin to execute mode?' });
    await confirm.waitFor();
    await w.screenshot('executive-mode-confirm');
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await confirm.waitFor({ state: 'detached' });
    expect(await twin.getByRole('radio', { name: 'Approve' }).isChecked()).toBe(true);
    expect((await s.api('GET', '/v1/twins/dana-twin', keys.dana!)).body!.mode).toBe('approve');

    await twin.getByRole('radio', { name: 'Execute' }).check();
    await w.page
      .getByRole('dialog', { name: 'Switch dana-twin to execute mode?' })
      .getByRole('button', { name: 'Switch to execute' })
      .click();
    await w.page.getByText('dana-twin is now in execute mode.').waitFor();
    expect((await s.api('GET', '/v1/twins/dana-twin', keys.dana!)).body!.mode).toBe('execute');
    await twin.getByRole('radio', { name: 'Approve' }).check();
    await w.page
      .getByRole('dialog', { name: 'Switch dana-twin to approve mode?' })
      .getByRole('button', { name: 'Switch to approve' })
      .click();
    await w.page.getByText('dana-twin is now in approve mode.').waitFor();

    // The twin's own kill switch.
    await twin.getByRole('button', { name: 'Stop this twin' }).click();
    await w.page.getByRole('dialog', { name: 'Stop dana-twin?' }).getByRole('button', { name: 'Stop twin' }).click();
    await twin.getByRole('button', { name: 'Resume this twin' }).waitFor();
    expect((await s.api('GET', '/v1/twins/dana-twin', keys.dana!)).body!.killed).toBe(true);
    await twin.getByRole('button', { name: 'Resume this twin' }).click();
    await w.page.getByRole('dialog', { name: 'Resume dana-twin?' }).getByRole('button', { name: 'Resume twin' }).click();
    await twin.getByRole('button', { name: 'Stop this twin' }).waitFor();
    expect((await s.api('GET', '/v1/twins/dana-twin', keys.dana!)).body!.killed).toBe(false);

    // An objective from the playbook form.
    expect((await s.api('GET', '/v1/playbooks', keys.dana!)).status).toBe(200);
    await twin.getByRole('button', { name: 'Assign objective' }).click();
    const assign = w.page.getByRole('dialog', { name: 'Assign an objective to dana-twin' });
    await assign.getByLabel('With a playbook').check();
    await assign.getByLabel('Playbook', { exact: true }).selectOption('renewal-offer');
    await assign.getByLabel('Account').fill('initech');
    await assign.getByLabel('Discount Pct').fill('12');
    await assign.getByLabel('Amount').fill('1500.00');
    await assign.getByLabel(/^Objective/).fill('Keep Initech for another year');
    await accessible(w);
    await w.screenshot('executive-assign-objective');
    await assign.getByRole('button', { name: 'Assign' }).click();
    await w.page.getByRole('heading', { name: 'Keep Initech for another year' }).waitFor();
    // Its progress: the request it made waits for an approver.
    await w.page.getByText('Pending requests wait in the approvers’ inbox.').waitFor({ timeout: 20_000 });
    await accessible(w);
    await w.screenshot('executive-objective');

    // Cancelling it withdraws the request that still waits.
    await w.page.getByRole('button', { name: 'Cancel objective' }).click();
    const cancel = w.page.getByRole('dialog', { name: 'Cancel this objective?' });
    await cancel.getByLabel('Reason (optional)').fill('Initech signed already');
    await cancel.getByRole('button', { name: 'Cancel objective' }).click();
    await w.page.locator('.page-head .badge', { hasText: 'cancelled' }).waitFor();
    await w.page.locator('table.data .badge', { hasText: 'cancelled' }).waitFor();
  });

  it('lets the global kill switch be engaged and released by an admin, with a banner everywhere', async () => {
    const w = await page();
    w.expectError(OPTIONAL_ROUTES, 404);
    await signIn(w, s.url, s.adminKey);
    await w.page.getByRole('link', { name: 'Twins' }).click();
    await w.page.getByRole('button', { name: 'Stop all twins' }).click();
    await w.page.getByRole('dialog', { name: 'Stop all execution now?' }).getByRole('button', { name: 'Stop all' }).click();
    await w.page.getByText(/Kill switch engaged by user:admin/).waitFor();
    expect((await s.api('GET', '/v1/kill-switch', keys.dana!)).body!.engaged).toBe(true);
    await w.screenshot('admin-kill-switch');
    await w.page.getByRole('button', { name: 'Resume all twins' }).click();
    await w.page
      .getByRole('dialog', { name: /Resume execution/ })
      .getByRole('button', { name: 'Resume all' })
      .click();
    await w.page.getByRole('button', { name: 'Stop all twins' }).waitFor();
    expect((await s.api('GET', '/v1/kill-switch', keys.dana!)).body!.engaged).toBe(false);
    await w.page.getByText(/Kill switch engaged/).waitFor({ state: 'detached' });
  });

  it('lets an auditor search the journal, check an entry’s proof, export, and audit executed actions', async () => {
    // An execute-mode action for the audit queue.
    await s.api('PUT', '/v1/twins/dana-twin/mode', keys.dana!, { mode: 'execute' });
    const small = await s.api('POST', '/v1/proposals', twinKey, {
      action: 'crm.note.create',
      args: { account: 'acme', text: 'Called about the renewal' },
      rationale: 'Keep the account history complete',
      idempotencyKey: `browser-${++seq}`,
    });
    await s.api('PUT', '/v1/twins/dana-twin/mode', keys.dana!, { mode: 'approve' });
    for (let i = 0; i < 100 && (await statusOf(small.body!.id)).status !== 'executed'; i++) await new Promise((r) => setTimeout(r, 100));

    const w = await page();
    w.expectError(OPTIONAL_ROUTES, 404);
    await signIn(w, s.url, keys.audrey!);
    expect(await w.page.getByRole('link', { name: 'Journal' }).getAttribute('aria-current')).toBe('page');
    await w.page.getByText(/intact/).waitFor({ timeout: 20_000 });

    // The Kind filter suggests the kinds the server names (GET /v1/journal/kinds), not a copy.
    await w.page.waitForFunction(() => (document.querySelector('form.filters datalist') as HTMLDataListElement | null)?.options.length);
    const offered = await w.page.locator('form.filters datalist option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(offered).toEqual((await s.api('GET', '/v1/journal/kinds', keys.audrey!)).body!.kinds);
    expect(offered).toEqual([...JOURNAL_KINDS]);

    await w.page.getByLabel('Kind').fill('policy.decided');
    await w.page.getByRole('button', { name: 'Search' }).click();
    const rows = w.page.locator('table.journal tbody tr');
    await rows.first().waitFor();
    const kinds = await rows.locator('td:nth-child(3)').allInnerTexts();
    expect(kinds.length).toBeGreaterThan(0);
    expect(new Set(kinds)).toEqual(new Set(['policy.decided']));
    expect(w.page.url()).toContain('kind=policy.decided');
    await accessible(w);
    await w.screenshot('auditor-journal');

    // Pages follow the cursor: oldest first, ten at a time.
    await w.page.goto(`${s.url}/#/journal?order=asc&limit=10`);
    await w.page.getByText('10 entries shown; more available.').waitFor();
    expect(await rows.locator('td:first-child').allInnerTexts()).toEqual(Array.from({ length: 10 }, (_, i) => `#${i + 1}`));
    await w.page.getByRole('button', { name: 'Load more' }).click();
    await rows.nth(10).waitFor();
    expect((await rows.locator('td:first-child').allInnerTexts()).slice(9, 11)).toEqual(['#10', '#11']);
    // The first new row has focus, so keyboard users carry on where the new entries start.
    expect(await w.page.evaluate(() => document.activeElement?.textContent)).toBe('#11');
    await w.page.goto(`${s.url}/#/journal?kind=policy.decided`);
    await rows.first().waitFor();

    // The entry with its inclusion proof, checked in the browser.
    await rows.first().getByRole('button').click();
    const entry = w.page.getByRole('dialog', { name: /Journal entry #\d+/ });
    await entry.waitFor();
    const served = (await s.api('GET', '/v1/journal/entries/1', keys.audrey!)).status === 200;
    if (served) {
      await entry.getByText('The audit path leads from the leaf to the root').waitFor();
      await entry.getByText('The leaf hash matches the entry').waitFor();
      expect(await entry.locator('.check-bad').count()).toBe(0);
    } else {
      await entry.getByText(/does not serve inclusion proofs/).waitFor();
    }
    await accessible(w);
    await w.screenshot('auditor-entry-proof');
    await entry.getByRole('button', { name: 'Close' }).click();

    // Exports download through fetch with the key.
    const exportServed =
      (await fetch(`${s.url}/v1/journal/export?format=csv`, { headers: { authorization: `Bearer ${keys.audrey}` } })).status === 200;
    if (exportServed) {
      for (const [label, ext] of [
        ['Export JSON lines', 'jsonl'],
        ['Export CSV', 'csv'],
        ['Export signed bundle', 'tar.gz'],
      ] as const) {
        const [download] = await Promise.all([w.page.waitForEvent('download'), w.page.getByRole('button', { name: label }).click()]);
        const file = path.join(ARTIFACTS, `export.${ext}`);
        fs.mkdirSync(ARTIFACTS, { recursive: true });
        await download.saveAs(file);
        expect(fs.statSync(file).size).toBeGreaterThan(0);
        if (ext === 'jsonl')
          for (const line of fs.readFileSync(file, 'utf8').trim().split('\n')) expect(JSON.parse(line).kind).toBe('policy.decided');
      }
    } else {
      await w.page.getByRole('button', { name: 'Export CSV' }).click();
      await w.page.getByText(/Export over HTTP is not available/).waitFor();
    }

    // The post-hoc audit queue: pass the executed note.
    await w.page.getByRole('link', { name: 'Audit queue' }).click();
    const ac = w.page.locator(`article.audit-card[data-key="${small.body!.id}"]`);
    await ac.waitFor();
    await ac.getByRole('button', { name: 'Pass' }).click();
    const pass = w.page.getByRole('dialog', { name: /Pass/ });
    await pass.getByLabel('Comment (optional)').fill('Matches the call log');
    await pass.getByRole('button', { name: 'Pass' }).click();
    await ac.waitFor({ state: 'detached' });
    expect((await statusOf(small.body!.id)).audit).toBe('passed');
  });

  it('lays out every view at phone width without sideways scrolling', async () => {
    const w = await page({ width: 390, height: 844 });
    w.expectError(OPTIONAL_ROUTES, 404);
    await signIn(w, s.url, s.adminKey);
    for (const [hash, ready] of [
      ['#/twins', 'Stop all twins'],
      ['#/journal', 'Search'],
      ['#/admin/users', 'Add user'],
      ['#/admin/twins', 'New twin'],
      ['#/admin/policies', 'Authority files'],
    ] as const) {
      await w.page.goto(`${s.url}/${hash}`);
      await w.page.getByText(ready).first().waitFor();
      await w.page.waitForTimeout(300);
      const width = await w.page.evaluate(() => document.documentElement.scrollWidth);
      expect([hash, width]).toEqual([hash, 390]);
      await w.screenshot(`phone-${hash.replace(/[#/]+/g, '-').slice(1)}`);
    }
  });

  it('lets an admin add a user (key shown once), issue and revoke keys, and read connectors and policies', async () => {
    const w = await page();
    w.expectError(OPTIONAL_ROUTES, 404);
    await signIn(w, s.url, s.adminKey);
    await w.page.getByRole('link', { name: 'Admin' }).click();
    await w.page.getByRole('button', { name: 'Add user' }).click();
    const add = w.page.getByRole('dialog', { name: 'Add a user' });
    await add.getByLabel('Name').fill('Eve Example');
    await add.getByRole('button', { name: 'Add user' }).click();
    await add.getByRole('alert').filter({ hasText: 'at least one role' }).waitFor();
    await add.getByLabel('Approver').check();
    await add.getByLabel('Business roles (optional)').fill('cfo');
    await add.getByRole('button', { name: 'Add user' }).click();
    const shown = w.page.getByRole('dialog', { name: 'Eve Example can sign in' });
    const key = await shown.getByLabel('API key').inputValue();
    expect(key).toMatch(/^rgt_/);
    expect((await s.api('GET', '/v1/me', key)).body).toMatchObject({ id: 'eve-example', roles: ['approver', 'cfo'] });
    await shown.getByRole('button', { name: 'Done' }).click();

    const eve = w.page.locator('article.user-card', { hasText: 'Eve Example' });
    await eve.waitFor();
    await eve.getByRole('button', { name: 'New key' }).click();
    const nk = w.page.getByRole('dialog', { name: 'New API key for Eve Example' });
    await nk.getByLabel('Label (optional)').fill('laptop');
    await nk.getByRole('button', { name: 'Create key' }).click();
    const second = await w.page.getByRole('dialog', { name: 'New key for Eve Example' }).getByLabel('API key').inputValue();
    await w.page.getByRole('dialog', { name: 'New key for Eve Example' }).getByRole('button', { name: 'Done' }).click();
    expect((await s.api('GET', '/v1/me', second)).status).toBe(200);
    await eve.getByRole('button', { name: 'Revoke key laptop of Eve Example' }).click();
    await w.page.getByRole('dialog', { name: 'Revoke key laptop?' }).getByRole('button', { name: 'Revoke key' }).click();
    await eve.getByText('revoked').waitFor();
    expect((await s.api('GET', '/v1/me', second)).status).toBe(401);
    await accessible(w);
    await w.screenshot('admin-users');

    // A refusal from the server (problem+json) is shown in the dialog, naming the field and the error id.
    w.expectError(/\/v1\/twins$/, 400);
    await w.page.getByRole('link', { name: 'Twins' }).nth(1).click();
    await w.page.getByRole('button', { name: 'New twin' }).click();
    const nt = w.page.getByRole('dialog', { name: 'New twin' });
    await nt.getByLabel('Twin id').fill('ghost-twin');
    await nt.getByLabel('Works for').selectOption('user:dana');
    await nt.getByRole('button', { name: 'Create twin' }).click();
    const problem = nt.getByRole('alert');
    await problem.waitFor();
    const said = await problem.innerText();
    expect(said).toMatch(/Not done: Bad request/);
    expect(said).toMatch(/no authority "ghost-twin"/);
    expect(said).toMatch(/error id [0-9a-f-]{36}/);
    expect(await nt.getByLabel('Authority').getAttribute('aria-invalid')).toBe('true');
    await accessible(w);
    await w.screenshot('admin-twin-refused');
    await nt.getByRole('button', { name: 'Cancel' }).click();

    for (const [tab, ok] of [
      ['Connectors', /sandbox|not list connectors/],
      ['Policies', /dana-twin|not list policies/],
    ] as const) {
      await w.page.getByRole('link', { name: tab }).click();
      await w.page.getByText(ok).first().waitFor();
      await accessible(w);
      await w.screenshot(`admin-${tab.toLowerCase()}`);
    }
  });
});
