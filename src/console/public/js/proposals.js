// How a proposal reads: amount, counterparty, the policy's reasons, the connector's preview, and
// for a call whose outcome is unknown, what is known of it and how it was settled.
import { fmtAmount, fmtDateTime, h, show, timeEl } from './dom.js';
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

/** Where a request came from when it was not Regent's own runner: "via MCP: claude-desktop 1.4". */
export function viaOf(p) {
  const c = p.context;
  if (!c || c.via !== 'mcp') return null;
  const client = c.mcp?.client;
  const who = client ? `${client.name}${client.version && client.version !== 'unknown' ? ` ${client.version}` : ''}` : 'an MCP client';
  return `via MCP: ${who}${c.mcp?.protocol ? ` (protocol ${c.mcp.protocol})` : ''}`;
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
  in_doubt: 'warn',
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

/** What a person answers when settling an action in doubt: the API's outcome, in words. */
export const RECONCILE_OUTCOMES = [
  ['executed', 'It took effect', 'The system carried it out: it counts as executed and its amount stays spent.'],
  ['not_executed', 'It did not take effect', 'The system has no trace of it: it ends failed and its reserved amount is released.'],
];

/**
 * What is known of a call that was cut off (proposal.inDoubt): where a person looks first, then
 * when it went in doubt, whether and by which process it was sent, and what the system last said.
 */
export function renderInDoubt(x) {
  if (!x) return null;
  return h(
    'div',
    { class: 'in-doubt' },
    h(
      'div',
      { class: 'check-in' },
      h('h3', null, 'Where to check'),
      h('p', { class: 'check-in-text' }, x.checkIn || `${x.connector ?? 'the business system'}`),
    ),
    h(
      'dl',
      { class: 'kv compact' },
      h('dt', null, 'In doubt since'),
      h('dd', null, fmtDateTime(x.since), ' (', timeEl(x.since), ')'),
      h('dt', null, 'Sent'),
      h('dd', null, x.sentAt ? fmtDateTime(x.sentAt) : 'not recorded (it may have gone out)'),
      h('dt', null, 'Sent by'),
      h('dd', null, x.executor ? h('code', null, x.executor) : 'unknown process'),
      h('dt', null, 'System'),
      h('dd', null, x.connector ? h('code', null, x.connector) : '—'),
      h('dt', null, 'System last said'),
      h('dd', null, x.lastHeard || 'nothing: no answer came'),
      x.error && x.error !== x.lastHeard ? [h('dt', null, 'Why in doubt'), h('dd', null, x.error)] : null,
    ),
  );
}

/** How an action in doubt was settled (proposal.reconciliation): outcome, who, when, evidence. */
export function renderReconciliation(r) {
  if (!r) return null;
  const took = r.outcome === 'executed';
  return h(
    'div',
    { class: 'reconciliation' },
    h(
      'dl',
      { class: 'kv' },
      h('dt', null, 'Outcome'),
      h('dd', null, badge(took ? 'took effect' : 'did not take effect', took ? 'ok' : 'bad'), ' ', h('code', null, r.outcome)),
      h('dt', null, 'Settled by'),
      h('dd', null, r.by === 'system' ? 'system (the connector’s status lookup)' : r.by),
      h('dt', null, 'When'),
      h('dd', null, fmtDateTime(r.at), ' (', timeEl(r.at), ')'),
    ),
    h('h3', null, 'Evidence'),
    h('blockquote', { class: 'evidence' }, r.evidence || '—'),
  );
}

/** "crm.discount.update · acme" */
export function titleOf(p) {
  const cp = counterpartyOf(p);
  return cp ? `${p.action} · ${cp}` : p.action;
}
