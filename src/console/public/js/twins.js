// The executive's view: their twins, each twin's mode (changed only after a confirmation), kill
// switches, latest objectives and what the twin has asked for lately. Assigning an objective is
// assign-objective.js, one objective's page objective-view.js, a new twin create-twin.js.
import { get, isMissingRoute, post, put, qs, seg } from './api.js';
import { objectiveDialog } from './assign-objective.js';
import { createTwinDialog } from './create-twin.js';
import { fmtDateTime, h, newId, replace, replaceKeepFocus, timeEl } from './dom.js';
import { objectiveBadge } from './objective-view.js';
import { amountOf, statusBadge, titleOf } from './proposals.js';
import { MODES, MODE_RANK } from './twin-modes.js';
import { badge, confirmDialog, emptyState, errorBox, pageHead, poll, sectionHead, toast, toastError } from './ui.js';

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
