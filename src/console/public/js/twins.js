// The executive's view: their twins, each twin's mode (changed only after a confirmation), kill
// switches, objectives (free text or a playbook form) and what the twin has asked for lately.
import { ApiError, get, isMissingRoute, post, put, qs, seg } from './api.js';
import { field, fmtAmount, fmtDateTime, h, markInvalid, newId, replace, replaceKeepFocus, show, timeEl } from './dom.js';
import { STATUS_KIND, amountOf, outcomeBadge, renderArgs, statusBadge, titleOf } from './proposals.js';
import { schemaForm } from './schema-form.js';
import {
  badge,
  confirmDialog,
  emptyState,
  errorBox,
  formDialog,
  pageHead,
  poll,
  secretDialog,
  sectionHead,
  toast,
  toastError,
} from './ui.js';

const MODES = [
  ['propose', 'Propose', 'Records what it would do; nothing runs until a person acts.'],
  ['approve', 'Approve', 'Asks the named approvers before anything runs.'],
  ['execute', 'Execute', 'Acts at once within its authority; auditors review afterwards. Policy can still ask for approval.'],
];
const MODE_RANK = { propose: 0, approve: 1, execute: 2 };

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

/** Notifies the shell that the kill switch changed (its banner refreshes). */
const killChanged = () => window.dispatchEvent(new CustomEvent('regent:kill-switch'));

export async function twinsView(root, { me, navigate }) {
  const isAdmin = me.capabilities.includes('user.manage');
  const canGlobal = me.capabilities.includes('killSwitch.engageGlobal');
  const canCreate = me.capabilities.includes('twin.create');
  const canAssign = me.capabilities.includes('objective.assign');
  const cards = new Map(); // twin id → { el, parts, twin }
  let objectivesSupported = true;
  let loadError = null;

  const killPanel = h('section', { class: 'panel kill-panel', 'aria-labelledby': 'kill-title' });
  const list = h('div', { class: 'twin-grid' });
  const problems = h('div');
  const newTwin = canCreate ? h('button', { type: 'button', class: 'secondary' }, 'New twin') : null;
  newTwin?.addEventListener('click', async () => {
    const created = await createTwinDialog({ me, returnFocus: newTwin });
    if (created) stopper.now();
  });

  replace(
    root,
    pageHead(
      'Twins',
      isAdmin
        ? 'Every twin, its mode and its kill switch.'
        : 'Your twins: how much they may do on their own, and what they are working on.',
      newTwin,
    ),
    problems,
    canGlobal ? killPanel : null,
    list,
  );

  async function refresh() {
    let twins, kill, proposals;
    try {
      [twins, kill, proposals] = await Promise.all([
        get('/v1/twins').then((r) => r?.twins ?? []),
        get('/v1/kill-switch').catch(() => null),
        get(`/v1/proposals${qs({ limit: 200 })}`)
          .then((r) => r?.proposals ?? [])
          .catch(() => []),
      ]);
    } catch (err) {
      loadError = err;
      replace(problems, errorBox(err, 'Could not load the twins'));
      return;
    }
    if (loadError) replace(problems);
    loadError = null;
    if (canGlobal) renderKill(kill);

    const ids = new Set(twins.map((t) => t.id));
    for (const [id, c] of cards) if (!ids.has(id)) (c.el.remove(), cards.delete(id));
    if (!twins.length) {
      replace(
        list,
        emptyState(
          'No twins yet.',
          canCreate
            ? 'Create one with New twin: it gets an id, an owner, the authority document it acts under, and a mode.'
            : 'An admin creates twins for you.',
        ),
      );
      return;
    }
    list.querySelector('.empty')?.remove();
    for (const t of twins) {
      let c = cards.get(t.id);
      if (!c) {
        c = buildTwin(t);
        cards.set(t.id, c);
      }
      list.append(c.el); // keeps the server's order; moving an element that is in place is a no-op for focus
      updateTwin(
        c,
        t,
        kill,
        proposals.filter((p) => p.twin === t.id),
      );
    }
    await Promise.all(twins.map((t) => loadObjectives(cards.get(t.id))));
  }

  function renderKill(kill) {
    const engaged = Boolean(kill?.engaged);
    const btn = h(
      'button',
      { type: 'button', class: engaged ? 'primary' : 'danger', 'data-key': 'global-kill' },
      engaged ? 'Resume all twins' : 'Stop all twins',
    );
    btn.addEventListener('click', async () => {
      const ok = await confirmDialog({
        title: engaged ? 'Resume execution for all twins?' : 'Stop all execution now?',
        message: engaged
          ? 'Approved work and execute-mode actions run again (work that expired meanwhile never runs).'
          : 'No twin executes anything until you resume, approved work included. Twins can still propose, and approvers can still decide.',
        confirmLabel: engaged ? 'Resume all' : 'Stop all',
        danger: !engaged,
        returnFocus: btn,
      });
      if (!ok) return;
      try {
        await post('/v1/kill-switch', { engaged: !engaged });
        toast(engaged ? 'Execution resumed for all twins.' : 'Kill switch engaged: all execution stopped.', engaged ? 'ok' : 'warn');
        killChanged();
        await stopper.now();
      } catch (err) {
        toastError(err, 'Could not change the kill switch');
      }
    });
    killPanel.classList.toggle('engaged', engaged);
    replaceKeepFocus(
      killPanel,
      h('h2', { id: 'kill-title' }, 'Kill switch'),
      h(
        'p',
        { class: engaged ? 'kill-state engaged' : 'kill-state' },
        engaged ? badge('engaged', 'bad') : badge('off', 'ok'),
        ' ',
        engaged ? `All execution is stopped (since ${fmtDateTime(kill.updatedAt)}, by ${kill.updatedBy}).` : 'Execution runs normally.',
        kill?.twins?.length ? ` Stopped twins: ${kill.twins.join(', ')}.` : '',
      ),
      btn,
    );
  }

  function buildTwin(t) {
    const titleId = newId('twin');
    const modeGroup = h('fieldset', { class: 'modes' }, h('legend', null, 'Mode'));
    const radios = MODES.map(([value, label, hint]) => {
      const id = newId(`mode-${t.id}`);
      const input = h('input', { type: 'radio', name: `mode-${t.id}`, id, value, 'aria-describedby': `${id}-hint` });
      modeGroup.append(
        h('div', { class: 'mode-option' }, input, h('label', { for: id }, label), h('p', { class: 'hint', id: `${id}-hint` }, hint)),
      );
      input.addEventListener('change', () => changeMode(c, value, input));
      return input;
    });
    const killState = h('p', { class: 'kill-state' });
    const killBtn = h('button', { type: 'button' });
    killBtn.addEventListener('click', () => toggleTwinKill(c, killBtn));
    const assign = h('button', { type: 'button', class: 'primary' }, 'Assign objective');
    assign.addEventListener('click', () => assignObjective(c, assign));
    const objectives = h('div', { class: 'objectives' });
    const recent = h('div', { class: 'recent' });
    const meta = h('dl', { class: 'kv compact' });
    const el = h(
      'article',
      { class: 'card twin', 'aria-labelledby': titleId, dataset: { twin: t.id } },
      h('div', { class: 'card-top' }, h('h2', { id: titleId, class: 'card-title' }, t.id), h('span', { class: 'twin-status' })),
      meta,
      modeGroup,
      h('div', { class: 'twin-kill' }, h('h3', null, 'Kill switch'), killState, killBtn),
      h('div', { class: 'twin-objectives' }, canAssign ? sectionHead(3, 'Objectives', assign) : h('h3', null, 'Objectives'), objectives),
      h('div', { class: 'twin-recent' }, h('h3', null, 'Recent requests'), recent),
    );
    const c = {
      el,
      twin: t,
      parts: { radios, killState, killBtn, assign, objectives, recent, meta, status: el.querySelector('.twin-status') },
      busy: false,
    };
    return c;
  }

  function updateTwin(c, t, kill, proposals) {
    c.twin = t;
    const { parts } = c;
    replace(
      parts.meta,
      h('dt', null, 'Works for'),
      h('dd', null, t.owner),
      h('dt', null, 'Authority'),
      h('dd', null, h('code', null, t.authority)),
      h('dt', null, 'Since'),
      h('dd', null, fmtDateTime(t.createdAt)),
    );
    if (!c.busy) for (const r of parts.radios) r.checked = r.value === t.mode;
    const globalOn = Boolean(kill?.engaged);
    replace(
      parts.status,
      t.killed ? badge('stopped', 'bad') : globalOn ? badge('halted (global)', 'bad') : badge(t.mode, t.mode === 'execute' ? 'ok' : 'info'),
    );
    parts.killState.textContent = t.killed
      ? 'Stopped: this twin executes nothing until resumed.'
      : globalOn
        ? 'Running, but the global kill switch stops all execution.'
        : 'Running.';
    parts.killBtn.textContent = t.killed ? 'Resume this twin' : 'Stop this twin';
    parts.killBtn.className = t.killed ? 'secondary' : 'danger-outline';
    parts.killBtn.setAttribute('aria-describedby', parts.killState.id || (parts.killState.id = newId('kill')));

    const latest = proposals.slice(0, 5);
    replaceKeepFocus(
      parts.recent,
      latest.length
        ? h(
            'ul',
            { class: 'mini-list' },
            latest.map((p) => {
              const a = amountOf(p);
              return h(
                'li',
                { 'data-key': p.id },
                statusBadge(p.status),
                ' ',
                h('a', { href: `#/proposals/${encodeURIComponent(p.id)}?from=twins` }, titleOf(p)),
                a ? h('span', { class: 'muted' }, ` · ${a.text}`) : null,
                ' ',
                h('span', { class: 'muted' }, timeEl(p.createdAt)),
              );
            }),
          )
        : h('p', { class: 'muted' }, 'No requests yet.'),
    );
  }

  async function loadObjectives(c) {
    if (!c) return;
    const { objectives, assign } = c.parts;
    if (!objectivesSupported) return;
    let r;
    try {
      r = await get(`/v1/twins/${seg(c.twin.id)}/objectives`);
    } catch (err) {
      if (isMissingRoute(err)) {
        objectivesSupported = false;
        for (const x of cards.values()) {
          x.parts.assign.disabled = true;
          replace(x.parts.objectives, h('p', { class: 'muted' }, 'Objectives are not available on this server yet.'));
        }
        return;
      }
      replace(objectives, errorBox(err, 'Could not load objectives'));
      return;
    }
    assign.disabled = false;
    const items = Array.isArray(r) ? r : (r?.objectives ?? []);
    replaceKeepFocus(
      objectives,
      items.length
        ? h(
            'ul',
            { class: 'mini-list' },
            items
              .slice(0, 8)
              .map((o) =>
                h(
                  'li',
                  { 'data-key': o.id },
                  objectiveBadge(o.status),
                  ' ',
                  h('a', { href: `#/objectives/${encodeURIComponent(o.id)}` }, o.text || o.playbook || o.id),
                  ' ',
                  h('span', { class: 'muted' }, timeEl(o.createdAt)),
                ),
              ),
          )
        : h(
            'p',
            { class: 'muted' },
            canAssign
              ? 'No objectives yet. Assign one: in your own words, or with a playbook.'
              : 'No objectives yet; the twin’s executive assigns them.',
          ),
    );
  }

  async function changeMode(c, mode, input) {
    const from = c.twin.mode;
    if (mode === from) return;
    c.busy = true;
    const up = MODE_RANK[mode] > MODE_RANK[from];
    const ok = await confirmDialog({
      title: `Switch ${c.twin.id} to ${mode} mode?`,
      message: [
        h('p', null, `From ${from} to ${mode}. ${MODES.find((m) => m[0] === mode)[2]}`),
        up ? h('p', { class: 'warn-text' }, 'This gives the twin more autonomy. Its authority document still caps what it may do.') : null,
      ],
      confirmLabel: `Switch to ${mode}`,
      danger: up && mode === 'execute',
      returnFocus: input,
    });
    if (!ok) {
      for (const r of c.parts.radios) r.checked = r.value === c.twin.mode;
      c.busy = false;
      return;
    }
    try {
      const t = await put(`/v1/twins/${seg(c.twin.id)}/mode`, { mode });
      c.twin = { ...c.twin, ...t };
      toast(`${c.twin.id} is now in ${mode} mode.`, 'ok');
    } catch (err) {
      toastError(err, `Could not switch ${c.twin.id} to ${mode}`);
      for (const r of c.parts.radios) r.checked = r.value === c.twin.mode;
    } finally {
      c.busy = false;
      stopper.now();
    }
  }

  async function toggleTwinKill(c, btn) {
    const stop = !c.twin.killed;
    const ok = await confirmDialog({
      title: stop ? `Stop ${c.twin.id}?` : `Resume ${c.twin.id}?`,
      message: stop
        ? `${c.twin.id} executes nothing, approved work included, until you resume it. It can still propose.`
        : `${c.twin.id} may execute again within its mode and authority.`,
      confirmLabel: stop ? 'Stop twin' : 'Resume twin',
      danger: stop,
      returnFocus: btn,
    });
    if (!ok) return;
    try {
      await post('/v1/kill-switch', { engaged: stop, twin: c.twin.id });
      toast(stop ? `${c.twin.id} is stopped.` : `${c.twin.id} runs again.`, stop ? 'warn' : 'ok');
      killChanged();
      await stopper.now();
    } catch (err) {
      toastError(err, `Could not ${stop ? 'stop' : 'resume'} ${c.twin.id}`);
    }
  }

  async function assignObjective(c, btn) {
    const created = await objectiveDialog(c.twin, btn);
    if (!created) return;
    toast(`Objective assigned to ${c.twin.id} (${created.status ?? 'queued'}).`, 'ok');
    navigate(`#/objectives/${encodeURIComponent(created.id)}`);
  }

  const stopper = poll(refresh, 5000);
  return () => stopper.stop();
}

// ------------------------------------------------------------------------------------------------
// Assigning an objective

let playbookCache = null;
async function playbooks() {
  if (playbookCache) return playbookCache;
  try {
    const r = await get('/v1/playbooks');
    playbookCache = { ok: true, list: Array.isArray(r) ? r : (r?.playbooks ?? []), freeText: r?.freeText };
  } catch (err) {
    if (isMissingRoute(err)) playbookCache = { ok: false, reason: 'Playbooks are not available on this server yet.' };
    else return { ok: false, reason: `Playbooks could not be loaded: ${err.detail ?? err.message}` };
  }
  return playbookCache;
}

export async function objectiveDialog(twin, returnFocus) {
  const pb = await playbooks();
  const kindName = newId('kind');
  const freeId = newId('kind-free');
  const pbId = newId('kind-pb');
  const havePlaybooks = pb.ok && pb.list.length > 0;
  // Free text needs a language model on the server; without one, playbooks are the way.
  const freeOk = !pb.ok || pb.freeText !== false;
  const free = h('input', {
    type: 'radio',
    name: kindName,
    id: freeId,
    value: 'text',
    checked: freeOk || !havePlaybooks,
    disabled: !freeOk,
  });
  const withPb = h('input', {
    type: 'radio',
    name: kindName,
    id: pbId,
    value: 'playbook',
    checked: !freeOk && havePlaybooks,
    disabled: !havePlaybooks,
  });
  const textId = newId('obj-text');
  const text = h('textarea', { id: textId, rows: 3, maxlength: 4000, 'aria-describedby': `${textId}-hint` });
  const textHint = h(
    'p',
    { class: 'hint', id: `${textId}-hint` },
    'What should the twin achieve? It plans the steps; each action is decided by policy.',
  );
  const select = h(
    'select',
    { id: newId('pb') },
    h('option', { value: '' }, 'Choose a playbook…'),
    (pb.list ?? []).map((p) => h('option', { value: p.id }, p.title ?? p.id)),
  );
  const pbDesc = h('p', { class: 'hint', 'aria-live': 'polite' });
  const paramsSlot = h('div', { class: 'params' });
  let form = null;
  const pbSection = h('div', { class: 'pb-section', hidden: true }, field('Playbook', select).wrap, pbDesc, paramsSlot);

  const textLabel = h('label', { for: textId }, 'Objective');
  // Optional limits on the run (constraints): a deadline, how many requests, how much in total.
  const deadline = h('input', { type: 'datetime-local' });
  const budget = h('input', { type: 'number', min: '1', max: '1000', step: '1' });
  const ceiling = h('input', { type: 'text', inputmode: 'decimal', placeholder: 'e.g. 25000.00', spellcheck: 'false' });
  const currency = h('input', { type: 'text', maxlength: 3, placeholder: 'EUR', spellcheck: 'false', class: 'currency' });
  const limits = h(
    'details',
    { class: 'limits' },
    h('summary', null, 'Limits (optional)'),
    field('Deadline', deadline, 'After it the run stops and its open requests are withdrawn.').wrap,
    field('Most requests', budget, 'Action requests the run may make, refused ones included.').wrap,
    h(
      'div',
      { class: 'field-row' },
      field('Spend ceiling', ceiling, 'Total of the run’s amounts, in the authority’s currency.').wrap,
      field('Currency', currency).wrap,
    ),
  );
  const constraintsOf = () => {
    const c = {};
    if (deadline.value) c.deadline = new Date(deadline.value).toISOString();
    if (budget.value.trim()) {
      const n = Number(budget.value);
      if (!Number.isInteger(n) || n < 1 || n > 1000) {
        budget.setAttribute('aria-invalid', 'true');
        throw new Error('Most requests is a whole number from 1 to 1000.');
      }
      c.stepBudget = n;
    }
    if (ceiling.value.trim() || currency.value.trim()) {
      if (!/^\d+(\.\d+)?$/.test(ceiling.value.trim())) {
        ceiling.setAttribute('aria-invalid', 'true');
        throw new Error('The spend ceiling is an amount such as 25000.00.');
      }
      if (!/^[A-Z]{3}$/.test(currency.value.trim().toUpperCase())) {
        currency.setAttribute('aria-invalid', 'true');
        throw new Error('The spend ceiling needs its currency, e.g. EUR.');
      }
      c.spendCeiling = { amount: ceiling.value.trim(), currency: currency.value.trim().toUpperCase() };
    }
    return Object.keys(c).length ? c : undefined;
  };
  const sync = () => {
    const usePb = withPb.checked;
    pbSection.hidden = !usePb;
    textLabel.textContent = usePb ? 'Objective (optional; defaults to the playbook’s title)' : 'Objective';
  };
  free.addEventListener('change', sync);
  withPb.addEventListener('change', sync);
  sync();
  select.addEventListener('change', () => {
    const p = pb.list.find((x) => x.id === select.value);
    pbDesc.textContent = p
      ? [p.description, p.steps?.length ? `${p.steps.length} step${p.steps.length > 1 ? 's' : ''}.` : ''].filter(Boolean).join(' ')
      : '';
    form = p ? schemaForm(p.params ?? { type: 'object', properties: {} }, { prefix: `pb-${p.id}` }) : null;
    replace(paramsSlot, form ? [h('h3', null, 'Parameters'), form.el] : null);
  });

  return formDialog({
    title: `Assign an objective to ${twin.id}`,
    wide: true,
    returnFocus,
    content: [
      h(
        'fieldset',
        { class: 'choice-group inline' },
        h('legend', null, 'How'),
        h('label', { class: 'check', for: freeId }, free, ' In my own words'),
        h('label', { class: 'check', for: pbId }, withPb, ' With a playbook'),
        !pb.ok || !pb.list?.length
          ? h('p', { class: 'hint' }, pb.ok ? 'No playbooks are installed (policies/playbooks).' : pb.reason)
          : null,
        !freeOk
          ? h(
              'p',
              { class: 'hint' },
              'Objectives in your own words need a language model, which this server has not configured (REGENT_MODEL); choose a playbook.',
            )
          : null,
      ),
      h('div', { class: 'field' }, textLabel, text, textHint),
      pbSection,
      limits,
    ],
    submitLabel: 'Assign',
    onSubmit: async () => {
      const body = {};
      const t = text.value.trim();
      if (withPb.checked) {
        const p = pb.list.find((x) => x.id === select.value);
        if (!p) {
          select.setAttribute('aria-invalid', 'true');
          throw new Error('Choose a playbook.');
        }
        body.text = t || p.title || p.id;
        body.playbook = p.id;
        body.params = form ? form.value() : {};
      } else {
        if (!t) {
          text.setAttribute('aria-invalid', 'true');
          throw new Error('Say what the twin should achieve.');
        }
        body.text = t;
      }
      const constraints = constraintsOf();
      if (constraints) body.constraints = constraints;
      return post(`/v1/twins/${seg(twin.id)}/objectives`, body);
    },
  });
}

// ------------------------------------------------------------------------------------------------
// One objective: progress, summary, proposals

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
              h(
                'table',
                { class: 'data' },
                h('caption', { class: 'sr-only' }, 'Proposals made for this objective'),
                h(
                  'thead',
                  null,
                  h(
                    'tr',
                    null,
                    ['Action', 'Amount', 'Status', 'Policy', 'When'].map((t) => h('th', { scope: 'col' }, t)),
                  ),
                ),
                h(
                  'tbody',
                  null,
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

// ------------------------------------------------------------------------------------------------
// Creating a twin (executives for themselves; admins for anyone)

export async function createTwinDialog({ me, returnFocus, users }) {
  const isAdmin = me.capabilities.includes('user.manage');
  let owners = users;
  if (isAdmin && !owners)
    owners = await get('/v1/users')
      .then((r) => r?.users ?? [])
      .catch(() => []);
  const executives = (owners ?? []).filter((u) => u.roles.includes('executive') && !u.disabledAt);

  const id = h('input', { type: 'text', required: true, maxlength: 64, spellcheck: 'false', autocomplete: 'off' });
  const idF = field('Twin id', id, 'Lowercase letters, digits, “.”, “_”, “@” or “-”, e.g. vp-sales-twin. Its key acts as twin:<id>.');
  let ownerInput;
  if (isAdmin) {
    ownerInput = h(
      'select',
      { required: true },
      h('option', { value: '' }, executives.length ? 'Choose the executive…' : 'No executives yet: add one first'),
      executives.map((u) => h('option', { value: `user:${u.id}` }, `${u.name} (user:${u.id})`)),
    );
  } else {
    ownerInput = h('input', { type: 'text', readonly: true, value: me.ref });
  }
  const ownerF = field('Works for', ownerInput, 'The executive whose authority the twin uses.');
  const authority = h('input', { type: 'text', required: true, maxlength: 200, spellcheck: 'false', list: newId('authorities') });
  const authF = field(
    'Authority',
    authority,
    'The id of the authority document (policies/authorities) whose delegate is twin:<id>; usually the same as the twin id.',
  );
  const known = me.capabilities.includes('policy.manage') ? await authorityIds() : [];
  if (known.length)
    authF.wrap.append(
      h(
        'datalist',
        { id: authority.getAttribute('list') },
        known.map((a) => h('option', { value: a })),
      ),
    );
  else authority.removeAttribute('list');
  let touched = false;
  authority.addEventListener('input', () => (touched = true));
  id.addEventListener('input', () => {
    if (!touched) authority.value = id.value.trim();
  });
  const mode = h(
    'select',
    null,
    MODES.map(([v, label]) => h('option', { value: v, selected: v === 'propose' }, label)),
  );
  const modeF = field('Mode', mode, 'Start low: a new twin in propose mode only records what it would do.');

  const created = await formDialog({
    title: 'New twin',
    returnFocus,
    content: [idF.wrap, ownerF.wrap, authF.wrap, modeF.wrap],
    submitLabel: 'Create twin',
    onSubmit: () =>
      post('/v1/twins', { id: id.value.trim(), owner: ownerInput.value, authority: authority.value.trim(), mode: mode.value }).catch(
        (err) => {
          if (err instanceof ApiError && err.field) markField(err.field, { id, owner: ownerInput, authority, mode });
          throw err;
        },
      ),
  });
  if (!created || created === true) return null;
  await secretDialog({
    title: `Twin ${created.id} created`,
    secret: created.apiKey,
    note: `This is ${created.id}'s own API key, shown only now. The twin (or its agent) sends it with each request; keep it out of reach of people and models.`,
  });
  return created;
}

/** Marks the input a problem+json `field` names (body.authority, or just authority). */
function markField(name, map) {
  markInvalid(map[String(name).replace(/^body\./, '')]);
}

/** Authority ids for suggestions, from the policies route when the server has one. */
async function authorityIds() {
  try {
    const r = await get('/v1/policies');
    return (r?.files ?? [])
      .filter((f) => f.kind === 'authority' && f.valid)
      .map((f) => /^id:\s*["']?([A-Za-z0-9._-]+)/m.exec(f.text ?? '')?.[1])
      .filter(Boolean);
  } catch {
    return [];
  }
}

export { MODES };
