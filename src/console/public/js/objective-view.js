// One objective: its facts, progress, summary, the proposals and steps it made, and cancelling it.
import { get, isMissingRoute, post, seg } from './api.js';
import { field, fmtAmount, fmtDateTime, h, newId, replace, replaceKeepFocus, show, timeEl } from './dom.js';
import { STATUS_KIND, amountOf, outcomeBadge, renderArgs, statusBadge, titleOf } from './proposals.js';
import { badge, dataTable, emptyState, errorBox, formDialog, pageHead, poll, toast } from './ui.js';

const OBJECTIVE_KIND = {
  queued: 'info',
  running: 'info',
  waiting_for_approval: 'warn',
  completed: 'ok',
  failed: 'bad',
  cancelled: 'muted',
};
export const objectiveBadge = (s) => badge(s, OBJECTIVE_KIND[s] ?? 'muted');
const TERMINAL_OBJECTIVE = new Set(['completed', 'failed', 'cancelled']);

export async function objectiveView(root, { rest }) {
  const id = rest[0];
  const body = h('div');
  const back = h('a', { href: '#/twins', class: 'back' }, '← Twins');
  replace(root, back, body);
  let last = null;
  let terminal = false;

  async function refresh() {
    let o;
    try {
      o = await get(`/v1/objectives/${seg(id)}`);
    } catch (err) {
      if (isMissingRoute(err)) replace(body, pageHead('Objective'), emptyState('Objectives are not available on this server yet.', null));
      else replace(body, pageHead('Objective'), errorBox(err, 'Could not load the objective'));
      stopper.stop();
      return;
    }
    const sig = JSON.stringify(o);
    if (sig === last) return;
    const firstRender = last === null;
    last = sig;
    render(o, firstRender);
    // Once it has ended, little changes: checked every 15 s instead of every 3 s.
    terminal = TERMINAL_OBJECTIVE.has(o.status);
  }

  function render(o, firstRender) {
    const proposals = proposalsOf(o);
    const steps = o.stepsUsed ?? o.steps_used;
    const budget = o.stepBudget ?? o.constraints?.stepBudget;
    const cons = o.constraints ?? {};
    const cancel = TERMINAL_OBJECTIVE.has(o.status)
      ? null
      : h('button', { type: 'button', class: 'danger-outline', 'data-key': 'cancel-objective' }, 'Cancel objective');
    cancel?.addEventListener('click', () => cancelObjective(o, cancel));
    replaceKeepFocus(
      body,
      pageHead(o.text || 'Objective', null, objectiveBadge(o.status), cancel),
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'obj-facts' },
        h('h2', { id: 'obj-facts', class: 'sr-only' }, 'Facts'),
        h(
          'dl',
          { class: 'kv' },
          h('dt', null, 'Twin'),
          h('dd', null, o.twin ?? o.twinId ?? '—'),
          h('dt', null, 'Status'),
          h('dd', null, String(o.status ?? '—').replace(/_/g, ' ')),
          o.playbook ? [h('dt', null, 'Playbook'), h('dd', null, h('code', null, o.playbook))] : null,
          h('dt', null, 'Planner'),
          h('dd', null, o.planner ?? (o.playbook ? 'playbook' : 'agent')),
          steps !== undefined ? [h('dt', null, 'Steps'), h('dd', null, budget ? `${steps} of at most ${budget}` : String(steps))] : null,
          h('dt', null, 'Assigned'),
          h('dd', null, o.createdAt ? [fmtDateTime(o.createdAt), o.createdBy ? ` by ${o.createdBy}` : ''] : '—'),
          o.finishedAt ? [h('dt', null, 'Finished'), h('dd', null, fmtDateTime(o.finishedAt))] : null,
          cons.deadline || o.deadline ? [h('dt', null, 'Deadline'), h('dd', null, fmtDateTime(cons.deadline ?? o.deadline))] : null,
          cons.spendCeiling
            ? [h('dt', null, 'Spend ceiling'), h('dd', null, fmtAmount(cons.spendCeiling.amount, cons.spendCeiling.currency))]
            : null,
        ),
        o.params && Object.keys(o.params).length ? [h('h3', null, 'Parameters'), renderArgs(o.params)] : null,
      ),
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'obj-summary' },
        h('h2', { id: 'obj-summary' }, 'Progress'),
        progressBar(o, proposals),
        h(
          'p',
          { class: 'summary' },
          o.summary || (TERMINAL_OBJECTIVE.has(o.status) ? 'No summary.' : 'The twin is working on it; this page updates by itself.'),
        ),
      ),
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'obj-proposals' },
        h('h2', { id: 'obj-proposals' }, 'Proposals'),
        proposals.length
          ? h(
              'div',
              { class: 'table-wrap' },
              dataTable(
                'Proposals made for this objective',
                ['Action', 'Amount', 'Status', 'Policy', 'When'],
                proposals.map((p) => {
                  const a = p.args ? amountOf(p) : p.amount ? { text: show(p.amount) } : null;
                  return h(
                    'tr',
                    { 'data-key': p.id ?? p.key },
                    h(
                      'td',
                      null,
                      p.id && p.id !== p.key
                        ? h(
                            'a',
                            { href: `#/proposals/${encodeURIComponent(p.id)}?from=objectives/${encodeURIComponent(o.id ?? id)}` },
                            p.args ? titleOf(p) : (p.action ?? p.id),
                          )
                        : p.args
                          ? titleOf(p)
                          : (p.action ?? '—'),
                    ),
                    h('td', { class: 'num' }, a?.text ?? '—'),
                    h('td', null, p.status ? statusBadge(p.status) : '—'),
                    h(
                      'td',
                      null,
                      p.decision
                        ? [outcomeBadge(p.decision.outcome), ' ', h('span', { class: 'muted' }, lastReason(p.decision.reasons))]
                        : (p.reasons ?? []).join('; ') || '—',
                    ),
                    h('td', null, p.createdAt ? timeEl(p.createdAt) : '—'),
                  );
                }),
              ),
            )
          : h('p', { class: 'muted' }, 'No proposals yet.'),
        proposals.some((p) => p.status === 'pending_approval')
          ? h('p', { class: 'hint' }, 'Pending requests wait in the approvers’ inbox.')
          : null,
        proposals.some((p) => p.status === 'in_doubt')
          ? h(
              'p',
              { class: 'hint' },
              'A request in doubt was cut off at the business system: the objective waits until its owner or an admin settles it under In doubt.',
            )
          : null,
      ),
      Array.isArray(o.steps) && o.steps.length
        ? h(
            'section',
            { class: 'panel', 'aria-labelledby': 'obj-steps' },
            h('h2', { id: 'obj-steps' }, 'Steps'),
            h(
              'ol',
              { class: 'steps' },
              o.steps.map((st) =>
                h(
                  'li',
                  { 'data-key': st.key },
                  h('span', { class: 'step-key' }, st.key),
                  ' ',
                  h('code', null, st.action),
                  ' ',
                  st.status ? badge(String(st.status), STATUS_KIND[st.status] ?? 'muted') : null,
                  st.reasons?.length ? h('p', { class: 'hint' }, st.reasons.join('; ')) : null,
                ),
              ),
            ),
          )
        : null,
    );
    if (firstRender) document.title = `Objective · Regent`;
  }

  async function cancelObjective(o, btn) {
    const why = h('textarea', { id: newId('why'), rows: 2, maxlength: 2000 });
    const done = await formDialog({
      title: 'Cancel this objective?',
      description: 'The run stops and its open requests are withdrawn. What already ran stays done.',
      content: field('Reason (optional)', why).wrap,
      submitLabel: 'Cancel objective',
      submitClass: 'danger',
      cancelLabel: 'Keep it',
      returnFocus: btn,
      onSubmit: () => post(`/v1/objectives/${seg(o.id)}/cancel`, why.value.trim() ? { reason: why.value.trim() } : {}),
    });
    if (done) {
      toast('Objective cancelled.', 'ok');
      last = null;
      stopper.now();
    }
  }

  const stopper = poll(refresh, () => (terminal ? 15000 : 3000));
  return () => stopper.stop();
}

/** The reason that decided the outcome: the last one (the cap or tier), else the grant. */
const lastReason = (reasons) => (reasons?.length ? reasons[reasons.length - 1].message : '');

/** The objective's proposals: full views when the server gives them, else its steps. */
function proposalsOf(o) {
  if (Array.isArray(o.proposals) && o.proposals.length) return o.proposals.map((p) => (typeof p === 'string' ? { id: p } : p));
  if (Array.isArray(o.steps))
    return o.steps.map((s) => ({
      id: s.proposalId ?? s.proposal_id ?? s.key,
      key: s.key,
      action: s.action,
      status: s.proposalStatus ?? s.proposal_status ?? s.status,
      amount: s.amount,
      reasons: s.outcome?.reasons,
      createdAt: s.createdAt,
    }));
  return [];
}

function progressBar(o, proposals) {
  const done = proposals.filter((p) => ['executed', 'approved', 'executing'].includes(p.status)).length;
  const total = proposals.length;
  if (!total) return null;
  const id = newId('progress');
  return h(
    'div',
    { class: 'progress-row' },
    h('label', { for: id }, `${done} of ${total} request${total > 1 ? 's' : ''} approved or done`),
    h('progress', { id, max: String(total), value: String(done) }),
  );
}
