// The console's shell: sign-in, the signed-in person's views (by what they may do), hash routing.
import { ApiError, clearKey, get, getKey, setKey } from './api.js';
import { h, isTyping, replace } from './dom.js';
import { clearToasts, errorBox, toast } from './ui.js';
import { inboxView } from './inbox.js';
import { twinsView } from './twins.js';
import { objectiveView } from './objective-view.js';
import { journalView } from './auditor.js';
import { auditQueueView } from './audit-queue.js';
import { adminView } from './admin.js';
import { inDoubtFor, inDoubtView } from './indoubt.js';
import { backOf, proposalView } from './proposal-view.js';
import { shortcutsHelp } from './keys.js';

/** Views in nav order; `can` decides from /v1/me whether the person sees it. */
const VIEWS = [
  { path: 'inbox', label: 'Inbox', can: (me) => me.capabilities.includes('proposal.decide'), mount: inboxView },
  { path: 'twins', label: 'Twins', can: (me) => me.capabilities.includes('twin.read'), mount: twinsView },
  // Owners and admins settle actions in doubt; the nav shows how many wait for this person.
  { path: 'in-doubt', label: 'In doubt', count: true, can: (me) => me.capabilities.includes('proposal.reconcile'), mount: inDoubtView },
  { path: 'journal', label: 'Journal', can: (me) => me.capabilities.includes('journal.read'), mount: journalView },
  { path: 'audit', label: 'Audit queue', can: (me) => me.capabilities.includes('journal.audit'), mount: auditQueueView },
  { path: 'admin', label: 'Admin', can: (me) => me.capabilities.includes('user.manage'), mount: adminView },
];
/** Views reached from others, not in the nav. */
const HIDDEN = [
  { path: 'objectives', parent: 'twins', can: (me) => me.capabilities.includes('twin.read'), mount: objectiveView },
  {
    path: 'proposals',
    label: 'Proposal',
    // Opened from another view (?from=in-doubt): that one stays marked in the nav.
    parent: ({ query }) => backOf(query)?.view ?? null,
    can: (me) => me.capabilities.includes('proposal.read') || me.capabilities.includes('journal.read'),
    mount: proposalView,
  },
];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const topbar = document.getElementById('topbar');
const whoami = document.getElementById('whoami');

let me = null;
let current = null; // { path, cleanup }
/** Counts shown next to nav entries (view path → number), e.g. actions in doubt. */
const counts = new Map();

/** #/journal/123 → { path: 'journal', rest: ['123'], query } */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [p, q] = raw.split('?');
  const parts = (p ?? '').split('/').filter(Boolean).map(decodeURIComponent);
  return { path: parts[0] ?? '', rest: parts.slice(1), query: new URLSearchParams(q ?? '') };
}

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function allowed() {
  return VIEWS.filter((v) => v.can(me));
}

function renderNav(active) {
  replace(
    nav,
    h(
      'ul',
      null,
      allowed().map((v) =>
        h(
          'li',
          null,
          h(
            'a',
            {
              href: `#/${v.path}`,
              'aria-current': v.path === active ? 'page' : undefined,
              class: v.path === active ? 'active' : undefined,
            },
            v.label,
            v.count ? countEl(v.path) : null,
          ),
        ),
      ),
    ),
  );
}

function countEl(path) {
  const n = counts.get(path) ?? 0;
  return h(
    'span',
    { class: 'nav-count', dataset: { count: path }, hidden: !n },
    h('span', { class: 'sr-only' }, ', '),
    String(n),
    h('span', { class: 'sr-only' }, ' waiting'),
  );
}

function setCount(path, n) {
  counts.set(path, n);
  const el = nav.querySelector(`[data-count="${path}"]`);
  if (el) el.replaceWith(countEl(path));
}

// How many actions in doubt wait for this person: asked now and then, and told at once by the
// views that settle them (regent:in-doubt).
let doubtTimer = null;
async function refreshInDoubt() {
  clearTimeout(doubtTimer);
  if (!me || !me.capabilities.includes('proposal.reconcile')) return;
  // The In doubt view polls faster and reports itself.
  if (current?.path !== 'in-doubt') {
    try {
      setCount('in-doubt', (await inDoubtFor(me)).mine.length);
    } catch {
      /* the count is a reminder only; the In doubt view shows errors */
    }
  }
  if (me) doubtTimer = setTimeout(refreshInDoubt, 20000);
}
window.addEventListener('regent:in-doubt', (e) => {
  if (me && Number.isInteger(e.detail?.count)) setCount('in-doubt', e.detail.count);
});

function renderWho() {
  const roles = me.kind === 'user' ? me.roles : ['twin'];
  const out = h('button', { type: 'button', class: 'secondary small', id: 'sign-out' }, 'Sign out');
  out.addEventListener('click', () => signOut('You signed out.'));
  replace(
    whoami,
    h('span', { class: 'who' }, h('span', { class: 'who-name' }, me.name ?? me.id), h('span', { class: 'who-roles' }, roles.join(', '))),
    out,
  );
}

let routing = 0;
let routedOnce = false;

async function route() {
  if (!me) return;
  const { path, rest, query } = parseHash();
  const views = allowed();
  const view = [...views, ...HIDDEN.filter((v) => v.can(me))].find((v) => v.path === path);
  if (!view) {
    if (!views.length) return renderNoViews();
    location.replace(`#/${views[0].path}`);
    return;
  }
  current?.cleanup?.();
  current = null;
  const mine = ++routing;
  const parent = typeof view.parent === 'function' ? view.parent({ rest, query }) : view.parent;
  renderNav(parent ?? view.path);
  const container = h('div', { class: `view view-${view.path}` });
  replace(main, container);
  const ctx = { me, rest, query, navigate };
  try {
    const cleanup = await view.mount(container, ctx);
    // Navigated on while this view was opening: it is already off screen, so stop it now.
    if (mine !== routing || !me) return void cleanup?.();
    current = { path: view.path, cleanup };
  } catch (err) {
    if (mine !== routing) return;
    replace(container, errorBox(err, `Could not open ${view.label ?? view.path}`));
  }
  document.title = `${view.label ?? view.path[0].toUpperCase() + view.path.slice(1)} · Regent`;
  // Focus the new page's heading so screen readers announce it (not on the very first load).
  if (routedOnce) container.querySelector('h1')?.focus({ preventScroll: false });
  routedOnce = true;
}

function renderNoViews() {
  replace(
    main,
    h(
      'section',
      { class: 'view narrow' },
      h('h1', { tabindex: '-1' }, 'Nothing to show for this key'),
      me.kind === 'twin'
        ? h(
            'p',
            null,
            `This is the API key of the twin ${me.id}. Twins use the API (POST /v1/proposals); the console is for people. Sign out and sign in with your own key.`,
          )
        : h(
            'p',
            null,
            `Your roles (${me.roles.join(', ') || 'none'}) do not include executive, approver, auditor or admin. Ask an admin to give you one.`,
          ),
    ),
  );
}

// ------------------------------------------------------------------------------------------------
// Sign-in

function renderSignIn(message, kind = 'info') {
  current?.cleanup?.();
  current = null;
  me = null;
  topbar.hidden = true;
  document.title = 'Sign in · Regent';
  const input = h('input', {
    id: 'api-key',
    name: 'apiKey',
    type: 'password',
    required: true,
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: 'rgt_…',
    'aria-describedby': 'api-key-hint',
  });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const errorSlot = h('div', { class: 'form-error' });
  const form = h(
    'form',
    { class: 'signin-form', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'api-key' }, 'API key'), input),
    h(
      'p',
      { class: 'hint', id: 'api-key-hint' },
      'Your personal key (rgt_…). The first admin key is printed by npm start; admins issue keys to everyone else.',
    ),
    errorSlot,
    button,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (!key) {
      input.setAttribute('aria-invalid', 'true');
      replace(errorSlot, errorBox(new Error('Enter your API key.'), 'Cannot sign in'));
      input.focus();
      return;
    }
    button.disabled = true;
    button.textContent = 'Signing in…';
    try {
      await signIn(key);
    } catch (err) {
      input.setAttribute('aria-invalid', 'true');
      replace(errorSlot, errorBox(err, 'Cannot sign in'));
      input.focus();
      input.select();
    } finally {
      button.disabled = false;
      button.textContent = 'Sign in';
    }
  });
  replace(
    main,
    h(
      'section',
      { class: 'signin', 'aria-labelledby': 'signin-title' },
      h('div', { class: 'signin-brand' }, h('span', { class: 'brand-mark big', 'aria-hidden': 'true' }, 'R'), h('span', null, 'Regent')),
      h('h1', { id: 'signin-title', tabindex: '-1' }, 'Sign in'),
      h('p', { class: 'subtitle' }, 'Governed work twins: every action checked against written authority, every step in a signed journal.'),
      message ? h('p', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message) : null,
      form,
    ),
  );
  input.focus();
}

async function signIn(key) {
  const who = await get('/v1/me', { key });
  setKey(key);
  await start(who);
}

// A banner on every page while the global kill switch is engaged: approving then runs nothing.
let bannerTimer = null;
async function refreshBanner() {
  clearTimeout(bannerTimer);
  if (!me || !me.capabilities.includes('killSwitch.read')) return;
  const slot = document.getElementById('banner');
  try {
    const k = await get('/v1/kill-switch');
    replace(
      slot,
      k?.engaged
        ? h(
            'div',
            { class: 'banner banner-danger', role: 'status' },
            `Kill switch engaged by ${k.updatedBy}: no twin executes anything until it is released.`,
          )
        : null,
    );
  } catch {
    /* shown where it matters (the Twins page); the banner is a reminder only */
  }
  if (me) bannerTimer = setTimeout(refreshBanner, 20000);
}
window.addEventListener('regent:kill-switch', () => refreshBanner());

async function start(who) {
  me = { capabilities: [], roles: [], ...who };
  topbar.hidden = false;
  counts.clear();
  renderWho();
  refreshBanner();
  refreshInDoubt();
  if (!location.hash || location.hash === '#' || location.hash === '#/') {
    // Approvers start in their inbox; everyone else (an executive may decide too) where they work.
    const routes = allowed();
    const first = (me.appRoles ?? me.roles).includes('approver') ? routes[0] : (routes.find((r) => r.path !== 'inbox') ?? routes[0]);
    if (first) history.replaceState(null, '', `#/${first.path}`);
  }
  await route();
}

export function signOut(message, kind) {
  clearKey();
  clearToasts();
  clearTimeout(bannerTimer);
  clearTimeout(doubtTimer);
  counts.clear();
  replace(document.getElementById('banner'));
  history.replaceState(null, '', location.pathname);
  renderSignIn(message, kind);
}

window.addEventListener('regent:unauthenticated', (e) => {
  if (!me) return;
  signOut(`You were signed out: ${e.detail?.detail ?? 'your key is no longer valid'}.`, 'error');
});
window.addEventListener('hashchange', () => route());
document.addEventListener('keydown', (e) => {
  if (e.key === '?' && !e.ctrlKey && !e.metaKey && !e.altKey && me && !isTyping(e.target) && !document.querySelector('dialog[open]')) {
    e.preventDefault();
    shortcutsHelp(current?.path);
  }
});

// Boot: a key kept in this tab's session signs straight in.
(async () => {
  const key = getKey();
  if (!key) return renderSignIn();
  try {
    await start(await get('/v1/me', { key }));
  } catch (err) {
    clearKey();
    renderSignIn(
      err instanceof ApiError && err.status === 401
        ? `Please sign in again: ${err.detail}.`
        : `Could not restore your session: ${err.message}`,
      'error',
    );
  }
})();

export { toast };
