// Creating a twin (executives for themselves; admins for anyone): its id, owner, authority and
// mode; its API key is shown once.
import { ApiError, get, post } from './api.js';
import { field, h, markInvalid, newId } from './dom.js';
import { MODES } from './twin-modes.js';
import { formDialog, secretDialog } from './ui.js';

export async function createTwinDialog({ me, returnFocus, users }) {
  const isAdmin = me.capabilities.includes('user.manage');
  let owners = users;
  if (isAdmin && !owners)
    owners = await get('/v1/users')
      .then((r) => r?.users ?? [])
      .catch(() => []);
  const executives = (owners ?? []).filter((u) => u.roles.includes('executive') && !u.disabledAt);

  const id = h('input', { type: 'text', required: true, maxlength: 64, spellcheck: 'false', autocomplete: 'off' });
  const idF = field('Twin id', id, 'Lowercase letters, digits, “.”, “_”, “@” or “-”, e.g. vp-sales-twin. Its key acts as twin:<id>.');
  let ownerInput;
  if (isAdmin) {
    ownerInput = h(
      'select',
      { required: true },
      h('option', { value: '' }, executives.length ? 'Choose the executive…' : 'No executives yet: add one first'),
      executives.map((u) => h('option', { value: `user:${u.id}` }, `${u.name} (user:${u.id})`)),
    );
  } else {
    ownerInput = h('input', { type: 'text', readonly: true, value: me.ref });
  }
  const ownerF = field('Works for', ownerInput, 'The executive whose authority the twin uses.');
  const authority = h('input', { type: 'text', required: true, maxlength: 200, spellcheck: 'false', list: newId('authorities') });
  const authF = field(
    'Authority',
    authority,
    'The id of the authority document (policies/authorities) whose delegate is twin:<id>; usually the same as the twin id.',
  );
  const known = me.capabilities.includes('policy.manage') ? await authorityIds() : [];
  if (known.length)
    authF.wrap.append(
      h(
        'datalist',
        { id: authority.getAttribute('list') },
        known.map((a) => h('option', { value: a })),
      ),
    );
  else authority.removeAttribute('list');
  let touched = false;
  authority.addEventListener('input', () => (touched = true));
  id.addEventListener('input', () => {
    if (!touched) authority.value = id.value.trim();
  });
  const mode = h(
    'select',
    null,
    MODES.map(([v, label]) => h('option', { value: v, selected: v === 'propose' }, label)),
  );
  const modeF = field('Mode', mode, 'Start low: a new twin in propose mode only records what it would do.');

  const created = await formDialog({
    title: 'New twin',
    returnFocus,
    content: [idF.wrap, ownerF.wrap, authF.wrap, modeF.wrap],
    submitLabel: 'Create twin',
    onSubmit: () =>
      post('/v1/twins', { id: id.value.trim(), owner: ownerInput.value, authority: authority.value.trim(), mode: mode.value }).catch(
        (err) => {
          if (err instanceof ApiError && err.field) markField(err.field, { id, owner: ownerInput, authority, mode });
          throw err;
        },
      ),
  });
  if (!created || created === true) return null;
  await secretDialog({
    title: `Twin ${created.id} created`,
    secret: created.apiKey,
    note: `This is ${created.id}'s own API key, shown only now. The twin (or its agent) sends it with each request; keep it out of reach of people and models.`,
  });
  return created;
}

/** Marks the input a problem+json `field` names (body.authority, or just authority). */
function markField(name, map) {
  markInvalid(map[String(name).replace(/^body\./, '')]);
}

/** Authority ids for suggestions, from the policies route when the server has one. */
async function authorityIds() {
  try {
    const r = await get('/v1/policies');
    return (r?.files ?? [])
      .filter((f) => f.kind === 'authority' && f.valid)
      .map((f) => /^id:\s*["']?([A-Za-z0-9._-]+)/m.exec(f.text ?? '')?.[1])
      .filter(Boolean);
  } catch {
    return [];
  }
}
