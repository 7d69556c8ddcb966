// One proposal (#/proposals/<id>): what was asked, what policy said, what ran, and for a call whose
// outcome was unknown, what is known of it, the form to settle it, and once settled, who settled
// it, how, and on what evidence.
import { ApiError, get, seg } from './api.js';
import { fmtDateTime, fmtAgo, h, replace, timeEl } from './dom.js';
import { mayReconcile, reconcileForm, settledText, announceInDoubt, inDoubtFor } from './indoubt.js';
import {
  amountOf,
  counterpartyOf,
  executiveOf,
  outcomeBadge,
  renderArgs,
  renderInDoubt,
  renderPreview,
  renderReasons,
  renderReconciliation,
  statusBadge,
  titleOf,
  viaOf,
} from './proposals.js';
import { errorBox, pageHead, poll, toast } from './ui.js';

const TERMINAL = new Set(['executed', 'failed', 'denied', 'rejected', 'expired', 'cancelled']);

/** Where the back link goes: the view the person came from (?from=in-doubt), when it is one of ours. */
const BACK = { 'in-doubt': 'In doubt', twins: 'Twins', inbox: 'Inbox', objectives: 'Objective', audit: 'Audit queue' };
export function backOf(query) {
  const from = query?.get?.('from') ?? '';
  const first = from.split('/')[0];
  return BACK[first] && /^[A-Za-z0-9._~%/-]+$/.test(from) ? { hash: `#/${from}`, label: BACK[first], view: first } : null;
}

export async function proposalView(root, { me, rest, query }) {
  const id = rest[0] ?? '';
  const back = backOf(query);
  const body = h('div');
  replace(root, back ? h('a', { href: back.hash, class: 'back' }, `← ${back.label}`) : null, body);
  let lastSig = null;
  let status = null;
  /** The settle form, kept while the proposal stays in doubt so a poll never wipes what is typed. */
  let form = null;

  async function refresh() {
    let p;
    try {
      p = await get(`/v1/proposals/${seg(id)}`);
    } catch (err) {
      replace(
        body,
        pageHead('Proposal'),
        errorBox(err, err instanceof ApiError && err.status === 404 ? 'No such proposal' : 'Could not load the proposal'),
      );
      if (err instanceof ApiError && (err.status === 404 || err.status === 403)) stopper.stop();
      return;
    }
    const sig = `${p.updatedAt}|${p.status}`;
    if (sig === lastSig) return;
    lastSig = sig;
    status = p.status;
    render(p);
  }

  function render(p) {
    const a = amountOf(p);
    const exec = executiveOf(p);
    const inDoubt = p.status === 'in_doubt';
    if (!inDoubt) form = null;
    else if (!form && mayReconcile(me, p))
      form = reconcileForm(p, {
        describedBy: 'proposal-title',
        onSettled: (r) => {
          toast(settledText(r), 'ok');
          form = null;
          stopper.now();
          // The nav's count follows at once rather than at its next poll.
          inDoubtFor(me)
            .then((g) => announceInDoubt(g.mine.length))
            .catch(() => undefined);
        },
        onStale: () => stopper.now(),
      });
    const head = pageHead(titleOf(p), null, statusBadge(p.status));
    head.querySelector('h1').id = 'proposal-title';
    const reviews = p.reviews ?? [];
    // The settle form is moved into the new page, not rebuilt: keep the focus where it was in it.
    const focused = form?.el.contains(document.activeElement) ? document.activeElement : null;
    replace(
      body,
      head,
      inDoubt
        ? h(
            'section',
            { class: 'panel doubt-panel', 'aria-labelledby': 'doubt-title' },
            h('h2', { id: 'doubt-title' }, 'In doubt: did it take effect?'),
            h(
              'p',
              null,
              'The call was cut off after it was sent and the operation is not idempotent, so Regent does not repeat it and cannot tell whether it took effect. ',
              a
                ? `Its amount (${a.text}) stays reserved against the limits until it is settled.`
                : 'It counts as done until it is settled.',
            ),
            h(
              'div',
              { class: 'doubt-body' },
              renderInDoubt(p.inDoubt),
              form
                ? form.el
                : h('p', { class: 'hint' }, `The twin’s owner (${exec ?? 'its executive'}) or an admin settles it, with evidence.`),
            ),
          )
        : null,
      p.reconciliation
        ? h(
            'section',
            { class: 'panel', 'aria-labelledby': 'reconciled-title' },
            h('h2', { id: 'reconciled-title' }, 'Reconciled'),
            renderReconciliation(p.reconciliation),
            p.inDoubt
              ? h('details', { class: 'args' }, h('summary', null, 'What was known while it was in doubt'), renderInDoubt(p.inDoubt))
              : null,
          )
        : null,
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'facts-title' },
        h('h2', { id: 'facts-title' }, 'Request'),
        a ? h('p', { class: 'amount' }, h('span', { class: 'sr-only' }, 'Amount: '), a.text) : null,
        h(
          'dl',
          { class: 'kv' },
          h('dt', null, 'Status'),
          h('dd', null, statusBadge(p.status), ' ', h('span', { class: 'muted' }, `since ${fmtAgo(p.updatedAt)}`)),
          h('dt', null, 'Twin'),
          h('dd', null, p.twin),
          viaOf(p) ? [h('dt', null, 'Client'), h('dd', null, viaOf(p))] : null,
          h('dt', null, 'Executive'),
          h('dd', null, exec ?? '—'),
          h('dt', null, 'Action'),
          h('dd', null, h('code', null, p.action)),
          h('dt', null, 'Counterparty'),
          h('dd', null, counterpartyOf(p) ?? '—'),
          h('dt', null, 'Requested'),
          h('dd', null, fmtDateTime(p.createdAt), ' (', timeEl(p.createdAt), ')'),
          h('dt', null, 'Attempts'),
          h('dd', null, String(p.attempts ?? 0)),
          h('dt', null, 'Idempotency key'),
          h('dd', null, h('code', null, p.idempotencyKey)),
          h('dt', null, 'Proposal id'),
          h('dd', null, h('code', null, p.id)),
          p.audit ? [h('dt', null, 'Audit'), h('dd', null, p.audit)] : null,
        ),
        h('h3', null, 'Twin’s rationale'),
        h('blockquote', null, p.rationale || '—'),
      ),
      h(
        'div',
        { class: 'two-col' },
        h(
          'section',
          { class: 'panel', 'aria-labelledby': 'policy-title' },
          h('h2', { id: 'policy-title' }, 'Policy ', outcomeBadge(p.decision?.outcome ?? 'deny')),
          renderReasons(p.decision?.reasons),
          p.approval
            ? h(
                'p',
                { class: 'hint' },
                `Approvals: ${p.approval.approvedBy.length} of ${p.approval.quorum} (${p.approval.approvers.join(', ')}).`,
              )
            : null,
        ),
        h('section', { class: 'panel', 'aria-labelledby': 'args-title' }, h('h2', { id: 'args-title' }, 'Arguments'), renderArgs(p.args)),
      ),
      p.result || p.error
        ? h(
            'section',
            { class: 'panel', 'aria-labelledby': 'result-title' },
            h('h2', { id: 'result-title' }, p.error ? (p.status === 'failed' ? 'Why it failed' : 'Error') : 'Result'),
            p.error ? h('p', { class: 'warn-text' }, p.error) : null,
            p.result ? h('pre', { class: 'code' }, JSON.stringify(p.result, null, 2)) : null,
          )
        : null,
      p.preview !== undefined
        ? h(
            'section',
            { class: 'panel', 'aria-labelledby': 'preview-title' },
            h('h2', { id: 'preview-title' }, 'Preview'),
            renderPreview(p.preview),
          )
        : null,
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'reviews-title' },
        h('h2', { id: 'reviews-title' }, 'Reviews'),
        reviews.length
          ? h(
              'ul',
              { class: 'reviews-list' },
              reviews.map((r) =>
                h('li', null, h('strong', null, r.actor), ` ${r.decision} (${fmtAgo(r.createdAt)})`, r.comment ? `: ${r.comment}` : ''),
              ),
            )
          : h('p', { class: 'muted' }, 'No reviews.'),
      ),
    );
    focused?.focus({ preventScroll: true });
    document.title = `${titleOf(p)} · Regent`;
  }

  // Terminal proposals change no more (an audit verdict at most): checked rarely.
  const stopper = poll(refresh, () => (status && TERMINAL.has(status) ? 20000 : 4000));
  return () => stopper.stop();
}
