// One card of the inbox: a pending proposal's facts, the twin's rationale, policy's reasons, the
// preview, the arguments and comments, with its Approve, Reject and Edit buttons.
import { fmtAgo, h, replace, timeEl } from './dom.js';
import { amountOf, counterpartyOf, executiveOf, viaOf, outcomeBadge, renderArgs, renderPreview, renderReasons, titleOf } from './proposals.js';

/** Whom an approval tier names: its approvers, and whom it escalated to. */
function namedIn(a) {
  return [...a.approvers, ...(a.escalated ? a.escalateTo : [])];
}

/** Whether the approval names this person (`me`): as user:<id> or by a role they hold. */
export function namesMe(me, a) {
  if (!a) return false;
  return namedIn(a).some((n) => n === me.ref || (n.startsWith('role:') && (me.roles ?? []).includes(n.slice(5))));
}

/**
 * A card's elements for the proposal `p`, empty until fillCard. `on` says what its controls do:
 * select(checked), current() (the card was focused or clicked), approve(), reject(), edit().
 */
export function buildCard(p, on) {
  const base = `p-${p.id}`;
  const titleId = `${base}-title`;
  const check = h('input', { type: 'checkbox', class: 'select', id: `${base}-sel` });
  const checkLabel = h('label', { for: check.id, class: 'sr-only' });
  const title = h('h2', { id: titleId, class: 'card-title' });
  const timer = h('span', { class: 'countdown' });
  const body = h('div', { class: 'card-body' });
  const approve = h('button', { type: 'button', class: 'primary', 'aria-describedby': titleId, 'aria-keyshortcuts': 'a' }, 'Approve');
  const reject = h('button', { type: 'button', class: 'danger-outline', 'aria-describedby': titleId, 'aria-keyshortcuts': 'r' }, 'Reject');
  const edit = h('button', { type: 'button', class: 'secondary', 'aria-describedby': titleId, 'aria-keyshortcuts': 'e' }, 'Edit');
  const note = h('p', { class: 'card-note hint' });
  const card = h(
    'article',
    { class: 'card proposal', id: base, role: 'listitem', tabindex: '-1', 'aria-labelledby': titleId, dataset: { id: p.id } },
    h('div', { class: 'card-top' }, h('div', { class: 'card-check' }, check, checkLabel), title, timer),
    body,
    h('div', { class: 'card-actions' }, approve, reject, edit, note),
  );
  check.addEventListener('change', () => on.select(check.checked));
  card.addEventListener('focusin', () => on.current());
  card.addEventListener('click', (e) => {
    if (!(e.target instanceof HTMLElement) || !e.target.closest('button, a, input, summary, label')) on.current();
  });
  approve.addEventListener('click', () => on.approve());
  reject.addEventListener('click', () => on.reject());
  edit.addEventListener('click', () => on.edit());
  return { card, parts: { check, checkLabel, title, timer, body, approve, reject, edit, note } };
}

/**
 * Shows the proposal in its card (entry: { p, detail, card, parts }) to `me`; `owners` maps twin
 * ids to their executives where known.
 */
export function fillCard(entry, me, owners) {
  const { p, detail, parts } = entry;
  // The list item is the truth; the detail adds preview and reviews (an older one until the new arrives).
  const d = detail?.updatedAt === p.updatedAt ? detail : p;
  const amount = amountOf(d);
  const cp = counterpartyOf(d);
  const exec = executiveOf(d, owners);
  const approval = d.approval ?? null;
  const got = approval?.approvedBy?.length ?? 0;
  const mine = approval?.approvedBy?.includes(me.ref);
  parts.title.textContent = titleOf(d);
  parts.checkLabel.textContent = `Select ${titleOf(d)}`;
  parts.timer.dataset.expires = d.expiresAt ?? approval?.expiresAt ?? '';
  const reviews = (detail?.reviews ?? []).filter((r) => r.comment);

  replace(
    parts.body,
    h(
      'div',
      { class: 'facts' },
      amount ? h('p', { class: 'amount' }, h('span', { class: 'sr-only' }, 'Amount: '), amount.text) : null,
      h(
        'dl',
        { class: 'kv compact' },
        h('dt', null, 'Twin'),
        h('dd', null, d.twin, viaOf(d) ? h('span', { class: 'muted' }, ` · ${viaOf(d)}`) : null),
        h('dt', null, 'Executive'),
        h('dd', null, exec ?? (d.decision?.authority ? `per authority ${d.decision.authority}` : 'unknown')),
        h('dt', null, 'Action'),
        h('dd', null, h('code', null, d.action)),
        h('dt', null, 'Counterparty'),
        h('dd', null, cp ?? '—'),
        h('dt', null, 'Approvals'),
        h(
          'dd',
          null,
          approval
            ? `${got} of ${approval.quorum} · ${approval.approvers.join(', ')}${approval.escalated ? ` (escalated to ${approval.escalateTo.join(', ')})` : ''}`
            : '—',
        ),
        h('dt', null, 'Requested'),
        h('dd', null, timeEl(d.createdAt)),
      ),
    ),
    h('div', { class: 'rationale' }, h('h3', null, 'Twin’s rationale'), h('blockquote', null, d.rationale || '—')),
    h(
      'div',
      { class: 'policy' },
      h('h3', null, 'Policy ', outcomeBadge(d.decision?.outcome ?? 'approve')),
      renderReasons(d.decision?.reasons),
    ),
    h('div', { class: 'preview' }, h('h3', null, 'Preview'), renderPreview(detail ? detail.preview : undefined)),
    h('details', { class: 'args' }, h('summary', null, 'Arguments'), renderArgs(d.args)),
    reviews.length
      ? h(
          'div',
          { class: 'reviews' },
          h('h3', null, 'Comments'),
          h(
            'ul',
            null,
            reviews.map((r) => h('li', null, h('strong', null, r.actor), ` (${r.decision}, ${fmtAgo(r.createdAt)}): `, r.comment)),
          ),
        )
      : null,
  );
  parts.approve.disabled = Boolean(mine) || entry.card.getAttribute('aria-busy') === 'true';
  parts.note.textContent = mine ? `You approved; waiting for ${approval.quorum - got} more.` : eligibilityHint(me, approval);
}

// Approval tiers name roles (role:cfo) or people (user:sara); a hint when neither is this person.
function eligibilityHint(me, approval) {
  if (!approval?.approvers?.length || namesMe(me, approval)) return '';
  return `Approvers named: ${namedIn(approval).join(', ')}. Your approval may not count.`;
}
