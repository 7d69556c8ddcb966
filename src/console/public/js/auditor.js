// The auditor's journal view: search (filters, cursor), the chain's status and exports. One entry
// with its inclusion proof is journal-entry.js; the post-hoc audit queue is audit-queue.js.
import { ApiError, download, get, isMissingRoute, qs } from './api.js';
import { field, fmtDateTime, h, newId, replace, replaceKeepFocus, show } from './dom.js';
import { badge, emptyState, errorBox, pageHead, sectionHead, toast, toastError } from './ui.js';
import { entryDialog } from './journal-entry.js';

/**
 * The kinds offered by the Kind filter, asked of the server once (GET /v1/journal/kinds: the
 * contract's union). The filter stays free text, so an older server without the route, or a
 * failed request, only leaves the suggestions out.
 */
let kindsAsked = null;
function offerKinds(list) {
  kindsAsked ??= get('/v1/journal/kinds').then(
    (r) => (Array.isArray(r?.kinds) ? r.kinds : []),
    () => {
      kindsAsked = null; // asked again next time
      return [];
    },
  );
  kindsAsked.then((kinds) =>
    replace(
      list,
      kinds.map((k) => h('option', { value: k })),
    ),
  );
}

const FILTERS = ['from', 'to', 'kind', 'actor', 'twin', 'proposal', 'outcome'];
/** Filters the first journal API had; the others need the extended one. */
const BASIC = new Set(['from', 'to', 'kind', 'actor']);
let legacyJournal = false;

export async function journalView(root, { me, query, navigate }) {
  const canExport = me.capabilities.includes('journal.export');
  const canVerify = me.capabilities.includes('journal.verify');

  // ---------------------------------------------------------------------------------------------
  // Chain status and export

  const chain = h('div', { class: 'chain-status', 'aria-live': 'polite' });
  const verifyBtn = h('button', { type: 'button', class: 'secondary' }, 'Verify now');
  verifyBtn.addEventListener('click', () => verifyChain());
  const exportMsg = h('p', { class: 'hint', role: 'status' });
  const exportButtons = [
    ['jsonl', 'Export JSON lines', 'journal.jsonl'],
    ['csv', 'Export CSV', 'journal.csv'],
    ['bundle', 'Export signed bundle', 'journal-bundle.tar.gz'],
  ].map(([format, label, name]) => {
    const b = h('button', { type: 'button', class: 'secondary' }, label);
    b.addEventListener('click', async () => {
      b.disabled = true;
      exportMsg.textContent = `Preparing the ${label.replace('Export ', '')} export…`;
      try {
        // JSON lines and CSV follow the search; the signed bundle is always the whole journal.
        const filters =
          format === 'bundle' || legacyJournal
            ? {}
            : Object.fromEntries(Object.entries(currentParams()).filter(([k]) => FILTERS.includes(k)));
        const got = await download(`/v1/journal/export${qs({ format, ...filters })}`, name);
        exportMsg.textContent = `Downloaded ${got.name} (${formatBytes(got.size)}).`;
        toast(`Downloaded ${got.name}.`, 'ok');
      } catch (err) {
        exportMsg.textContent = '';
        if (isMissingRoute(err))
          toast('Export over HTTP is not available on this server yet; use npx regent journal export --out DIR.', 'error');
        else toastError(err, 'Export failed');
      } finally {
        b.disabled = false;
      }
    });
    return b;
  });

  // ---------------------------------------------------------------------------------------------
  // Search

  const inputs = {};
  const mk = (name, label, el, hint) => {
    el.name = name;
    inputs[name] = el;
    return field(label, el, hint).wrap;
  };
  const kindList = newId('kinds');
  const kindOptions = h('datalist', { id: kindList });
  offerKinds(kindOptions);
  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Journal search' },
    mk('from', 'From', h('input', { type: 'datetime-local', step: '1' })),
    mk('to', 'To', h('input', { type: 'datetime-local', step: '1' })),
    mk('kind', 'Kind', h('input', { type: 'text', list: kindList, spellcheck: 'false', placeholder: 'e.g. proposal.reviewed' })),
    kindOptions,
    mk('actor', 'Actor', h('input', { type: 'text', spellcheck: 'false', placeholder: 'user:dana, twin:…, system' })),
    mk('twin', 'Twin', h('input', { type: 'text', spellcheck: 'false', placeholder: 'twin id' })),
    mk('proposal', 'Proposal', h('input', { type: 'text', spellcheck: 'false', placeholder: 'proposal id' })),
    mk(
      'outcome',
      'Outcome',
      h(
        'select',
        null,
        h('option', { value: '' }, 'Any'),
        ['deny', 'propose', 'approve', 'execute'].map((o) => h('option', { value: o }, o)),
      ),
    ),
    mk('order', 'Order', h('select', null, h('option', { value: 'desc' }, 'Newest first'), h('option', { value: 'asc' }, 'Oldest first'))),
    mk(
      'limit',
      'Per page',
      h(
        'select',
        null,
        [10, 25, 50, 100, 200, 500].map((n) => h('option', { value: String(n), selected: n === 100 }, String(n))),
      ),
    ),
    h(
      'div',
      { class: 'filter-actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Search'),
      h('button', { type: 'reset', class: 'secondary' }, 'Clear'),
    ),
  );
  const notice = h('div');
  const results = h('div', { class: 'table-wrap' });
  const count = h('p', { class: 'muted', role: 'status' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');

  replace(
    root,
    pageHead('Journal', 'Every step, hash-chained and signed. Search it, check an entry’s proof, export it for your own tools.'),
    h(
      'div',
      { class: 'two-col' },
      canVerify
        ? h(
            'section',
            { class: 'panel', 'aria-labelledby': 'chain-title' },
            withId(sectionHead(2, 'Chain status', verifyBtn), 'chain-title'),
            chain,
          )
        : null,
      canExport
        ? h(
            'section',
            { class: 'panel', 'aria-labelledby': 'export-title' },
            h('h2', { id: 'export-title' }, 'Export'),
            h(
              'p',
              { class: 'hint' },
              'JSON lines and CSV hold the entries matching the search filters; the signed bundle is always the whole journal and verifies offline with npx regent journal verify DIR --key YOUR_KEY.',
            ),
            h('div', { class: 'button-row' }, exportButtons),
            exportMsg,
          )
        : null,
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'search-title' },
      h('h2', { id: 'search-title' }, 'Search'),
      form,
      notice,
      count,
      results,
      more,
    ),
  );

  // Filters come from the URL (#/journal?kind=…), so a search can be bookmarked and shared.
  for (const k of [...FILTERS, 'order', 'limit']) {
    const v = query.get(k);
    if (v === null) continue;
    inputs[k].value = k === 'from' || k === 'to' ? toLocalInput(v) : v;
  }

  let cursor = null;
  let rows = [];
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const params = currentParams();
    const q = qs(params).slice(1);
    history.replaceState(null, '', `#/journal${q ? `?${q}` : ''}`);
    search(false);
  });
  form.addEventListener('reset', () => {
    setTimeout(() => {
      history.replaceState(null, '', '#/journal');
      search(false);
    });
  });
  more.addEventListener('click', () => search(true));

  function currentParams() {
    const p = {};
    for (const k of FILTERS) {
      const v = inputs[k].value.trim();
      if (!v) continue;
      p[k] = k === 'from' || k === 'to' ? new Date(v).toISOString() : v;
    }
    p.order = inputs.order.value;
    p.limit = inputs.limit.value;
    return p;
  }

  async function search(append) {
    const params = currentParams();
    let sent = { ...params };
    const dropped = [];
    if (legacyJournal) {
      for (const k of Object.keys(sent)) {
        if (k === 'order') delete sent[k];
        else if (FILTERS.includes(k) && !BASIC.has(k)) {
          dropped.push(k);
          delete sent[k];
        }
      }
      if (append && cursor !== null) sent.afterSeq = cursor;
    } else if (append && cursor !== null) sent.cursor = cursor;
    more.disabled = true;
    let page;
    try {
      page = await get(`/v1/journal${qs(sent)}`);
    } catch (err) {
      // A server with the first journal API refuses the newer filters as unknown fields.
      if (!legacyJournal && err instanceof ApiError && err.status === 400 && /is not a known field|unrecognized/i.test(err.detail)) {
        legacyJournal = true;
        return search(append);
      }
      replace(notice, errorBox(err, 'Search failed'));
      more.disabled = false;
      return;
    }
    replace(
      notice,
      dropped.length
        ? h('p', { class: 'notice notice-warn' }, `This server cannot filter by ${dropped.join(', ')} yet; those filters were left out.`)
        : null,
    );
    const entries = page?.entries ?? [];
    rows = append ? rows.concat(entries) : entries;
    cursor = page?.nextCursor ?? null;
    renderRows();
    more.hidden = cursor === null;
    more.disabled = false;
    count.textContent = rows.length
      ? `${rows.length} entr${rows.length === 1 ? 'y' : 'ies'} shown${cursor !== null ? '; more available' : ''}.`
      : '';
    if (append && entries.length) results.querySelector(`[data-key="${entries[0].seq}"] button`)?.focus();
  }

  function renderRows() {
    if (!rows.length) {
      replace(results, emptyState('No entries match.', 'Widen the time range or clear a filter.'));
      return;
    }
    replaceKeepFocus(
      results,
      h(
        'table',
        { class: 'data journal' },
        h('caption', { class: 'sr-only' }, 'Journal entries'),
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ['Seq', 'Time', 'Kind', 'Actor', 'Subject', 'What'].map((t) => h('th', { scope: 'col' }, t)),
          ),
        ),
        h(
          'tbody',
          null,
          rows.map((e) =>
            h(
              'tr',
              { 'data-key': String(e.seq) },
              h(
                'td',
                null,
                h(
                  'button',
                  {
                    type: 'button',
                    class: 'link',
                    'aria-label': `Entry ${e.seq}: details and proof`,
                    onclick: (ev) => entryDialog(e, ev.currentTarget),
                  },
                  `#${e.seq}`,
                ),
              ),
              h('td', null, h('time', { datetime: e.ts, title: e.ts }, fmtDateTime(e.ts))),
              h('td', null, h('code', null, e.kind)),
              h('td', null, e.actor),
              h('td', null, e.subject ?? '—'),
              h('td', { class: 'what' }, summarize(e)),
            ),
          ),
        ),
      ),
    );
  }

  async function verifyChain() {
    verifyBtn.disabled = true;
    replace(chain, h('p', { class: 'muted' }, 'Verifying every leaf, chain link and checkpoint…'));
    try {
      const r = await get('/v1/journal/verify');
      if (r.ok) {
        replace(
          chain,
          h(
            'p',
            { class: 'chain-ok' },
            badge('intact', 'ok'),
            ` ${plural(r.size, 'entry', 'entries')}; ${plural(r.checkpoints?.length ?? 0, 'signed checkpoint', 'signed checkpoints')} verified.`,
          ),
          h(
            'dl',
            { class: 'kv compact' },
            h('dt', null, 'Merkle root'),
            h('dd', null, h('code', { class: 'hash' }, r.root)),
            h('dt', null, 'Verifier key'),
            h('dd', null, h('code', { class: 'hash' }, r.vkey ?? '—')),
            h('dt', null, 'Checked'),
            h('dd', null, fmtDateTime(new Date().toISOString())),
          ),
          r.warnings?.length
            ? h(
                'ul',
                { class: 'warn-text' },
                r.warnings.map((w) => h('li', null, w)),
              )
            : null,
          h('p', { class: 'hint' }, 'Keep the verifier key from a source you trust, and verify exports offline with it.'),
        );
      } else {
        const f = r.failure ?? {};
        replace(
          chain,
          h(
            'div',
            { class: 'error-box', role: 'alert' },
            h('p', { class: 'error-title' }, 'The chain does not verify'),
            h(
              'p',
              null,
              `${f.message ?? 'unknown failure'}${f.seq ? ` (first failing seq ${f.seq})` : f.checkpoint ? ` (checkpoint ${f.checkpoint})` : ''}`,
            ),
          ),
        );
      }
    } catch (err) {
      replace(chain, errorBox(err, 'Could not verify'));
    } finally {
      verifyBtn.disabled = false;
    }
  }

  if (canVerify) verifyChain();
  await search(false);
  return () => {};
}

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

function withId(head, id) {
  head.querySelector('h2, h3').id = id;
  return head;
}

function summarize(e) {
  const d = e.data ?? {};
  const bits = [];
  for (const k of ['action', 'from', 'to', 'decision', 'outcome', 'mode', 'verdict', 'status', 'reason', 'text', 'name', 'engaged']) {
    if (d[k] === undefined || d[k] === null) continue;
    const v = typeof d[k] === 'object' ? (d[k].outcome ?? JSON.stringify(d[k])) : d[k];
    bits.push(`${k}: ${show(v)}`);
    if (bits.length >= 3) break;
  }
  const s = bits.join(' · ');
  return s.length > 160 ? `${s.slice(0, 159)}…` : s || '—';
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function toLocalInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
