// Actions in doubt: calls to a business system that were cut off after they were sent, for
// operations that are not idempotent, so nobody knows whether they took effect. Their amounts stay
// reserved until the twin's owner or an admin looks in the system and settles them, with evidence.
// Oldest first; each row says where to look and carries the form to settle it. It polls, and
// never rebuilds a form someone is filling in.
import { ApiError, get, post, qs, seg } from './api.js';
import { field, fmtAgo, h, markInvalid, newId, replace, timeEl } from './dom.js';
import { RECONCILE_OUTCOMES, amountOf, executiveOf, renderArgs, renderInDoubt, statusBadge, titleOf } from './proposals.js';
import { emptyState, errorBox, pageHead, poll, toast, toastError } from './ui.js';

const POLL_MS = 5000;
const LIMIT = 500;

const isAdmin = (me) => (me.appRoles ?? me.roles ?? []).includes('admin');

/** Whether this person may settle `p`: its twin's owner, or an admin (never a twin). */
export const mayReconcile = (me, p) => me.kind === 'user' && (isAdmin(me) || (Boolean(p.owner) && p.owner === me.ref));

/** Tells the shell how many actions in doubt wait for this person (the nav shows the count). */
export const announceInDoubt = (count) => window.dispatchEvent(new CustomEvent('regent:in-doubt', { detail: { count } }));

/** The in-doubt proposals this person may settle, and how many others they can see but not settle. */
export async function inDoubtFor(me) {
  const listed = await get(`/v1/proposals${qs({ status: 'in_doubt', limit: LIMIT })}`);
  const all = (listed?.proposals ?? []).filter((p) => p.status === 'in_doubt');
  const mine = all.filter((p) => mayReconcile(me, p));
  return { mine, others: all.length - mine.length, full: all.length >= LIMIT };
}

export async function inDoubtView(root, { me }) {
  /** id → { p, card, parts, form } */
  const items = new Map();
  let lastOk = null;
  let firstLoad = true;

  const live = h('p', { class: 'sr-only', role: 'status', 'aria-live': 'polite' });
  const freshness = h('span', { class: 'freshness muted' }, 'Loading…');
  const pollProblem = h('div', { class: 'poll-problem' });
  const list = h('div', { class: 'cards', role: 'list', 'aria-label': 'Actions in doubt' });
  const empty = h('div', { hidden: true });
  const note = h('p', { class: 'hint', hidden: true });

  replace(
    root,
    pageHead(
      'In doubt',
      'Calls a business system may or may not have carried out: the answer never came and repeating them could do them twice. Their amounts stay reserved until you look in the system and say what happened.',
      freshness,
    ),
    pollProblem,
    live,
    list,
    empty,
    note,
  );

  async function refresh() {
    let got;
    try {
      got = await inDoubtFor(me);
    } catch (err) {
      replace(pollProblem, errorBox(err, lastOk ? 'Could not refresh the list (retrying)' : 'Could not load the actions in doubt'));
      if (err instanceof ApiError && err.status === 403) stopper.stop();
      return;
    }
    replace(pollProblem);
    lastOk = Date.now();
    sync(got.mine);
    const hints = [];
    if (got.others) hints.push(`${got.others} more in doubt belong to other executives’ twins: their owners or an admin settle them.`);
    if (got.full) hints.push(`Showing the newest ${LIMIT}; settle some to see the rest.`);
    note.textContent = hints.join(' ');
    note.hidden = !hints.length;
    announceInDoubt(got.mine.length);
  }

  function sync(proposals) {
    const ids = new Set(proposals.map((p) => p.id));
    for (const [id, e] of items) if (!ids.has(id)) leave(id, e);
    let added = 0;
    for (const p of proposals) {
      const known = items.get(p.id);
      if (!known) {
        const entry = { p, ...buildCard(p) };
        items.set(p.id, entry);
        fill(entry);
        if (!firstLoad) (entry.card.classList.add('new'), added++);
      } else if (known.p.updatedAt !== p.updatedAt) {
        known.p = p;
        fill(known);
      }
    }
    // Longest in doubt first: the oldest reservation, and the trail that goes cold soonest.
    const since = (p) => p.inDoubt?.since ?? p.updatedAt;
    const order = proposals.slice().sort((a, b) => since(a).localeCompare(since(b)));
    let cursor = list.firstElementChild;
    for (const p of order) {
      const card = items.get(p.id).card;
      if (card === cursor) cursor = cursor.nextElementSibling;
      else list.insertBefore(card, cursor);
    }
    if (added) live.textContent = `${added} new action${added > 1 ? 's' : ''} in doubt.`;
    firstLoad = false;
    renderEmpty();
    tick();
  }

  /** A row leaves: settled here, elsewhere, or by the connector's status lookup. */
  function leave(id, e) {
    const hadFocus = e.card.contains(document.activeElement);
    const next = e.card.nextElementSibling ?? e.card.previousElementSibling;
    e.card.remove();
    items.delete(id);
    if (hadFocus) (next?.querySelector('h2') ?? root.querySelector('h1'))?.focus();
    renderEmpty();
  }

  function renderEmpty() {
    if (items.size) {
      replace(empty);
      empty.hidden = true;
      return;
    }
    replace(
      empty,
      emptyState(
        'Nothing is in doubt.',
        'When a call to a business system is cut off and cannot safely be repeated, it appears here for you to settle.',
      ),
    );
    empty.hidden = false;
  }

  function buildCard(p) {
    const titleId = `doubt-${p.id}-title`;
    const title = h('h2', { id: titleId, class: 'card-title', tabindex: '-1' });
    const since = h('span', { class: 'doubt-since' });
    const facts = h('div', { class: 'doubt-facts' });
    const form = reconcileForm(p, {
      describedBy: titleId,
      onSettled: (r) => settled(p.id, r),
      onStale: () => stopper.now(),
    });
    const card = h(
      'article',
      { class: 'card doubt', role: 'listitem', 'aria-labelledby': titleId, dataset: { id: p.id } },
      h('div', { class: 'card-top' }, title, statusBadge('in_doubt'), since),
      h('div', { class: 'doubt-body' }, facts, form.el),
    );
    return { card, form, parts: { title, since, facts } };
  }

  function fill({ p, parts }) {
    const a = amountOf(p);
    const exec = executiveOf(p);
    parts.title.textContent = titleOf(p);
    replace(parts.since, h('span', { class: 'sr-only' }, 'since '), timeEl(p.inDoubt?.since ?? p.updatedAt));
    replace(
      parts.facts,
      a
        ? h('p', { class: 'amount' }, h('span', { class: 'sr-only' }, 'Amount: '), a.text, h('span', { class: 'amount-note' }, ' reserved'))
        : null,
      h(
        'dl',
        { class: 'kv compact' },
        h('dt', null, 'Twin'),
        h('dd', null, p.twin),
        h('dt', null, 'Executive'),
        h('dd', null, exec ?? '—'),
        h('dt', null, 'Action'),
        h('dd', null, h('code', null, p.action)),
        h('dt', null, 'Requested'),
        h('dd', null, timeEl(p.createdAt)),
      ),
      renderInDoubt(p.inDoubt),
      h('details', { class: 'args' }, h('summary', null, 'Arguments sent'), renderArgs(p.args)),
      h('p', null, h('a', { href: `#/proposals/${encodeURIComponent(p.id)}?from=in-doubt` }, 'All details of this proposal')),
    );
  }

  function settled(id, r) {
    const e = items.get(id);
    toast(settledText(r), 'ok');
    if (e) {
      live.textContent = `${titleOf(e.p)} settled; it left the list.`;
      leave(id, e);
    }
    announceInDoubt(items.size);
    stopper.now();
  }

  function tick() {
    const now = Date.now();
    for (const t of list.querySelectorAll('time[datetime]')) {
      const text = fmtAgo(t.getAttribute('datetime'), now);
      if (t.textContent !== text) t.textContent = text;
    }
    freshness.textContent = lastOk ? `Updated ${fmtAgo(new Date(lastOk).toISOString(), now).replace('now', 'just now')}` : 'Loading…';
  }

  const stopper = poll(refresh, POLL_MS);
  const clock = setInterval(tick, 5000);
  return () => {
    stopper.stop();
    clearInterval(clock);
  };
}

/** The toast after settling: what was recorded and what it means for the reserved amount. */
export function settledText(r) {
  const what = titleOf(r);
  return r.reconciliation?.outcome === 'executed' || r.status === 'executed'
    ? `Reconciled ${what}: it took effect. Status executed; its amount stays spent.`
    : `Reconciled ${what}: it did not take effect. Status failed; its reserved amount is released.`;
}

/**
 * The form that settles one action in doubt: what happened (took effect or not) and the evidence,
 * both required, checked here before anything is sent. `onSettled(proposal)` after a 200;
 * `onStale()` when the server says it is no longer in doubt (settled elsewhere) or gone.
 */
export function reconcileForm(p, { onSettled, onStale, describedBy }) {
  const base = newId('reconcile');
  const system = p.inDoubt?.connector ?? 'the system';
  const radios = RECONCILE_OUTCOMES.map(([value, label, hint]) => {
    const id = `${base}-${value}`;
    const input = h('input', { type: 'radio', name: `${base}-outcome`, id, value, required: true, 'aria-describedby': `${id}-hint` });
    return {
      input,
      el: h('div', { class: 'choice' }, input, h('label', { for: id }, label), h('p', { class: 'hint', id: `${id}-hint` }, hint)),
    };
  });
  const group = h(
    'fieldset',
    { class: 'choice-group outcome-choice' },
    h('legend', null, `What happened in ${system}?`),
    radios.map((r) => r.el),
  );
  const evidence = h('textarea', {
    id: `${base}-evidence`,
    name: 'evidence',
    rows: 3,
    required: true,
    maxlength: 4000,
    placeholder: p.inDoubt?.checkIn ? `What you found looking in ${p.inDoubt.checkIn}` : 'What you found, and where',
  });
  const evF = field(
    'Evidence',
    evidence,
    'Required: how you know (a record, a reference, whom you asked). Kept in the journal with your name.',
  );
  const errorSlot = h('div', { class: 'form-error' });
  const submit = h('button', { type: 'submit', class: 'primary', 'aria-describedby': describedBy }, 'Reconcile');
  const form = h(
    'form',
    { class: 'reconcile-form', novalidate: true, 'aria-label': `Reconcile ${titleOf(p)}` },
    h('h3', null, 'Settle it'),
    group,
    evF.wrap,
    errorSlot,
    h('div', { class: 'button-row' }, submit),
  );
  for (const r of radios) r.input.addEventListener('change', () => radios.forEach((x) => x.input.removeAttribute('aria-invalid')));

  const showError = (box) => {
    replace(errorSlot, box);
    box.setAttribute('tabindex', '-1');
  };

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (form.getAttribute('aria-busy') === 'true') return;
    const outcome = radios.find((r) => r.input.checked)?.input.value;
    const text = evidence.value.trim();
    const problems = [];
    let first = null;
    if (!outcome) {
      for (const r of radios) markInvalid(r.input, '', { clearOn: [] });
      problems.push('Choose what happened: it took effect, or it did not.');
      first = radios[0].input;
    }
    if (!text) {
      problems.push(`Evidence is required: say how you know (what you found in ${system}).`);
      markInvalid(evidence, '');
      first ??= evidence;
    }
    if (problems.length) {
      showError(errorBox(new Error(problems.join(' ')), 'Not reconciled yet'));
      first.focus();
      return;
    }
    replace(errorSlot);
    form.setAttribute('aria-busy', 'true');
    submit.disabled = true;
    submit.textContent = 'Reconciling…';
    try {
      const r = await post(`/v1/proposals/${seg(p.id)}/reconcile`, { outcome, evidence: text });
      onSettled?.(r);
    } catch (err) {
      const box = errorBox(err, 'Not reconciled');
      showError(box);
      if (err instanceof ApiError && err.field) markInvalid(/outcome/.test(err.field) ? radios[0].input : evidence, '');
      if (err instanceof ApiError && (err.status === 409 || err.status === 404)) {
        // Settled meanwhile (by someone else or the connector's status lookup): the row may go, so
        // the reason is also kept in a toast.
        toastError(err, `Could not reconcile ${titleOf(p)}`);
        onStale?.();
      }
      box.focus();
    } finally {
      form.removeAttribute('aria-busy');
      submit.disabled = false;
      submit.textContent = 'Reconcile';
    }
  });
  return { el: form };
}
