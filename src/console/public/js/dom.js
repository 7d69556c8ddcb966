// DOM helpers. Everything is built with createElement and text nodes, never parsed from HTML, so data from
// the API (rationales written by a model, say) can never become markup.

/**
 * h('button', { class: 'primary', onclick: fn, 'aria-label': 'x' }, 'Text', child, [more])
 * Props: class, text, dataset (object), hidden/disabled/checked/value/... set as properties when
 * the element has them, on<event> as listeners, everything else as attributes.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value' || k === 'checked' || k === 'selected' || k === 'indeterminate') el[k] = v;
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false || c === true) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let uid = 0;
/** A document-unique id for label/aria wiring. */
export const newId = (prefix = 'id') => `${prefix}-${++uid}`;

/** A labelled form field: returns { wrap, input }. */
export function field(label, input, hint) {
  const id = input.id || newId('f');
  input.id = id;
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, label), input, hintEl);
  return { wrap, input };
}

/**
 * Marks a field aria-invalid until it is next edited (on the `clearOn` events) and returns an Error
 * with the message, to throw. A missing input only gives the Error.
 */
export function markInvalid(input, message, { clearOn = ['input'] } = {}) {
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    for (const type of clearOn) input.addEventListener(type, () => input.removeAttribute('aria-invalid'), { once: true });
  }
  return new Error(message);
}

// ------------------------------------------------------------------------------------------------
// Formatting

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const dtf = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export function fmtDateTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : dtf.format(d);
}

export function fmtAgo(iso, now = Date.now()) {
  if (!iso) return '—';
  const s = Math.round((new Date(iso).getTime() - now) / 1000);
  const a = Math.abs(s);
  if (a < 60) return rtf.format(s, 'second');
  if (a < 3600) return rtf.format(Math.round(s / 60), 'minute');
  if (a < 86400) return rtf.format(Math.round(s / 3600), 'hour');
  return rtf.format(Math.round(s / 86400), 'day');
}

/** A <time> with the absolute time as its title and the relative one as text. */
export function timeEl(iso) {
  return h('time', { datetime: iso ?? '', title: fmtDateTime(iso) }, fmtAgo(iso));
}

/** "1 h 04 min left" style countdown text, and how urgent it is. */
export function countdown(iso, now = Date.now()) {
  if (!iso) return { text: 'no expiry', urgency: 'none' };
  const ms = new Date(iso).getTime() - now;
  if (ms <= 0) return { text: 'expired', urgency: 'expired' };
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  let text;
  if (d > 0) text = `${d} d ${hh} h left`;
  else if (hh > 0) text = `${hh} h ${String(mm).padStart(2, '0')} min left`;
  else if (mm > 0) text = `${mm} min ${String(ss).padStart(2, '0')} s left`;
  else text = `${ss} s left`;
  return { text, urgency: ms < 15 * 60_000 ? 'soon' : ms < 2 * 3600_000 ? 'near' : 'later' };
}

/** Amounts are decimal strings; Intl formats them exactly (no float on the way). */
export function fmtAmount(amount, currency) {
  if (amount === undefined || amount === null || amount === '') return null;
  const s = String(amount);
  if (currency && /^[A-Z]{3}$/.test(currency)) {
    try {
      return new Intl.NumberFormat(undefined, { style: 'currency', currency, maximumFractionDigits: 20 }).format(s);
    } catch {
      /* an unknown currency: shown as text below */
    }
  }
  return currency ? `${s} ${currency}` : s;
}

/** Short, readable JSON for values in tables. */
export function show(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

export const pretty = (v) => JSON.stringify(v, null, 2);

/**
 * Replaces children but keeps keyboard focus on the "same" element when the new content has one
 * with the same data-key (polling re-renders lists under people's hands).
 */
export function replaceKeepFocus(el, ...children) {
  const active = document.activeElement;
  const key = active && el.contains(active) ? active.closest('[data-key]')?.dataset.key : undefined;
  const tag = active?.tagName;
  replace(el, ...children);
  if (key === undefined) return el;
  const holder = [...el.querySelectorAll('[data-key]')].find((n) => n.dataset.key === key);
  const target = (holder && (holder.matches(tag) ? holder : holder.querySelector(tag))) || holder;
  target?.focus?.({ preventScroll: true });
  return el;
}

/** Whether keystrokes go to a field (shortcuts stay quiet then). */
export function isTyping(t) {
  return t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
}
