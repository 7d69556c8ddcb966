// Shared UI pieces: dialogs (native <dialog>, focus kept inside and given back), toasts,
// problem+json error boxes, polling.
import { ApiError } from './api.js';
import { h, newId, replace } from './dom.js';

// ------------------------------------------------------------------------------------------------
// Errors and notices

/** One line for an error, with the error id people quote when they report it. */
export function errorText(err) {
  if (err instanceof ApiError) {
    const ids = [err.errorId && `error id ${err.errorId}`, err.requestId && `request ${err.requestId}`].filter(Boolean).join(', ');
    return `${err.title}: ${err.detail}${ids ? ` (${ids})` : ''}`;
  }
  return err?.message ? String(err.message) : String(err);
}

/** A visible error block (role=alert) for problem+json answers. */
export function errorBox(err, what) {
  const box = h('div', { class: 'error-box', role: 'alert' });
  if (err instanceof ApiError) {
    append3(box, what, err);
  } else {
    box.append(h('p', { class: 'error-title' }, what ?? 'Something went wrong'), h('p', null, errorText(err)));
  }
  return box;
}

function append3(box, what, err) {
  box.append(h('p', { class: 'error-title' }, what ? `${what}: ${err.title}` : err.title), h('p', { class: 'error-detail' }, err.detail));
  const meta = [];
  if (err.status) meta.push(`HTTP ${err.status}`);
  if (err.errorId) meta.push(h('span', null, 'error id ', h('code', null, err.errorId)));
  if (err.requestId) meta.push(h('span', null, 'request ', h('code', null, err.requestId)));
  if (meta.length)
    box.append(
      h(
        'p',
        { class: 'error-meta' },
        meta.flatMap((m, i) => (i ? [' · ', m] : [m])),
      ),
    );
}

const toastHost = () => document.getElementById('toasts');

/** A short message that goes away by itself (errors stay until dismissed). */
export function toast(message, kind = 'info') {
  const host = toastHost();
  if (!host) return;
  const close = h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss' }, '×');
  const t = h('div', { class: `toast toast-${kind}` }, h('span', { class: 'toast-text' }, message), close);
  close.addEventListener('click', () => t.remove());
  host.append(t);
  while (host.children.length > 4) host.firstElementChild?.remove();
  if (kind !== 'error') setTimeout(() => t.remove(), 6000);
}

/** Removes every toast (on sign-out: one person's messages are not the next person's). */
export function clearToasts() {
  toastHost()?.replaceChildren();
}

export function toastError(err, what) {
  toast(what ? `${what}: ${errorText(err)}` : errorText(err), 'error');
}

// ------------------------------------------------------------------------------------------------
// Dialogs

let openCount = 0;
/** Whether a modal dialog is open (keyboard shortcuts stay quiet then). */
export const dialogOpen = () => openCount > 0;

/**
 * A modal form dialog. `content` is an element or array; `onSubmit(form)` may throw (the error is
 * shown inside the dialog, which stays open) or return a value the promise resolves with.
 * Resolves null when cancelled (Cancel button or Escape). Focus returns to where it was.
 */
export function formDialog({
  title,
  description,
  content,
  submitLabel = 'Save',
  submitClass = 'primary',
  cancelLabel = 'Cancel',
  onSubmit,
  wide = false,
  returnFocus,
}) {
  return new Promise((resolve) => {
    const titleId = newId('dlg-title');
    const descId = description ? newId('dlg-desc') : undefined;
    const errorSlot = h('div', { class: 'dialog-error' });
    const submit = submitLabel ? h('button', { type: 'submit', class: submitClass }, submitLabel) : null;
    const cancel = h('button', { type: 'button', class: 'secondary', value: 'cancel' }, cancelLabel);
    const form = h(
      'form',
      { method: 'dialog', novalidate: true },
      h('h2', { id: titleId }, title),
      description ? h('p', { id: descId, class: 'dialog-desc' }, description) : null,
      h('div', { class: 'dialog-body' }, content),
      errorSlot,
      h('div', { class: 'dialog-actions' }, cancel, submit),
    );
    const dlg = h('dialog', { class: wide ? 'dialog wide' : 'dialog', 'aria-labelledby': titleId, 'aria-describedby': descId }, form);
    const opener = returnFocus ?? document.activeElement;
    let result = null;
    let busy = false;

    cancel.addEventListener('click', () => dlg.close());
    dlg.addEventListener('cancel', (e) => {
      if (busy) e.preventDefault();
    });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (busy) return;
      if (!onSubmit) {
        result = true;
        dlg.close();
        return;
      }
      // Browser validation, reported in our own words next to the form.
      if (!form.checkValidity()) {
        const bad = form.querySelector(':invalid');
        const label = bad?.id ? form.querySelector(`label[for="${bad.id}"]`)?.textContent : null;
        replace(
          errorSlot,
          errorBox(new Error(`${label ? `${label}: ` : ''}${bad?.validationMessage ?? 'check the form'}`), 'Please correct the form'),
        );
        bad?.focus();
        return;
      }
      busy = true;
      if (submit) submit.disabled = true;
      replace(errorSlot);
      try {
        result = (await onSubmit(form)) ?? true;
        dlg.close();
      } catch (err) {
        replace(errorSlot, errorBox(err, 'Not done'));
        errorSlot.querySelector('[role=alert]')?.setAttribute('tabindex', '-1');
        (form.querySelector('[aria-invalid=true]') ?? errorSlot.firstElementChild)?.focus();
      } finally {
        busy = false;
        if (submit) submit.disabled = false;
      }
    });
    dlg.addEventListener('close', () => {
      openCount--;
      dlg.remove();
      const back = typeof opener?.focus === 'function' && opener.isConnected ? opener : null;
      back?.focus();
      resolve(result);
    });

    document.body.append(dlg);
    openCount++;
    dlg.showModal();
    const first =
      form.querySelector('[autofocus]') ??
      form.querySelector('.dialog-body :is(input, select, textarea):not([disabled])') ??
      submit ??
      cancel;
    first?.focus();
  });
}

/** Yes/no. Resolves true when confirmed. */
export async function confirmDialog({ title, message, confirmLabel = 'Confirm', danger = false, returnFocus }) {
  const r = await formDialog({
    title,
    content: Array.isArray(message) ? message : [h('p', null, message)],
    submitLabel: confirmLabel,
    submitClass: danger ? 'danger' : 'primary',
    returnFocus,
  });
  return r === true;
}

/** A secret (API key) shown exactly once, with a copy button. */
export async function secretDialog({ title, secret, note }) {
  const out = h('input', { type: 'text', readonly: true, value: secret, class: 'secret', 'aria-label': 'API key', spellcheck: 'false' });
  const copy = h('button', { type: 'button', class: 'secondary' }, 'Copy');
  const copied = h('span', { class: 'hint', role: 'status' });
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(secret);
      copied.textContent = 'Copied to the clipboard.';
    } catch {
      out.select();
      copied.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
    }
  });
  out.addEventListener('focus', () => out.select());
  await formDialog({
    title,
    content: [
      h('p', null, note ?? 'This key is shown only now. Keep it somewhere safe: Regent stores only its hash.'),
      h('div', { class: 'secret-row' }, out, copy),
      copied,
    ],
    submitLabel: 'Done',
    cancelLabel: 'Close',
  });
}

// ------------------------------------------------------------------------------------------------
// Polling

/**
 * Runs `fn` now and then every `ms` after each run finishes; paused while the tab is hidden.
 * `ms` may be a function, asked after each run (a slower pace once nothing changes any more).
 * Returns { stop, now } (`now` runs it at once, e.g. after an action).
 */
export function poll(fn, ms) {
  let timer;
  let stopped = false;
  let running = null;
  const run = async () => {
    clearTimeout(timer);
    if (stopped) return;
    if (running) return running;
    running = (async () => {
      try {
        await fn();
      } catch {
        /* fn shows its own errors */
      }
    })();
    await running;
    running = null;
    if (!stopped) timer = setTimeout(run, typeof ms === 'function' ? ms() : ms);
  };
  const onVisible = () => {
    if (!document.hidden) run();
  };
  document.addEventListener('visibilitychange', onVisible);
  run();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisible);
    },
    now: () => (running ? running.then(run) : run()),
  };
}

/** A status badge (colour plus text, never colour alone). */
export function badge(text, kind) {
  return h('span', { class: `badge badge-${kind ?? String(text).replace(/[^a-z_]/gi, '')}` }, String(text).replace(/_/g, ' '));
}

/** Section heading row: a title and actions on the right. */
export function sectionHead(level, title, ...actions) {
  return h(
    'div',
    { class: 'section-head' },
    h(`h${level}`, null, title),
    actions.length ? h('div', { class: 'section-actions' }, actions) : null,
  );
}

/** A page's heading, focusable so navigation can move focus to it. */
export function pageHead(title, subtitle, ...actions) {
  return h(
    'div',
    { class: 'page-head' },
    h('div', null, h('h1', { tabindex: '-1' }, title), subtitle ? h('p', { class: 'subtitle' }, subtitle) : null),
    actions.length ? h('div', { class: 'section-actions' }, actions) : null,
  );
}

/** A table of data: its caption (for screen readers), the column headings, and the body's rows. */
export function dataTable(caption, columns, rows, className = 'data') {
  return h(
    'table',
    { class: className },
    h('caption', { class: 'sr-only' }, caption),
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        columns.map((t) => h('th', { scope: 'col' }, t)),
      ),
    ),
    h('tbody', null, rows),
  );
}

export function emptyState(title, text) {
  return h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, title), text ? h('p', null, text) : null);
}
