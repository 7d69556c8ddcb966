// One journal entry for the auditor: its inclusion proof, checked in the browser against the signed
// checkpoint with the verifier key.
import { get, isMissingRoute, seg } from './api.js';
import { fmtDateTime, h, pretty, replace, show } from './dom.js';
import { badge, errorBox, formDialog } from './ui.js';
import { checkpointRoot, checkpointSize, leafOf, rootFromInclusion } from './verify.js';

async function loadEntry(seq) {
  try {
    return { ...(await get(`/v1/journal/entries/${seg(seq)}`)), source: 'entries' };
  } catch (err) {
    if (!isMissingRoute(err)) throw err;
  }
  try {
    return { proof: await get(`/v1/journal/proof/${seg(seq)}`), source: 'proof' };
  } catch (err) {
    if (!isMissingRoute(err)) throw err;
  }
  return null;
}

/** The inclusion proof in whatever envelope the server gives it: { seq, size, leaf, root, proof[] }. */
function findProof(r) {
  const cands = [r?.proof, r?.inclusion, r?.inclusionProof, r];
  for (const c of cands) {
    if (c && typeof c === 'object' && Array.isArray(c.proof ?? c.path ?? c.hashes) && (c.root || c.rootHash)) {
      return {
        seq: c.seq ?? c.index + 1,
        size: c.size ?? c.treeSize,
        leaf: c.leaf,
        root: c.root ?? c.rootHash,
        path: c.proof ?? c.path ?? c.hashes,
        checkpoint: c.checkpoint ?? r?.checkpoint,
      };
    }
  }
  return null;
}

export async function entryDialog(row, opener) {
  const body = h('div', { class: 'entry-detail' }, h('p', { class: 'muted' }, 'Loading the entry and its proof…'));
  const done = formDialog({
    title: `Journal entry #${row.seq}`,
    content: body,
    submitLabel: null,
    cancelLabel: 'Close',
    wide: true,
    returnFocus: opener,
  });
  let r = null;
  let problem = null;
  try {
    r = await loadEntry(row.seq);
  } catch (err) {
    problem = err;
  }
  const entry = r?.entry ?? row;
  const proof = r ? findProof(r) : null;
  const checks = h('ul', { class: 'checks' });
  replace(
    body,
    h(
      'dl',
      { class: 'kv' },
      ['seq', 'ts', 'kind', 'actor', 'subject', 'policyVersion'].map((k) => [
        h('dt', null, k),
        h('dd', null, k === 'ts' ? [entry.ts, ' (', fmtDateTime(entry.ts), ')'] : show(entry[k])),
      ]),
      h('dt', null, 'leaf'),
      h('dd', null, h('code', { class: 'hash' }, entry.leaf ?? '—')),
      h('dt', null, 'chain'),
      h('dd', null, h('code', { class: 'hash' }, entry.chain ?? '—')),
    ),
    h('h3', null, 'Data'),
    h('pre', { class: 'code', tabindex: '0', 'aria-label': 'Entry data (JSON)' }, pretty(entry.data ?? {})),
    h('h3', null, 'Inclusion proof'),
    problem ? errorBox(problem, 'Could not load the proof') : null,
    !problem && !proof
      ? h(
          'p',
          { class: 'muted' },
          'This server does not serve inclusion proofs over HTTP yet (npx regent journal export has them offline).',
        )
      : null,
    proof
      ? [
          h('h4', null, 'Checked in this browser'),
          checks,
          h(
            'dl',
            { class: 'kv' },
            h('dt', null, 'Tree size'),
            h('dd', null, String(proof.size)),
            h('dt', null, 'Root'),
            h('dd', null, h('code', { class: 'hash' }, proof.root)),
            h('dt', null, 'Audit path'),
            h(
              'dd',
              null,
              proof.path.length
                ? h(
                    'ol',
                    { class: 'hashes' },
                    proof.path.map((x) => h('li', null, h('code', { class: 'hash' }, x))),
                  )
                : 'none (a single-entry tree)',
            ),
          ),
          proof.checkpoint
            ? [
                h('h4', null, 'Signed checkpoint'),
                h(
                  'pre',
                  { class: 'code', tabindex: '0', 'aria-label': 'Checkpoint note' },
                  typeof proof.checkpoint === 'string' ? proof.checkpoint : (proof.checkpoint.note ?? pretty(proof.checkpoint)),
                ),
              ]
            : null,
        ]
      : null,
  );
  if (proof) runChecks(entry, proof, checks);
  return done;
}

async function runChecks(entry, proof, list) {
  const add = (ok, text) =>
    list.append(h('li', { class: ok ? 'check-ok' : 'check-bad' }, badge(ok ? 'ok' : 'fails', ok ? 'ok' : 'bad'), ' ', text));
  try {
    const leaf = await leafOf(entry);
    add(
      leaf === entry.leaf,
      leaf === entry.leaf
        ? 'The leaf hash matches the entry (SHA-256 of 0x00 ‖ JCS(entry)).'
        : `The entry hashes to ${leaf}, not to its leaf ${entry.leaf}.`,
    );
    if (proof.leaf && proof.leaf !== entry.leaf) add(false, 'The proof is for another leaf than this entry’s.');
    const root = await rootFromInclusion(entry.leaf ?? proof.leaf, Number(proof.seq ?? entry.seq) - 1, Number(proof.size), proof.path);
    add(
      root === proof.root,
      root === proof.root
        ? `The audit path leads from the leaf to the root of the first ${proof.size} entries.`
        : `The audit path leads to ${root}, not to the root given.`,
    );
    const note = typeof proof.checkpoint === 'string' ? proof.checkpoint : proof.checkpoint?.note;
    if (note) {
      const cRoot = checkpointRoot(note);
      const cSize = checkpointSize(note);
      const same = cRoot === proof.root && cSize === Number(proof.size);
      add(same, same ? 'That root is the one in the signed checkpoint.' : 'The checkpoint’s size or root differs from the proof’s.');
    }
  } catch (err) {
    add(false, `Could not check: ${err.message}`);
  }
}

// ------------------------------------------------------------------------------------------------
// Post-hoc audit of execute-mode actions
