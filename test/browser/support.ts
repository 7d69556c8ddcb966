/**
 * Browser tests: a real Regent server in-process (embedded database in a temp dir) and Chromium
 * driven by playwright-core. Never downloads a browser: without /usr/bin/chromium the suites skip
 * and say so.
 */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { openRegent, type Regent } from '../../src/app';
import { loadConfig } from '../../src/config/config';
import { createHttpApp, httpDepsOf } from '../../src/http/app';
import { listen, type RunningServer } from '../../src/http/server';
import { call } from '../support/api';
import { tmpDir } from '../support/databases';
import { silentLog } from '../support/journal';

export const CHROMIUM = '/usr/bin/chromium';
export const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);
export const ARTIFACTS = path.join(__dirname, 'artifacts');

/** describe, or describe.skip with a note on stderr when there is no Chromium on this machine. */
export function describeBrowser(title: string, suite: () => void): void {
  if (!HAVE_CHROMIUM) {
    process.stderr.write(
      `\nBrowser tests "${title}": SKIPPED — ${CHROMIUM} is missing (apt-get install -y chromium); no browser is ever downloaded\n`,
    );
    describe.skip(`${title} (skipped: no ${CHROMIUM})`, suite);
    return;
  }
  describe(title, suite);
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/** An authority for `twin`, delegated by `owner`, that lets discounts through with one sales-director's approval. */
export const AUTHORITY = (twin: string, owner: string) => `kind: Authority
id: ${twin}
version: 1
description: Browser-test authority for ${twin}.
delegator: user:${owner}
delegate: twin:${twin}
parent: null
valid: { from: 2026-01-01T00:00:00Z, until: 2099-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: crm.discount.update
    outcome: execute
    when: { discountPct: { $lte: 30 } }
    limits: { perAction: "50000" }
    approval:
      tiers:
        - { above: "0", approvers: [role:sales-director], quorum: 1 }
      expiresAfter: PT2H
  - action: crm.note.create
    outcome: execute
    approval:
      tiers:
        - { above: "0", approvers: [role:sales-director], quorum: 1 }
      expiresAfter: PT2H
forbid:
  - { action: crm.discount.update, when: { counterparty: megacorp }, reason: Megacorp pricing is set by the board }
`;

export interface TestServer {
  regent: Regent;
  server: RunningServer;
  url: string;
  adminKey: string;
  dir: string;
  /** fetch against the server with a key (setup that a twin, not a person, does). */
  api(method: string, p: string, key: string | null, body?: unknown): ReturnType<typeof call>;
  close(): Promise<void>;
}

/**
 * A Regent server as `npm start` runs it: the shipped sandbox connector, the authorities given
 * (id → YAML) and other policy files (path → text), an embedded database in a temp dir, and a
 * first admin.
 */
export async function startServer(authorities: Record<string, string>, files: Record<string, string> = {}, env: Record<string, string> = {}): Promise<TestServer> {
  const dir = tmpDir('regent-browser-');
  const policies = path.join(dir, 'policies');
  const shipped = path.join(__dirname, '..', '..', 'policies');
  fs.mkdirSync(path.join(policies, 'authorities'), { recursive: true });
  // The shipped connectors (the sandbox); authorities and playbooks are the test's own, so a
  // change to the shipped examples cannot change what these tests see.
  fs.cpSync(path.join(shipped, 'connectors'), path.join(policies, 'connectors'), { recursive: true });
  for (const [id, yaml] of Object.entries(authorities)) fs.writeFileSync(path.join(policies, 'authorities', `${id}.yaml`), yaml);
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(policies, rel)), { recursive: true });
    fs.writeFileSync(path.join(policies, rel), text);
  }

  const config = loadConfig({
    REGENT_DATA_DIR: path.join(dir, 'data'),
    REGENT_POLICIES_DIR: policies,
    REGENT_CHECKPOINT_INTERVAL_MS: '60000',
    LOG_LEVEL: 'error',
    ...env,
  });
  const regent = await openRegent(config, silentLog, { command: 'jest browser', policies: 'load' });
  let server: RunningServer;
  let adminKey: string;
  try {
    adminKey = (await regent.people.ensureFirstAdmin())!.apiKey;
    // Wired as `regent serve` wires it.
    const app = createHttpApp(httpDepsOf(regent));
    server = await listen(app, '127.0.0.1', 0, silentLog);
  } catch (err) {
    await regent.close();
    throw err;
  }
  regent.proposals?.start();
  regent.objectives?.start();
  return {
    regent,
    server,
    url: server.url,
    adminKey,
    dir,
    api: (method, p, key, body) => call(`${server.url}${p}`, method, key, body),
    async close() {
      await regent.close({ server, graceMs: 1000 });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Allowed {
  url: RegExp;
  status: number;
}

/**
 * A page that fails the test on any console error, uncaught exception, failed request or error
 * response, except the ones a test says it expects (`expectError`).
 */
export class Watched {
  readonly problems: string[] = [];
  private allowed: Allowed[] = [];
  constructor(
    readonly context: BrowserContext,
    readonly page: Page,
  ) {
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const url = msg.location()?.url ?? '';
      const m = /status of (\d{3})/.exec(msg.text());
      if (m && this.isAllowed(url, Number(m[1]))) return;
      this.problems.push(`console error: ${msg.text()} (${url})`);
    });
    page.on('pageerror', (err) => this.problems.push(`uncaught: ${err.message}`));
    page.on('requestfailed', (req) => {
      // Browsers cancel a download's navigation once the file is saved, and a favicon fetch when
      // the page navigates on; neither is a failure of the console.
      if (req.failure()?.errorText === 'net::ERR_ABORTED' && (req.url().startsWith('blob:') || req.url().endsWith('/favicon.svg'))) return;
      this.problems.push(`request failed: ${req.method()} ${req.url()} ${req.failure()?.errorText}`);
    });
    page.on('response', (res) => {
      if (res.status() >= 400 && !this.isAllowed(res.url(), res.status()))
        this.problems.push(`HTTP ${res.status()} ${res.request().method()} ${res.url()}`);
    });
  }

  /** The next responses matching `url` with `status` are expected (e.g. a wrong key's 401). */
  expectError(url: RegExp, status: number): void {
    this.allowed.push({ url, status });
  }

  private isAllowed(url: string, status: number): boolean {
    return this.allowed.some((a) => a.status === status && a.url.test(url));
  }

  assertClean(): void {
    expect(this.problems).toEqual([]);
  }

  async screenshot(name: string): Promise<void> {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await this.page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  }

  async close(): Promise<void> {
    await this.context.close();
  }
}

export async function openPage(browser: Browser, viewport = { width: 1280, height: 900 }): Promise<Watched> {
  const context = await browser.newContext({
    viewport,
    acceptDownloads: true,
    reducedMotion: 'reduce',
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  return new Watched(context, page);
}

/**
 * What an accessibility checker would flag on the page as it is: form controls and buttons
 * without an accessible name, missing landmarks or h1, and text below WCAG AA contrast (4.5:1,
 * 3:1 for large text) against its effective background. Returns the findings (empty is good).
 */
export async function a11yProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    const visible = (e: Element) => {
      const r = e.getBoundingClientRect();
      const cs = getComputedStyle(e);
      return r.width > 0 && r.height > 0 && cs.visibility !== 'hidden' && !e.closest('[hidden], .sr-only');
    };
    const describe = (e: Element) =>
      `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}${e.className && typeof e.className === 'string' ? `.${e.className.split(' ')[0]}` : ''} "${(e.textContent ?? '').trim().slice(0, 40)}"`;
    const scope = document.querySelector('dialog[open]') ?? document.body;

    for (const c of scope.querySelectorAll('input:not([type=hidden]), select, textarea')) {
      if (!visible(c)) continue;
      const el = c as HTMLInputElement;
      const named = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
      if (!named) out.push(`form control without a label: ${describe(c)}`);
    }
    for (const b of scope.querySelectorAll('button, a[href], [role=button]')) {
      if (!visible(b)) continue;
      if (!(b.textContent ?? '').trim() && !b.getAttribute('aria-label')) out.push(`control without a name: ${describe(b)}`);
    }
    if (!document.querySelector('dialog[open]')) {
      if (document.querySelectorAll('main').length !== 1) out.push('there must be exactly one <main>');
      if (!document.querySelector('h1')) out.push('no h1');
      const banner = document.querySelector('header');
      if (banner && !banner.hidden && !document.querySelector('nav[aria-label]')) out.push('the navigation has no label');
    }

    const rgb = (s: string) => (s.match(/[\d.]+/g) ?? []).map(Number);
    const lum = ([r, g, b]: number[]) => {
      const f = (v: number) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
      return 0.2126 * f(r!) + 0.7152 * f(g!) + 0.0722 * f(b!);
    };
    const background = (e: Element | null): number[] => {
      for (let n = e; n; n = n.parentElement) {
        const c = rgb(getComputedStyle(n).backgroundColor);
        if (c.length >= 3 && (c.length < 4 || c[3]! > 0.5)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const seen = new Set<string>();
    for (const e of scope.querySelectorAll('*')) {
      const text = [...e.childNodes]
        .filter((n) => n.nodeType === 3)
        .map((n) => n.textContent ?? '')
        .join('')
        .trim();
      if (!text || !visible(e)) continue;
      if (e.closest(':disabled, [aria-disabled=true], .leaving') || e.closest('dialog:not([open])')) continue;
      // Translucent ancestors (fading cards) are transitions, not the resting state.
      let faded = false;
      for (let n: Element | null = e; n; n = n.parentElement) if (Number(getComputedStyle(n).opacity) < 1) faded = true;
      if (faded) continue;
      const cs = getComputedStyle(e);
      const fg = rgb(cs.color);
      const bg = background(e);
      const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      const ratio = (l1! + 0.05) / (l2! + 0.05);
      const size = parseFloat(cs.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(cs.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) {
        const msg = `contrast ${ratio.toFixed(2)} for ${describe(e)} (${cs.color} on rgb(${bg.join(',')}))`;
        if (!seen.has(msg)) out.push(msg);
        seen.add(msg);
      }
    }
    return out;
  });
}

/** Signs in through the form and waits for the signed-in shell. */
export async function signIn(w: Watched, url: string, key: string): Promise<void> {
  // After signing out the form is already there; otherwise open the console.
  if (!w.page.url().startsWith(url) || !(await w.page.getByLabel('API key').isVisible())) await w.page.goto(url);
  await w.page.getByLabel('API key').fill(key);
  await w.page.getByRole('button', { name: 'Sign in' }).click();
  await w.page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/** A playbook whose one step asks for a renewal discount: an objective that needs no model. */
export const DISCOUNT_PLAYBOOK = `kind: Playbook
id: renewal-offer
title: Offer a renewal discount
description: Offers a key account a discount on its renewal, through the approvers.
params:
  type: object
  required: [account, discountPct, amount]
  properties:
    account: { type: string, description: "The customer account, e.g. acme" }
    discountPct: { type: number, minimum: 0, maximum: 30, description: "Discount in percent" }
    amount: { type: string, description: "What the discount is worth, e.g. 1500.00" }
defaults: {}
steps:
  - id: discount
    title: Set the discount
    action: crm.discount.update
    args: { account: "{{params.account}}", discountPct: "{{params.discountPct}}", amount: "{{params.amount}}", currency: EUR }
    rationale: "Renewal offer for {{params.account}}: {{objective.text}}"
`;

/** Routes that another part of the system may not serve yet: absent ones answer 404 "no route". */
export const OPTIONAL_ROUTES = /\/v1\/(playbooks|connectors|policies|objectives|twins\/[^/]+\/objectives|journal\/(entries|proof|export))/;
