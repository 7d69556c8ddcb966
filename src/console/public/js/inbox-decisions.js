// Deciding in the inbox: approve a card (it stays while its quorum waits), reject it with a reason,
// edit its arguments (policy decides again), or approve or reject the selected ones in bulk.
import { ApiError, post, seg } from './api.js';
import { argsEditor } from './args-editor.js';
import { field, h, newId, replace } from './dom.js';
import { titleOf } from './proposals.js';
import { confirmDialog, errorText, formDialog, toast, toastError } from './ui.js';

/**
 * The inbox's decisions over its cards (`items`: id → { p, card, parts }) and the `selected` ids.
 * The inbox gives the rest: order() (ids, most urgent first), visibleIds(), setCurrent(id, focus),
 * syncSelection(), fill(entry), pollNow(), and its bulk controls.
 */
export function inboxDecisions({
  items,
  selected,
  order,
  visibleIds,
  setCurrent,
  syncSelection,
  fill,
  pollNow,
  bulkApprove,
  bulkReject,
  bulkErrors,
}) {
  async function decide(id, body) {
    return post(`/v1/proposals/${seg(id)}/decisions`, body);
  }

  /** After a card is decided, the next one becomes current (so a/r/e flow on). */
  function afterDecided(id) {
    const vis = visibleIds();
    const i = vis.indexOf(id);
    const next = vis[i + 1] ?? vis[i - 1] ?? null;
    const entry = items.get(id);
    if (entry) entry.card.classList.add('leaving');
    if (next && next !== id) setCurrent(next, true);
    pollNow();
  }

  function busy(id, on) {
    const e = items.get(id);
    if (!e) return;
    for (const b of [e.parts.approve, e.parts.reject, e.parts.edit]) b.disabled = on;
    e.card.setAttribute('aria-busy', String(on));
  }

  async function approveOne(id) {
    const e = items.get(id);
    if (!e) return;
    busy(id, true);
    try {
      const r = await decide(id, { decision: 'approve' });
      if (r.status === 'pending_approval') {
        // Quorum not reached yet: the card stays, showing this person's approval.
        const a = r.approval;
        toast(
          `Your approval of ${titleOf(r)} is recorded (${a?.approvedBy?.length ?? 1} of ${a?.quorum ?? '?'}); it waits for more approvers.`,
          'ok',
        );
        busy(id, false);
        e.p = r;
        fill(e);
        pollNow();
        return;
      }
      toast(`Approved: ${titleOf(r)}. ${r.status === 'approved' ? 'It runs now.' : `Status: ${r.status.replace('_', ' ')}.`}`, 'ok');
      afterDecided(id);
    } catch (err) {
      toastError(err, `Could not approve ${titleOf(e.p)}`);
      busy(id, false);
      if (items.has(id)) fill(items.get(id));
      if (err instanceof ApiError && (err.status === 409 || err.status === 404)) pollNow();
    }
  }

  async function rejectOne(id) {
    const e = items.get(id);
    if (!e) return;
    const { input, wrap } = reasonField();
    const opener = e.parts.reject;
    const done = await formDialog({
      title: `Reject ${titleOf(e.p)}?`,
      description: `${e.p.twin} asked for this. Say why you reject it.`,
      content: wrap,
      submitLabel: 'Reject',
      submitClass: 'danger',
      returnFocus: opener,
      onSubmit: async () =>
        decide(id, { decision: 'reject', comment: reasonOf(input, 'A rejection needs a reason: it goes back to the twin.') }),
    });
    if (done) {
      toast(`Rejected: ${titleOf(e.p)}.`, 'ok');
      afterDecided(id);
    }
  }

  async function editOne(id) {
    const e = items.get(id);
    if (!e) return;
    const p = e.p;
    const form = argsEditor(p.args ?? {});
    const note = h('textarea', { id: newId('note'), name: 'comment', rows: 2, maxlength: 4000 });
    const result = await formDialog({
      title: `Edit ${titleOf(p)}`,
      description: 'Change the arguments; policy decides the edited request again, and earlier approvals stop counting.',
      content: [form.el, field('Note (optional)', note).wrap],
      submitLabel: 'Save and re-decide',
      wide: true,
      returnFocus: e.parts.edit,
      onSubmit: async () => {
        const args = form.value();
        const comment = note.value.trim();
        return decide(id, { decision: 'edit', args, ...(comment ? { comment } : {}) });
      },
    });
    if (!result || result === true) return;
    const reasons = (result.decision?.reasons ?? []).map((r) => r.message).join('; ');
    const kind = result.status === 'denied' ? 'error' : 'ok';
    toast(
      `Edited ${titleOf(result)}: policy now says ${result.decision?.outcome ?? '?'}, status ${result.status.replace('_', ' ')}.${reasons ? ` ${reasons}` : ''}`,
      kind,
    );
    if (result.status !== 'pending_approval') afterDecided(id);
    else pollNow();
  }

  async function bulk(decision) {
    const ids = order().filter((id) => selected.has(id));
    if (!ids.length) return;
    const names = ids.map((id) => titleOf(items.get(id).p));
    const listEl = h(
      'ul',
      { class: 'bulk-list' },
      names.map((n) => h('li', null, n)),
    );
    let comment;
    if (decision === 'approve') {
      const ok = await confirmDialog({
        title: `Approve ${ids.length} proposal${ids.length > 1 ? 's' : ''}?`,
        message: [h('p', null, 'Each is approved as it is now; those that reach their quorum run.'), listEl],
        confirmLabel: `Approve ${ids.length}`,
        returnFocus: bulkApprove,
      });
      if (!ok) return;
    } else {
      const { input, wrap } = reasonField('Reason (for all of them)');
      const got = await formDialog({
        title: `Reject ${ids.length} proposal${ids.length > 1 ? 's' : ''}?`,
        content: [listEl, wrap],
        submitLabel: `Reject ${ids.length}`,
        submitClass: 'danger',
        returnFocus: bulkReject,
        onSubmit: async () => reasonOf(input, 'A rejection needs a reason: it goes back to the twins.'),
      });
      if (!got) return;
      comment = got;
    }
    bulkApprove.disabled = bulkReject.disabled = true;
    const failures = [];
    let ok = 0;
    for (const id of ids) {
      busy(id, true);
      try {
        await decide(id, decision === 'approve' ? { decision: 'approve' } : { decision: 'reject', comment });
        ok++;
        selected.delete(id);
        items.get(id)?.card.classList.add('leaving');
      } catch (err) {
        failures.push({ id, err });
        busy(id, false);
      }
    }
    const verb = decision === 'approve' ? 'approved' : 'rejected';
    if (failures.length) {
      replace(
        bulkErrors,
        h(
          'div',
          { class: 'error-box', role: 'alert' },
          h('p', { class: 'error-title' }, `${ok} ${verb}; ${failures.length} not:`),
          h(
            'ul',
            null,
            failures.map(({ id, err }) =>
              h('li', null, h('strong', null, titleOf(items.get(id)?.p ?? { action: id })), ': ', errorText(err)),
            ),
          ),
        ),
      );
    } else {
      replace(bulkErrors);
      toast(`${ok} proposal${ok === 1 ? '' : 's'} ${verb}.`, 'ok');
    }
    syncSelection();
    await pollNow();
  }

  return { approveOne, rejectOne, editOne, bulk };
}

/** A required reason for a rejection: it goes back to the twin. */
function reasonField(label = 'Reason') {
  const input = h('textarea', { id: newId('reason'), name: 'comment', required: true, rows: 3, maxlength: 4000 });
  return field(label, input, 'Required. It is sent back to the twin and kept in the journal.');
}

/** The reason typed in a reasonField; none marks the field and throws `message` (the dialog shows it). */
function reasonOf(input, message) {
  const comment = input.value.trim();
  if (!comment) {
    input.setAttribute('aria-invalid', 'true');
    throw new Error(message);
  }
  return comment;
}
