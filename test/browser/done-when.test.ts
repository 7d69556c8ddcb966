/**
 * The first day, in the browser only: a new installation's admin signs in with the printed
 * key, creates an executive, an approver and a twin; the executive assigns an objective; the
 * approver approves what the twin asked for in the inbox, and it runs.
 */
import type { Browser } from 'playwright-core';
import {
  AUTHORITY,
  DISCOUNT_PLAYBOOK,
  OPTIONAL_ROUTES,
  describeBrowser,
  launchBrowser,
  openPage,
  signIn,
  startServer,
  type TestServer,
  type Watched,
} from './support';

describeBrowser('done when: from the first admin key to an approved objective, all in the browser', () => {
  let s: TestServer;
  let browser: Browser;
  let w: Watched;

  beforeAll(async () => {
    // The installation's policies: an authority for Vic's sales twin and a playbook it can follow.
    s = await startServer({ 'vic-sales-twin': AUTHORITY('vic-sales-twin', 'vic') }, { 'playbooks/renewal-offer.yaml': DISCOUNT_PLAYBOOK });
    browser = await launchBrowser();
    w = await openPage(browser);
    w.expectError(OPTIONAL_ROUTES, 404);
  });

  afterAll(async () => {
    await w?.close();
    await browser?.close();
    await s?.close();
  });

  /** Adds a user through the admin page and returns the key the dialog shows once. */
  async function addUser(name: string, role: string, business = ''): Promise<string> {
    const { page } = w;
    await page.getByRole('button', { name: 'Add user' }).click();
    const add = page.getByRole('dialog', { name: 'Add a user' });
    await add.getByLabel('Name').fill(name);
    await add.getByLabel('Id (optional)').fill(name.toLowerCase());
    await add.getByLabel(role).check();
    if (business) await add.getByLabel('Business roles (optional)').fill(business);
    await add.getByRole('button', { name: 'Add user' }).click();
    const shown = page.getByRole('dialog', { name: `${name} can sign in` });
    const key = await shown.getByLabel('API key').inputValue();
    await shown.getByRole('button', { name: 'Done' }).click();
    await shown.waitFor({ state: 'detached' });
    return key;
  }

  it('is done', async () => {
    const { page } = w;

    // 1. The admin signs in with the key `npm start` printed.
    await signIn(w, s.url, s.adminKey);
    await page.getByRole('link', { name: 'Admin' }).click();

    // 2. An executive and an approver (who holds the business role the authority's tier names).
    const vicKey = await addUser('Vic', 'Executive');
    const saraKey = await addUser('Sara', 'Approver', 'sales-director');
    await page.locator('article.user-card', { hasText: 'Sara' }).getByText('sales-director').waitFor();

    // 3. A twin for Vic, under its authority, in approve mode; its own key is shown once.
    await page.getByRole('link', { name: 'Twins' }).first().click();
    await page.getByRole('button', { name: 'New twin' }).click();
    const nt = page.getByRole('dialog', { name: 'New twin' });
    await nt.getByLabel('Twin id').fill('vic-sales-twin');
    await nt.getByLabel('Works for').selectOption('user:vic');
    expect(await nt.getByLabel('Authority').inputValue()).toBe('vic-sales-twin');
    await nt.getByLabel('Mode').selectOption('approve');
    await nt.getByRole('button', { name: 'Create twin' }).click();
    const twinKeyDialog = page.getByRole('dialog', { name: 'Twin vic-sales-twin created' });
    expect(await twinKeyDialog.getByLabel('API key').inputValue()).toMatch(/^rgt_/);
    await twinKeyDialog.getByRole('button', { name: 'Done' }).click();
    await page.locator('article.twin[data-twin="vic-sales-twin"]').waitFor();
    await w.screenshot('done-when-1-admin');
    await page.getByRole('button', { name: 'Sign out' }).click();

    // 4. Vic assigns an objective from the playbook form.
    await signIn(w, s.url, vicKey);
    const twin = page.locator('article.twin[data-twin="vic-sales-twin"]');
    await twin.getByRole('button', { name: 'Assign objective' }).click();
    const assign = page.getByRole('dialog', { name: 'Assign an objective to vic-sales-twin' });
    await assign.getByLabel('With a playbook').check();
    await assign.getByLabel('Playbook', { exact: true }).selectOption('renewal-offer');
    await assign.getByLabel('Account').fill('acme');
    await assign.getByLabel('Discount Pct').fill('12');
    await assign.getByLabel('Amount').fill('2400.00');
    await assign.getByLabel(/^Objective/).fill('Renew Acme for 2027');
    await assign.getByRole('button', { name: 'Assign' }).click();
    await page.getByRole('heading', { name: 'Renew Acme for 2027' }).waitFor();
    await page.getByText('Pending requests wait in the approvers’ inbox.').waitFor({ timeout: 20_000 });
    await w.screenshot('done-when-2-objective');
    await page.getByRole('button', { name: 'Sign out' }).click();

    // 5. Sara approves the twin's request in the inbox.
    await signIn(w, s.url, saraKey);
    const card = page.locator('article.proposal', { hasText: 'crm.discount.update · acme' });
    await card.getByText('Renewal offer for acme: Renew Acme for 2027').waitFor();
    expect(await card.innerText()).toContain('€2,400.00');
    await w.screenshot('done-when-3-inbox');
    await card.getByRole('button', { name: 'Approve' }).click();
    await card.waitFor({ state: 'detached' });
    await page.getByText(/Nothing is waiting for you/).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();

    // 6. Back with Vic: the objective completed, its request executed against the sandbox CRM.
    await signIn(w, s.url, vicKey);
    await page.locator('article.twin[data-twin="vic-sales-twin"]').getByRole('link', { name: 'Renew Acme for 2027' }).click();
    await page.getByText('executed').first().waitFor({ timeout: 20_000 });
    await page.locator('.page-head .badge', { hasText: 'completed' }).waitFor({ timeout: 20_000 });
    await w.screenshot('done-when-4-completed');
    w.assertClean();
  });
});
