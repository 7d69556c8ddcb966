// The post-hoc audit queue: actions executed in execute mode, for an auditor to pass or flag.
import { get, post, qs, seg } from './api.js';
import { field, h, newId, pretty, replace, show, timeEl } from './dom.js';
import { amountOf, counterpartyOf, renderArgs, statusBadge, titleOf } from './proposals.js';
import { badge, emptyState, errorBox, formDialog, pageHead, poll, toast } from './ui.js';

export async function auditQueueView(root) {
  const showSel = h('select', { id: 'audit-show' }, [
    h('option', { value: 'pending' }, 'Waiting for audit'),
    h('option', { value: 'flagged' }, 'Flagged'),
    h('option', { value: 'passed' }, 'Passed'),
  ]);
  const list = h('div', { class: 'cards' });
  const problems = h('div');
  replace(
    root,
    pageHead('Audit queue', 'Actions twins executed on their own, for you to pass or flag after the fact.'),
    h(
      'div',
      { class: 'toolbar' },
      h('div', { class: 'toolbar-group' }, h('label', { for: 'audit-show', class: 'inline-label' }, 'Show'), showSel),
    ),
    problems,
    list,
  );
  showSel.addEventListener('change', () => stopper.now());
  const cards = new Map();

  async function refresh() {
    let r;
    try {
      r = await get(`/v1/proposals${qs({ audit: showSel.value, limit: 200 })}`);
    } catch (err) {
      replace(problems, errorBox(err, 'Could not load the audit queue'));
      return;
    }
    replace(problems);
    const items = (r?.proposals ?? []).filter((p) => p.audit === showSel.value);
    if (!items.length) {
      cards.clear();
      replace(
        list,
        emptyState(
          showSel.value === 'pending' ? 'Nothing waits for audit.' : `No ${showSel.value} actions.`,
          showSel.value === 'pending' ? 'When a twin in execute mode acts on its own, the action appears here.' : null,
        ),
      );
      return;
    }
    const keep = new Set(items.map((p) => p.id));
    for (const [id, c] of cards) if (!keep.has(id)) (c.remove(), cards.delete(id));
    list.querySelector('.empty')?.remove();
    for (const p of items) {
      let c = cards.get(p.id);
      const sig = `${p.updatedAt}|${p.audit}`;
      if (!c || c.dataset.sig !== sig) {
        const fresh = auditCard(p, showSel.value === 'pending', () => stopper.now());
        fresh.dataset.sig = sig;
        if (c) c.replaceWith(fresh);
        c = fresh;
        cards.set(p.id, c);
      }
      list.append(c);
    }
  }
  const stopper = poll(refresh, 6000);
  return () => stopper.stop();
}

function auditCard(p, actionable, changed) {
  const titleId = `audit-${p.id}-title`;
  const a = amountOf(p);
  const pass = h('button', { type: 'button', class: 'primary', 'aria-describedby': titleId }, 'Pass');
  const flag = h('button', { type: 'button', class: 'danger-outline', 'aria-describedby': titleId }, 'Flag');
  const card = h(
    'article',
    { class: 'card audit-card', 'aria-labelledby': titleId, 'data-key': p.id },
    h('div', { class: 'card-top' }, h('h2', { id: titleId, class: 'card-title' }, titleOf(p)), statusBadge(p.status)),
    a ? h('p', { class: 'amount' }, a.text) : null,
    h(
      'dl',
      { class: 'kv compact' },
      h('dt', null, 'Twin'),
      h('dd', null, p.twin),
      h('dt', null, 'Counterparty'),
      h('dd', null, counterpartyOf(p) ?? '—'),
      h('dt', null, 'Policy'),
      h('dd', null, p.decision?.outcome ?? '—'),
      h('dt', null, 'When'),
      h('dd', null, timeEl(p.updatedAt)),
      h('dt', null, 'Audit'),
      h('dd', null, badge(p.audit, p.audit === 'flagged' ? 'bad' : p.audit === 'passed' ? 'ok' : 'warn')),
    ),
    h('div', { class: 'rationale' }, h('h3', null, 'Twin’s rationale'), h('blockquote', null, p.rationale || '—')),
    h(
      'details',
      { class: 'args' },
      h('summary', null, 'Arguments and result'),
      renderArgs(p.args),
      p.result ? h('pre', { class: 'code' }, pretty(p.result)) : null,
      p.error ? h('p', { class: 'warn-text' }, p.error) : null,
    ),
    actionable ? h('div', { class: 'card-actions' }, pass, flag) : null,
  );
  const verdict = async (v, btn) => {
    const id = newId('audit-comment');
    const comment = h('textarea', { id, rows: 3, maxlength: 4000, required: v === 'flagged' });
    const ok = await formDialog({
      title: v === 'passed' ? `Pass ${titleOf(p)}?` : `Flag ${titleOf(p)}?`,
      content: h(
        'div',
        { class: 'field' },
        h('label', { for: id }, v === 'passed' ? 'Comment (optional)' : 'What is wrong?'),
        comment,
        h('p', { class: 'hint' }, 'Kept in the journal with your verdict.'),
      ),
      submitLabel: v === 'passed' ? 'Pass' : 'Flag',
      submitClass: v === 'passed' ? 'primary' : 'danger',
      returnFocus: btn,
      onSubmit: () => {
        const c = comment.value.trim();
        if (v === 'flagged' && !c) {
          comment.setAttribute('aria-invalid', 'true');
          throw new Error('Say what is wrong, so the executive can act on it.');
        }
        return post(`/v1/proposals/${seg(p.id)}/audit`, { verdict: v, ...(c ? { comment: c } : {}) });
      },
    });
    if (ok) {
      toast(`${titleOf(p)}: ${v}.`, 'ok');
      changed();
    }
  };
  pass.addEventListener('click', () => verdict('passed', pass));
  flag.addEventListener('click', () => verdict('flagged', flag));
  return card;
}
