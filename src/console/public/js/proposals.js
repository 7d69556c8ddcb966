// How a proposal reads: amount, counterparty, the policy's reasons, the connector's preview.
import { fmtAmount, h, show } from './dom.js';
import { badge } from './ui.js';

const COUNTERPARTY_FIELDS = ['counterparty', 'account', 'supplier', 'customer', 'vendor', 'asset', 'to', 'recipient'];

export function amountOf(p) {
  const a = p.args ?? {};
  const amount = a.amount ?? a.price ?? null;
  const currency = a.currency ?? p.currency ?? currencyFromReasons(p) ?? null;
  return amount === null ? null : { amount: String(amount), currency, text: fmtAmount(amount, currency) };
}

// Amounts without a currency are in the authority's currency, which the reasons quote ("… 12,000.00 EUR …").
function currencyFromReasons(p) {
  for (const r of p.decision?.reasons ?? []) {
    const m = /\b\d[\d,.]*\s([A-Z]{3})\b/.exec(r.message ?? '');
    if (m) return m[1];
  }
  return null;
}

export function counterpartyOf(p) {
  const a = p.args ?? {};
  for (const f of COUNTERPARTY_FIELDS) {
    const v = a[f];
    if (typeof v === 'string' && v) return v;
    if (Array.isArray(v) && v.length) return v.join(', ');
  }
  return null;
}

/** The executive a twin works for: from the proposal when the server says, else from what we know. */
export function executiveOf(p, owners) {
  return p.owner ?? p.executive ?? p.twinOwner ?? owners?.get?.(p.twin) ?? null;
}

/** Badge kinds for proposal statuses, and for an objective's steps (submitting, refused). */
export const STATUS_KIND = {
  proposed: 'info',
  submitting: 'info',
  refused: 'bad',
  pending_approval: 'warn',
  approved: 'ok',
  executing: 'info',
  executed: 'ok',
  failed: 'bad',
  denied: 'bad',
  rejected: 'bad',
  expired: 'muted',
  cancelled: 'muted',
};
export const statusBadge = (s) => badge(s, STATUS_KIND[s] ?? 'muted');

const OUTCOME_KIND = { deny: 'bad', propose: 'info', approve: 'warn', execute: 'ok' };
export const outcomeBadge = (o) => badge(o, OUTCOME_KIND[o] ?? 'muted');

export function renderReasons(reasons) {
  if (!reasons?.length) return h('p', { class: 'muted' }, 'No reasons given.');
  return h(
    'ul',
    { class: 'reasons' },
    reasons.map((r) =>
      h(
        'li',
        { class: `reason reason-${r.code}` },
        h('span', { class: 'reason-msg' }, r.message),
        ' ',
        h('span', { class: 'reason-src' }, h('code', null, r.code), r.source ? [' · ', h('code', null, r.source)] : null),
      ),
    ),
  );
}

export function renderArgs(args) {
  const entries = Object.entries(args ?? {});
  if (!entries.length) return h('p', { class: 'muted' }, 'No arguments.');
  return h(
    'dl',
    { class: 'kv' },
    entries.map(([k, v]) => [h('dt', null, k), h('dd', null, typeof v === 'object' && v !== null ? h('code', null, show(v)) : show(v))]),
  );
}

/** The connector's simulate(): its summary, and each record's changed fields before → after. */
export function renderPreview(preview) {
  if (preview === undefined) return h('p', { class: 'muted' }, 'Loading the preview…');
  if (preview === null) return h('p', { class: 'muted' }, 'No preview: no connector offers this action.');
  const out = [h('p', { class: 'preview-summary' }, preview.summary)];
  const d = preview.details ?? {};
  if (Array.isArray(d.changes) && d.changes.length) {
    for (const c of d.changes) out.push(renderChange(c));
  } else if (d.method && d.url) {
    out.push(h('p', null, h('code', null, `${d.method} ${d.url}`)));
    if (d.body) out.push(h('pre', { class: 'code' }, JSON.stringify(d.body, null, 2)));
  } else if (d.refused) {
    out.push(h('p', { class: 'warn-text' }, d.refused));
  }
  return out;
}

function renderChange(c) {
  const before = c.before ?? {};
  const after = c.after ?? {};
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
  const changed = keys.filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
  const shown = changed.length ? changed : keys;
  return h(
    'div',
    { class: 'change' },
    h('p', { class: 'change-record' }, h('code', null, c.record ?? 'record'), c.before ? null : ' (new)'),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'diff' },
        h('caption', { class: 'sr-only' }, `Changes to ${c.record ?? 'the record'}`),
        h(
          'thead',
          null,
          h('tr', null, h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, 'Before'), h('th', { scope: 'col' }, 'After')),
        ),
        h(
          'tbody',
          null,
          shown.map((k) =>
            h(
              'tr',
              null,
              h('th', { scope: 'row' }, k),
              h('td', { class: 'before' }, k in before ? show(before[k]) : '—'),
              h('td', { class: 'after' }, k in after ? show(after[k]) : '—'),
            ),
          ),
        ),
      ),
    ),
  );
}

/** "crm.discount.update · acme" */
export function titleOf(p) {
  const cp = counterpartyOf(p);
  return cp ? `${p.action} · ${cp}` : p.action;
}
