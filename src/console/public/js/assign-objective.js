// Assigning an objective to a twin: in the executive's own words or with a playbook (its
// parameters as a form), with optional limits on the run.
import { get, isMissingRoute, post, seg } from './api.js';
import { field, h, newId, replace } from './dom.js';
import { schemaForm } from './schema-form.js';
import { formDialog } from './ui.js';

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
