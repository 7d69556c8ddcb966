// Editing a proposal's arguments: each as a form field (text, number, checkbox; JSON for nested
// values), or all of them as one JSON document.
import { h, markInvalid, newId } from './dom.js';
import { toast } from './ui.js';

/**
 * The arguments as form fields (text, number, checkbox; JSON for nested values), or as one JSON
 * document. `value()` returns the args or throws with the field at fault.
 */
export function argsEditor(args) {
  let asJson = false;
  const rows = [];
  const fieldsEl = h('div', { class: 'args-fields' });
  for (const [k, v] of Object.entries(args)) {
    const id = newId('arg');
    let input;
    let read;
    if (typeof v === 'boolean') {
      input = h('input', { type: 'checkbox', id, checked: v });
      read = () => input.checked;
      fieldsEl.append(h('div', { class: 'field check-field' }, h('label', { class: 'check', for: id }, input, ` ${k}`)));
    } else {
      if (typeof v === 'number') {
        input = h('input', { type: 'number', id, step: 'any', value: String(v), required: true });
        read = () => {
          const n = Number(input.value);
          if (input.value.trim() === '' || !Number.isFinite(n)) throw markInvalid(input, `${k} must be a number`);
          return n;
        };
      } else if (typeof v === 'string') {
        input = v.length > 80 ? h('textarea', { id, rows: 3 }) : h('input', { type: 'text', id, spellcheck: 'false' });
        input.value = v;
        read = () => input.value;
      } else {
        input = h('textarea', { id, rows: 3, class: 'mono', spellcheck: 'false' });
        input.value = JSON.stringify(v, null, 2);
        read = () => {
          try {
            return JSON.parse(input.value);
          } catch (err) {
            throw markInvalid(input, `${k} is not valid JSON: ${err.message}`);
          }
        };
      }
      fieldsEl.append(h('div', { class: 'field' }, h('label', { for: id }, k), input));
    }
    rows.push({ k, read, input });
  }
  const jsonId = newId('args-json');
  const json = h('textarea', { id: jsonId, class: 'mono', rows: 12, spellcheck: 'false' });
  const jsonWrap = h('div', { class: 'field', hidden: true }, h('label', { for: jsonId }, 'Arguments (JSON)'), json);
  const toggle = h('button', { type: 'button', class: 'link', 'aria-pressed': 'false' }, 'Edit as JSON');
  const fromFields = () => Object.fromEntries(rows.map((r) => [r.k, r.read()]));
  toggle.addEventListener('click', () => {
    try {
      if (!asJson) json.value = JSON.stringify(fromFields(), null, 2);
      else {
        const parsed = parseJson(json);
        for (const r of rows) {
          const v = parsed[r.k];
          if (r.input.type === 'checkbox') r.input.checked = Boolean(v);
          else r.input.value = typeof v === 'object' && v !== null ? JSON.stringify(v, null, 2) : v === undefined ? '' : String(v);
        }
        // Keys added in JSON cannot be shown as fields: stay in JSON then.
        if (Object.keys(parsed).some((k) => !rows.find((r) => r.k === k))) return;
      }
    } catch (err) {
      toast(err.message, 'error');
      return;
    }
    asJson = !asJson;
    fieldsEl.hidden = asJson;
    jsonWrap.hidden = !asJson;
    toggle.textContent = asJson ? 'Edit as fields' : 'Edit as JSON';
    toggle.setAttribute('aria-pressed', String(asJson));
    (asJson ? json : fieldsEl.querySelector('input, textarea'))?.focus();
  });
  if (!rows.length) {
    asJson = true;
    fieldsEl.hidden = true;
    jsonWrap.hidden = false;
    json.value = '{}';
  }
  return {
    el: h(
      'div',
      { class: 'args-editor' },
      h('div', { class: 'args-head' }, h('h3', null, 'Arguments'), rows.length ? toggle : null),
      fieldsEl,
      jsonWrap,
    ),
    value: () => (asJson ? parseJson(json) : fromFields()),
  };
}

function parseJson(textarea) {
  let v;
  try {
    v = JSON.parse(textarea.value);
  } catch (err) {
    throw markInvalid(textarea, `The arguments are not valid JSON: ${err.message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw markInvalid(textarea, 'The arguments must be a JSON object ({ … })');
  return v;
}
