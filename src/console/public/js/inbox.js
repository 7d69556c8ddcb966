// The approver's inbox: pending proposals as cards, decided with Approve, Reject or Edit, one at a
// time or in bulk, by mouse or keyboard. It polls, and keeps focus and selection where they were.
// A card is built and filled by inbox-card.js; the decisions are inbox-decisions.js.
import { ApiError, get, qs, seg } from './api.js';
import { countdown, fmtAgo, h, isTyping, replace } from './dom.js';
import { buildCard, fillCard, namesMe } from './inbox-card.js';
import { inboxDecisions } from './inbox-decisions.js';
import { shortcutsHelp } from './keys.js';
import { counterpartyOf, executiveOf } from './proposals.js';
import { dialogOpen, emptyState, errorBox, errorText, pageHead, poll } from './ui.js';

const POLL_MS = 4000;

export async function inboxView(root, { me }) {
  /** id → { p, detail, card, parts } */
  const items = new Map();
  let order = [];
  const selected = new Set();
  let currentId = null;
  let filter = '';
  let lastOk = null;
  let firstLoad = true;
  let owners = new Map();

  // ---------------------------------------------------------------------------------------------
  // Layout

  const live = h('p', { class: 'sr-only', role: 'status', 'aria-live': 'polite' });
  const freshness = h('span', { class: 'freshness muted' }, 'Loading…');
  const pollProblem = h('div', { class: 'poll-problem' });
  const bulkErrors = h('div');
  const selectAll = h('input', { type: 'checkbox', id: 'select-all' });
  const selCount = h('span', { class: 'sel-count', 'aria-live': 'polite' }, 'None selected');
  const bulkApprove = h('button', { type: 'button', class: 'primary', disabled: true }, 'Approve selected');
  const bulkReject = h('button', { type: 'button', class: 'danger-outline', disabled: true }, 'Reject selected');
  const filterInput = h('input', { type: 'search', id: 'inbox-filter', placeholder: 'twin, action, counterparty…', autocomplete: 'off' });
  const list = h('div', { class: 'cards', role: 'list', 'aria-label': 'Pending proposals' });
  const empty = h('div', { hidden: true });
  const helpBtn = h('button', { type: 'button', class: 'secondary small', 'aria-keyshortcuts': '?' }, 'Shortcuts (?)');
  helpBtn.addEventListener('click', () => shortcutsHelp('inbox'));

  replace(
    root,
    pageHead('Inbox', 'Action requests waiting for your approval, most urgent first.', freshness, helpBtn),
    pollProblem,
    h(
      'div',
      { class: 'toolbar', role: 'toolbar', 'aria-label': 'Selected proposals' },
      h('div', { class: 'toolbar-group' }, h('label', { class: 'check' }, selectAll, ' Select all'), selCount),
      h('div', { class: 'toolbar-group' }, bulkApprove, bulkReject),
      h('div', { class: 'toolbar-group grow' }, h('label', { for: 'inbox-filter', class: 'inline-label' }, 'Filter'), filterInput),
    ),
    bulkErrors,
    live,
    list,
    empty,
  );

  selectAll.addEventListener('change', () => {
    for (const id of visibleIds()) selectAll.checked ? selected.add(id) : selected.delete(id);
    syncSelection();
  });
  filterInput.addEventListener('input', () => {
    filter = filterInput.value.trim().toLowerCase();
    applyFilter();
  });
  bulkApprove.addEventListener('click', () => bulk('approve'));
  bulkReject.addEventListener('click', () => bulk('reject'));

  // Who owns which twin, when this person may see twins (admins, executives); else the card says
  // what the server tells about the executive.
  if (me.capabilities.includes('twin.read')) {
    get('/v1/twins')
      .then((r) => (owners = new Map((r?.twins ?? []).map((t) => [t.id, t.owner]))))
      .catch(() => undefined);
  }

  // ---------------------------------------------------------------------------------------------
  // Data

  /**
   * Approvers see every pending proposal. An executive sees their own twins' requests only where
   * the approval tier names them (by id, a role they hold, or as the delegator by default).
   */
  function forMe(p) {
    if ((me.appRoles ?? me.roles ?? []).includes('approver')) return true;
    return namesMe(me, p.approval);
  }

  async function refresh() {
    let listed;
    try {
      listed = await get(`/v1/proposals${qs({ status: 'pending_approval', limit: 500 })}`);
    } catch (err) {
      replace(pollProblem, errorBox(err, lastOk ? 'Could not refresh the inbox (retrying)' : 'Could not load the inbox'));
      if (err instanceof ApiError && err.status === 403) stopper.stop();
      return;
    }
    replace(pollProblem);
    lastOk = Date.now();
    const proposals = (listed?.proposals ?? []).filter((p) => p.status === 'pending_approval' && forMe(p));
    const changed = proposals.filter((p) => !items.has(p.id) || items.get(p.id).p.updatedAt !== p.updatedAt);
    reconcile(proposals);
    // Then the details (preview, reviews) of new or changed proposals, a few at a time, each card
    // filled in as its answer arrives.
    for (let i = 0; i < changed.length; i += 6) {
      await Promise.all(
        changed.slice(i, i + 6).map(async (p) => {
          let d;
          try {
            d = await get(`/v1/proposals/${seg(p.id)}`);
          } catch (err) {
            d = { ...p, preview: { summary: `Preview unavailable: ${errorText(err)}`, details: {} }, reviews: [] };
          }
          const entry = items.get(p.id);
          if (!entry || entry.p.updatedAt !== p.updatedAt) return;
          entry.detail = d;
          fill(entry);
        }),
      );
    }
  }

  function reconcile(proposals) {
    const focused = document.activeElement;
    const focusedCardId = focused?.closest?.('.proposal')?.dataset.id;
    const ids = new Set(proposals.map((p) => p.id));
    const before = new Set(items.keys());
    const gone = [...before].filter((id) => !ids.has(id));
    const added = proposals.filter((p) => !before.has(p.id));
    const lostFocusAt = focusedCardId && gone.includes(focusedCardId) ? visibleIds().indexOf(focusedCardId) : -1;

    for (const id of gone) {
      items.get(id).card.remove();
      items.delete(id);
      selected.delete(id);
    }
    for (const p of proposals) {
      const known = items.get(p.id);
      if (!known) {
        const entry = { p, detail: undefined, ...newCard(p) };
        items.set(p.id, entry);
        fill(entry);
        if (!firstLoad) entry.card.classList.add('new');
      } else if (known.p.updatedAt !== p.updatedAt) {
        // Changed (edited, approved by someone else): shown from the list until its details arrive.
        known.p = p;
        fill(known);
      }
    }
    // Most urgent first; ties by age. Cards only move when out of place, so focus stays.
    order = proposals
      .slice()
      .sort((a, b) => (a.expiresAt ?? '9999').localeCompare(b.expiresAt ?? '9999') || a.createdAt.localeCompare(b.createdAt))
      .map((p) => p.id);
    let cursor = list.firstElementChild;
    for (const id of order) {
      const card = items.get(id).card;
      if (card === cursor) cursor = cursor.nextElementSibling;
      else list.insertBefore(card, cursor);
    }
    applyFilter();
    if (focused && focused.isConnected && document.activeElement !== focused) focused.focus({ preventScroll: true });

    // The card someone was on went away (decided elsewhere): its neighbour becomes current.
    if (lostFocusAt >= 0) {
      const vis = visibleIds();
      const next = vis[Math.min(lostFocusAt, vis.length - 1)];
      if (next) setCurrent(next, true);
      else root.querySelector('h1')?.focus();
      live.textContent = 'The proposal you were on was decided elsewhere.';
    } else if (currentId && !items.has(currentId)) {
      currentId = null;
    }
    if (!firstLoad && added.length) live.textContent = `${added.length} new proposal${added.length > 1 ? 's' : ''} in your inbox.`;
    firstLoad = false;
    syncSelection();
    tick();
  }

  // ---------------------------------------------------------------------------------------------
  // Cards (inbox-card.js builds and fills them)

  /** A card for `p`, its controls wired to this inbox. */
  function newCard(p) {
    return buildCard(p, {
      select: (checked) => {
        checked ? selected.add(p.id) : selected.delete(p.id);
        syncSelection();
      },
      current: () => setCurrent(p.id, false),
      approve: () => approveOne(p.id),
      reject: () => rejectOne(p.id),
      edit: () => editOne(p.id),
    });
  }

  const fill = (entry) => fillCard(entry, me, owners);

  function tick() {
    const now = Date.now();
    for (const { parts } of items.values()) {
      const c = countdown(parts.timer.dataset.expires || null, now);
      if (parts.timer.textContent !== c.text) parts.timer.textContent = c.text;
      parts.timer.className = `countdown urgency-${c.urgency}`;
    }
    freshness.textContent = lastOk ? `Updated ${fmtAgo(new Date(lastOk).toISOString(), now).replace('now', 'just now')}` : 'Loading…';
  }

  // ---------------------------------------------------------------------------------------------
  // Selection, filter, current card

  function visibleIds() {
    return order.filter((id) => !items.get(id).card.hidden);
  }

  function applyFilter() {
    for (const id of order) {
      const { p, card } = items.get(id);
      const hay = [p.twin, p.action, counterpartyOf(p), executiveOf(p, owners), p.rationale].filter(Boolean).join(' ').toLowerCase();
      card.hidden = Boolean(filter) && !hay.includes(filter);
    }
    const n = visibleIds().length;
    if (!order.length)
      replace(empty, emptyState('Nothing is waiting for you.', 'New action requests appear here by themselves; no need to reload.'));
    else if (!n) replace(empty, emptyState('No proposal matches the filter.', null));
    else replace(empty);
    empty.hidden = n > 0;
  }

  function syncSelection() {
    for (const [id, { parts, card }] of items) {
      parts.check.checked = selected.has(id);
      card.classList.toggle('selected', selected.has(id));
    }
    const vis = visibleIds();
    const nSel = vis.filter((id) => selected.has(id)).length;
    selectAll.checked = vis.length > 0 && nSel === vis.length;
    selectAll.indeterminate = nSel > 0 && nSel < vis.length;
    selCount.textContent = selected.size ? `${selected.size} selected` : 'None selected';
    bulkApprove.disabled = bulkReject.disabled = selected.size === 0;
  }

  function setCurrent(id, focus) {
    if (currentId && items.has(currentId)) items.get(currentId).card.classList.remove('current');
    currentId = id;
    if (!id || !items.has(id)) return;
    const { card } = items.get(id);
    card.classList.add('current');
    if (focus) {
      card.focus({ preventScroll: true });
      card.scrollIntoView({ block: 'nearest' });
    }
  }

  function move(delta) {
    const vis = visibleIds();
    if (!vis.length) return;
    const i = vis.indexOf(currentId);
    const next = i < 0 ? (delta > 0 ? 0 : vis.length - 1) : Math.max(0, Math.min(vis.length - 1, i + delta));
    setCurrent(vis[next], true);
  }

  // ---------------------------------------------------------------------------------------------
  // Decisions (inbox-decisions.js)

  const { approveOne, rejectOne, editOne, bulk } = inboxDecisions({
    items,
    selected,
    order: () => order,
    visibleIds,
    setCurrent,
    syncSelection,
    fill,
    pollNow: () => stopper.now(),
    bulkApprove,
    bulkReject,
    bulkErrors,
  });

  // ---------------------------------------------------------------------------------------------
  // Keyboard

  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || dialogOpen() || isTyping(e.target)) return;
    const k = e.key;
    if (k === 'j' || k === 'k') {
      e.preventDefault();
      move(k === 'j' ? 1 : -1);
      return;
    }
    if (!['a', 'r', 'e', 'x'].includes(k)) return;
    const id = currentId && items.has(currentId) && !items.get(currentId).card.hidden ? currentId : visibleIds()[0];
    if (!id) return;
    e.preventDefault();
    setCurrent(id, true);
    if (k === 'a') {
      if (!items.get(id).parts.approve.disabled) approveOne(id);
    } else if (k === 'r') rejectOne(id);
    else if (k === 'e') editOne(id);
    else {
      selected.has(id) ? selected.delete(id) : selected.add(id);
      syncSelection();
    }
  }
  document.addEventListener('keydown', onKey);

  const stopper = poll(refresh, POLL_MS);
  const clock = setInterval(tick, 1000);
  return () => {
    stopper.stop();
    clearInterval(clock);
    document.removeEventListener('keydown', onKey);
  };
}
