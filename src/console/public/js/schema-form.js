// A form generated from a JSON Schema (the subset playbooks use for their params): objects,
// strings (enum, format, pattern), numbers, integers, booleans, arrays of scalars.
import { h, markInvalid, newId } from './dom.js';

/**
 * Returns { el, value() } where value() gives the params object or throws an Error naming the
 * field at fault (and marks that field aria-invalid and focuses it).
 */
export function schemaForm(schema, { prefix = 'param' } = {}) {
  const root = objectFields(schema ?? { type: 'object', properties: {} }, [], prefix, true);
  return { el: root.el, value: () => root.read() ?? {} };
}

const labelOf = (name, s) => s?.title ?? humanize(name);
const humanize = (name) =>
  String(name)
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .replace(/[_-]+/g, ' ')
    .replace(/^./, (c) => c.toUpperCase());

function typeOf(s) {
  if (!s) return 'string';
  if (Array.isArray(s.type)) return s.type.find((t) => t !== 'null') ?? 'string';
  if (s.type) return s.type;
  if (s.enum) return typeof s.enum[0] === 'number' ? 'number' : 'string';
  if (s.properties) return 'object';
  return 'string';
}

function objectFields(schema, path, prefix, top) {
  const props = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  const children = Object.entries(props).map(([name, s]) => ({ name, ...fieldFor(name, s, required.has(name), [...path, name], prefix) }));
  const body = children.map((c) => c.el);
  const el = top
    ? h('div', { class: 'schema-form' }, body.length ? body : h('p', { class: 'muted' }, 'This playbook takes no parameters.'))
    : h(
        'fieldset',
        { class: 'schema-group' },
        h('legend', null, labelOf(path[path.length - 1], schema)),
        schema.description ? h('p', { class: 'hint' }, schema.description) : null,
        body,
      );
  return {
    el,
    read() {
      const out = {};
      for (const c of children) {
        const v = c.read();
        if (v !== undefined) out[c.name] = v;
      }
      return Object.keys(out).length || top ? out : undefined;
    },
  };
}

function fieldFor(name, s, required, path, prefix) {
  const type = typeOf(s);
  const id = newId(`${prefix}-${path.join('-')}`);
  const label = labelOf(name, s);
  const hintId = s?.description || s?.examples ? `${id}-hint` : undefined;
  const hintText = [s?.description, s?.examples?.length ? `e.g. ${s.examples.map(String).join(', ')}` : null].filter(Boolean).join(' — ');
  const hint = hintId ? h('p', { class: 'hint', id: hintId }, hintText) : null;
  const labelEl = (forId) => h('label', { for: forId }, label, required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null);

  if (type === 'object') return objectFields(s, path, prefix, false);

  if (type === 'boolean') {
    const input = h('input', { type: 'checkbox', id, checked: s.default === true, 'aria-describedby': hintId });
    return {
      el: h('div', { class: 'field check-field' }, h('label', { class: 'check', for: id }, input, ` ${label}`), hint),
      read: () => input.checked,
    };
  }

  if (type === 'array') {
    const item = s.items ?? { type: 'string' };
    if (item.enum) {
      // Several of a fixed set: checkboxes in a fieldset.
      const boxes = item.enum.map((v) => {
        const bid = newId(id);
        const box = h('input', { type: 'checkbox', id: bid, value: String(v), checked: Array.isArray(s.default) && s.default.includes(v) });
        return { v, box, el: h('label', { class: 'check', for: bid }, box, ` ${v}`) };
      });
      const fs = h(
        'fieldset',
        { class: 'field choice-group', 'aria-describedby': hintId },
        h('legend', null, label, required ? ' *' : ''),
        boxes.map((b) => b.el),
        hint,
      );
      return {
        el: fs,
        read() {
          const v = boxes.filter((b) => b.box.checked).map((b) => b.v);
          if (required && !v.length) throw invalid(boxes[0]?.box, `${label}: choose at least one`);
          return v.length ? v : undefined;
        },
      };
    }
    const input = h('input', { type: 'text', id, 'aria-describedby': hintId, placeholder: 'comma-separated' });
    if (Array.isArray(s.default)) input.value = s.default.join(', ');
    const itemType = typeOf(item);
    return {
      el: h('div', { class: 'field' }, labelEl(id), input, hint ?? h('p', { class: 'hint' }, 'Separate several with commas.')),
      read() {
        const parts = input.value
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean);
        if (!parts.length) {
          if (required) throw invalid(input, `${label} is required`);
          return undefined;
        }
        if (s.minItems && parts.length < s.minItems) throw invalid(input, `${label}: at least ${s.minItems}`);
        if (s.maxItems && parts.length > s.maxItems) throw invalid(input, `${label}: at most ${s.maxItems}`);
        return itemType === 'number' || itemType === 'integer'
          ? parts.map((p) => {
              const n = Number(p);
              if (!Number.isFinite(n) || (itemType === 'integer' && !Number.isInteger(n)))
                throw invalid(input, `${label}: "${p}" is not a ${itemType}`);
              return n;
            })
          : parts;
      },
    };
  }

  if (s?.enum) {
    const select = h(
      'select',
      { id, required, 'aria-describedby': hintId },
      required && s.default === undefined ? h('option', { value: '' }, 'Choose…') : !required ? h('option', { value: '' }, '—') : null,
      s.enum.map((v) => h('option', { value: String(v), selected: s.default === v }, String(v))),
    );
    return {
      el: h('div', { class: 'field' }, labelEl(id), select, hint),
      read() {
        if (!select.value) {
          if (required) throw invalid(select, `${label}: choose one`);
          return undefined;
        }
        const v = s.enum.find((e) => String(e) === select.value);
        return v;
      },
    };
  }

  if (type === 'number' || type === 'integer') {
    const input = h('input', {
      type: 'number',
      id,
      required,
      step: type === 'integer' ? '1' : 'any',
      min: s.minimum ?? s.exclusiveMinimum,
      max: s.maximum ?? s.exclusiveMaximum,
      'aria-describedby': hintId,
    });
    if (s.default !== undefined) input.value = String(s.default);
    return {
      el: h('div', { class: 'field' }, labelEl(id), input, hint),
      read() {
        const raw = input.value.trim();
        if (!raw) {
          if (required) throw invalid(input, `${label} is required`);
          return undefined;
        }
        const n = Number(raw);
        if (!Number.isFinite(n)) throw invalid(input, `${label} must be a number`);
        if (type === 'integer' && !Number.isInteger(n)) throw invalid(input, `${label} must be a whole number`);
        if (s.minimum !== undefined && n < s.minimum) throw invalid(input, `${label} must be at least ${s.minimum}`);
        if (s.maximum !== undefined && n > s.maximum) throw invalid(input, `${label} must be at most ${s.maximum}`);
        if (s.exclusiveMinimum !== undefined && n <= s.exclusiveMinimum)
          throw invalid(input, `${label} must be more than ${s.exclusiveMinimum}`);
        if (s.exclusiveMaximum !== undefined && n >= s.exclusiveMaximum)
          throw invalid(input, `${label} must be less than ${s.exclusiveMaximum}`);
        return n;
      },
    };
  }

  // Strings.
  const inputType = s?.format === 'date' ? 'date' : s?.format === 'date-time' ? 'datetime-local' : s?.format === 'email' ? 'email' : 'text';
  const long = (s?.maxLength ?? 0) > 200 || s?.format === 'textarea';
  const input = long
    ? h('textarea', { id, rows: 3, required, maxlength: s?.maxLength, 'aria-describedby': hintId })
    : h('input', { type: inputType, id, required, maxlength: s?.maxLength, 'aria-describedby': hintId, spellcheck: 'false' });
  if (s?.default !== undefined) input.value = inputType === 'datetime-local' ? String(s.default).slice(0, 16) : String(s.default);
  return {
    el: h('div', { class: 'field' }, labelEl(id), input, hint),
    read() {
      const raw = input.value.trim();
      if (!raw) {
        if (required) throw invalid(input, `${label} is required`);
        return undefined;
      }
      if (s?.minLength && raw.length < s.minLength) throw invalid(input, `${label} needs at least ${s.minLength} characters`);
      if (s?.pattern && !matches(s.pattern, raw))
        throw invalid(input, `${label} does not have the expected form${s.examples?.length ? ` (e.g. ${s.examples[0]})` : ''}`);
      if (inputType === 'datetime-local') return new Date(raw).toISOString();
      return raw;
    },
  };
}

// JSON Schema patterns are ECMA-262 and unanchored; one the browser cannot compile is left to the server.
function matches(pattern, value) {
  try {
    return new RegExp(pattern, 'u').test(value);
  } catch {
    return true;
  }
}

/** Marks the field (until it is edited or changed) and returns the Error to throw. */
const invalid = (input, message) => markInvalid(input, message, { clearOn: ['input', 'change'] });
