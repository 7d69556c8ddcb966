// The admin's views: people and their keys (a new key is shown once), twins, and read-only views
// of the connectors and policy versions in force, with their validation status.
import { ApiError, del, get, isMissingRoute, post, seg } from './api.js';
import { field, fmtDateTime, h, newId, pretty, replace, replaceKeepFocus, show, timeEl } from './dom.js';
import { createTwinDialog } from './create-twin.js';
import {
  badge,
  confirmDialog,
  dataTable,
  emptyState,
  errorBox,
  formDialog,
  pageHead,
  poll,
  secretDialog,
  sectionHead,
  toast,
  toastError,
} from './ui.js';

const TABS = [
  ['users', 'Users and keys'],
  ['twins', 'Twins'],
  ['connectors', 'Connectors'],
  ['policies', 'Policies'],
];
const APP_ROLES = [
  ['executive', 'Executive', 'Owns twins, sets their modes, assigns objectives.'],
  ['approver', 'Approver', 'Decides pending proposals in the inbox.'],
  ['auditor', 'Auditor', 'Searches, verifies and exports the journal; audits executed actions.'],
  ['admin', 'Admin', 'Manages people, keys and twins; cannot approve.'],
];

export async function adminView(root, ctx) {
  const tab = TABS.find(([id]) => id === ctx.rest[0])?.[0] ?? 'users';
  const panel = h('div', { class: 'admin-panel' });
  replace(
    root,
    pageHead('Admin', 'People, keys, twins, and what the server runs with.'),
    h(
      'nav',
      { class: 'subnav', 'aria-label': 'Admin sections' },
      h(
        'ul',
        null,
        TABS.map(([id, label]) =>
          h(
            'li',
            null,
            h(
              'a',
              { href: `#/admin/${id}`, 'aria-current': id === tab ? 'page' : undefined, class: id === tab ? 'active' : undefined },
              label,
            ),
          ),
        ),
      ),
    ),
    panel,
  );
  const mount = { users: usersPanel, twins: twinsPanel, connectors: connectorsPanel, policies: policiesPanel }[tab];
  return mount(panel, ctx);
}

// ------------------------------------------------------------------------------------------------
// Users and keys

async function usersPanel(root, { me }) {
  const add = h('button', { type: 'button', class: 'primary' }, 'Add user');
  const list = h('div', { class: 'user-grid' });
  const problems = h('div');
  replace(root, sectionHead(2, 'Users and keys', add), problems, list);
  add.addEventListener('click', async () => {
    const created = await addUserDialog(add);
    if (created) stopper.now();
  });

  async function refresh() {
    let users;
    try {
      users = (await get('/v1/users'))?.users ?? [];
    } catch (err) {
      replace(problems, errorBox(err, 'Could not load users'));
      return;
    }
    replace(problems);
    replaceKeepFocus(list, users.length ? users.map((u) => userCard(u, me, () => stopper.now())) : emptyState('No users.', null));
  }
  const stopper = poll(refresh, 10000);
  return () => stopper.stop();
}

function userCard(u, me, changed) {
  const titleId = newId('user');
  const newKey = h(
    'button',
    { type: 'button', class: 'secondary small', 'data-key': `newkey-${u.id}`, 'aria-describedby': titleId },
    'New key',
  );
  newKey.addEventListener('click', async () => {
    const label = h('input', { type: 'text', maxlength: 200, placeholder: 'e.g. laptop, CI' });
    const r = await formDialog({
      title: `New API key for ${u.name}`,
      content: [field('Label (optional)', label, 'Helps tell keys apart when one must be revoked.').wrap],
      submitLabel: 'Create key',
      returnFocus: newKey,
      onSubmit: () => post(`/v1/users/${seg(u.id)}/keys`, label.value.trim() ? { label: label.value.trim() } : {}),
    });
    if (!r || r === true) return;
    await secretDialog({
      title: `New key for ${u.name}`,
      secret: r.apiKey,
      note: `Key ${r.keyId ?? r.id}. Give it to ${u.name} over a safe channel; it is shown only now.`,
    });
    changed();
  });
  const keys = u.keys ?? [];
  const active = keys.filter((k) => !k.revokedAt);
  return h(
    'article',
    { class: 'card user-card', 'aria-labelledby': titleId, 'data-key': `user-${u.id}` },
    h(
      'div',
      { class: 'card-top' },
      h('h3', { id: titleId, class: 'card-title' }, u.name),
      u.disabledAt ? badge('disabled', 'muted') : null,
    ),
    h(
      'dl',
      { class: 'kv compact' },
      h('dt', null, 'Id'),
      h('dd', null, h('code', null, `user:${u.id}`)),
      h('dt', null, 'Roles'),
      h(
        'dd',
        null,
        u.roles.map((r) => badge(r, APP_ROLES.some(([a]) => a === r) ? 'info' : 'muted')),
      ),
      h('dt', null, 'Since'),
      h('dd', null, fmtDateTime(u.createdAt)),
    ),
    h(
      'div',
      { class: 'keys' },
      sectionHead(4, `Keys (${active.length} active)`, newKey),
      keys.length
        ? h(
            'ul',
            { class: 'key-list' },
            keys.map((k) => {
              const revoke = k.revokedAt
                ? null
                : h(
                    'button',
                    { type: 'button', class: 'danger-outline small', 'aria-label': `Revoke key ${k.label ?? k.id} of ${u.name}` },
                    'Revoke',
                  );
              revoke?.addEventListener('click', async () => {
                const self = k.id === me.keyId;
                const ok = await confirmDialog({
                  title: `Revoke key ${k.label ?? k.id}?`,
                  message: self
                    ? 'This is the key you are signed in with: you will be signed out at once.'
                    : `Anything using this key of ${u.name} stops working at once. This cannot be undone.`,
                  confirmLabel: 'Revoke key',
                  danger: true,
                  returnFocus: revoke,
                });
                if (!ok) return;
                try {
                  await del(`/v1/keys/${seg(k.id)}`);
                  toast(`Key ${k.label ?? k.id} revoked.`, 'ok');
                  changed();
                } catch (err) {
                  toastError(err, 'Could not revoke the key');
                }
              });
              return h(
                'li',
                { class: k.revokedAt ? 'revoked' : undefined, 'data-key': `key-${k.id}` },
                h(
                  'div',
                  null,
                  h('code', null, k.id),
                  k.label ? ` · ${k.label}` : '',
                  k.id === me.keyId ? h('span', { class: 'muted' }, ' (this session)') : null,
                ),
                h(
                  'div',
                  { class: 'muted small-text' },
                  k.revokedAt ? ['revoked ', timeEl(k.revokedAt)] : ['last used ', k.lastUsedAt ? timeEl(k.lastUsedAt) : 'never'],
                  ' · created ',
                  timeEl(k.createdAt),
                ),
                revoke,
              );
            }),
          )
        : h('p', { class: 'muted' }, 'No keys.'),
    ),
  );
}

async function addUserDialog(returnFocus) {
  const name = h('input', { type: 'text', required: true, maxlength: 200, autocomplete: 'off' });
  const id = h('input', { type: 'text', maxlength: 64, spellcheck: 'false', autocomplete: 'off' });
  const roleBoxes = APP_ROLES.map(([value, label, hint]) => {
    const bid = newId('role');
    const box = h('input', { type: 'checkbox', id: bid, value, 'aria-describedby': `${bid}-hint` });
    return {
      box,
      el: h(
        'div',
        { class: 'check-field' },
        h('label', { class: 'check', for: bid }, box, ` ${label}`),
        h('p', { class: 'hint', id: `${bid}-hint` }, hint),
      ),
    };
  });
  const business = h('input', { type: 'text', spellcheck: 'false', placeholder: 'e.g. sales-director, cfo' });
  const created = await formDialog({
    title: 'Add a user',
    returnFocus,
    content: [
      field('Name', name).wrap,
      field('Id (optional)', id, 'Lowercase, e.g. dana. Left empty, it is made from the name.').wrap,
      h(
        'fieldset',
        { class: 'choice-group' },
        h('legend', null, 'Roles in Regent'),
        roleBoxes.map((r) => r.el),
      ),
      field('Business roles (optional)', business, 'Roles that approval tiers name as role:<name>, separated by commas.').wrap,
    ],
    submitLabel: 'Add user',
    onSubmit: async () => {
      const roles = roleBoxes.filter((r) => r.box.checked).map((r) => r.box.value);
      if (!roles.length) {
        roleBoxes[0].box.focus();
        throw new Error('Choose at least one role in Regent.');
      }
      const extra = business.value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      const body = { name: name.value.trim(), roles: [...roles, ...extra] };
      if (id.value.trim()) body.id = id.value.trim();
      try {
        return await post('/v1/users', body);
      } catch (err) {
        if (err instanceof ApiError && err.field) {
          const f = err.field.replace(/^body\./, '');
          const input = { name, id }[f] ?? (f.startsWith('roles') ? business : null);
          input?.setAttribute('aria-invalid', 'true');
        }
        throw err;
      }
    },
  });
  if (!created || created === true) return null;
  await secretDialog({
    title: `${created.name} can sign in`,
    secret: created.apiKey,
    note: `user:${created.id}'s API key, shown only now. Give it to ${created.name} over a safe channel; they sign in to this console with it.`,
  });
  return created;
}

// ------------------------------------------------------------------------------------------------
// Twins

async function twinsPanel(root, { me }) {
  const add = h('button', { type: 'button', class: 'primary' }, 'New twin');
  const table = h('div', { class: 'table-wrap' });
  const problems = h('div');
  replace(root, sectionHead(2, 'Twins', add), h('p', { class: 'hint' }, 'Modes and kill switches are on the Twins page.'), problems, table);
  add.addEventListener('click', async () => {
    const t = await createTwinDialog({ me, returnFocus: add });
    if (t) stopper.now();
  });
  async function refresh() {
    let twins;
    try {
      twins = (await get('/v1/twins'))?.twins ?? [];
    } catch (err) {
      replace(problems, errorBox(err, 'Could not load twins'));
      return;
    }
    replace(problems);
    replaceKeepFocus(
      table,
      twins.length
        ? dataTable(
            'Twins',
            ['Twin', 'Works for', 'Authority', 'Mode', 'Kill switch', 'Created'],
            twins.map((t) =>
              h(
                'tr',
                { 'data-key': t.id },
                h('th', { scope: 'row' }, t.id),
                h('td', null, t.owner),
                h('td', null, h('code', null, t.authority)),
                h('td', null, badge(t.mode, 'info')),
                h('td', null, t.killed ? badge('stopped', 'bad') : badge('running', 'ok')),
                h('td', null, timeEl(t.createdAt)),
              ),
            ),
          )
        : emptyState('No twins yet.', 'Create one with New twin. Add its executive first (Users and keys).'),
    );
  }
  const stopper = poll(refresh, 10000);
  return () => stopper.stop();
}

// ------------------------------------------------------------------------------------------------
// Connectors (read-only, but for accepting MCP upstream changes)

async function connectorsPanel(root, { me }) {
  replace(root, sectionHead(2, 'Connectors'), h('p', { class: 'muted' }, 'Loading…'));
  let r;
  let policies = null;
  try {
    [r, policies] = await Promise.all([
      get('/v1/connectors'),
      me.capabilities.includes('policy.manage') ? get('/v1/policies').catch(() => null) : null,
    ]);
  } catch (err) {
    replace(
      root,
      sectionHead(2, 'Connectors'),
      isMissingRoute(err)
        ? emptyState(
            'This server does not list connectors over HTTP yet.',
            'They are declared in policies/connectors/*.yaml; npx regent policy check validates them.',
          )
        : errorBox(err, 'Could not load connectors'),
    );
    return;
  }
  const list = r?.connectors ?? [];
  const files = (policies?.files ?? []).filter((f) => f.kind === 'connector');
  replace(
    root,
    sectionHead(2, 'Connectors'),
    h(
      'p',
      { class: 'hint' },
      'Connectors are declared in policies/connectors and loaded at start; their credentials are never shown. MCP connectors pin their upstream tools: a changed tool is suspended until you accept it here.',
    ),
    r?.loaded === false
      ? h('p', { class: 'notice notice-warn' }, 'This server runs without the action pipeline, so no connectors are loaded.')
      : null,
    list.length
      ? h(
          'div',
          { class: 'user-grid' },
          list.map((c) =>
            h(
              'article',
              { class: 'card', 'aria-labelledby': `conn-${c.id}` },
              h(
                'div',
                { class: 'card-top' },
                h('h3', { class: 'card-title', id: `conn-${c.id}` }, c.id),
                badge(c.type, 'info'),
                c.health
                  ? badge(`server ${c.health.state}`, c.health.state === 'up' ? 'ok' : c.health.state === 'down' ? 'bad' : 'warn')
                  : badge('loaded', 'ok'),
              ),
              c.health?.reason ? h('p', { class: 'notice notice-warn' }, `Server unavailable: ${c.health.reason}`) : null,
              mcpChanges(c, () => connectorsPanel(root, { me })),
              h('h4', null, `Operations (${c.operations.length})`),
              c.operations.length
                ? h(
                    'ul',
                    { class: 'mini-list' },
                    c.operations.map((o) =>
                      h(
                        'li',
                        null,
                        h('code', null, o.action),
                        o.description ? h('span', { class: 'muted' }, ` — ${o.description}`) : null,
                        o.idempotent ? h('span', { class: 'muted' }, ' · idempotent') : null,
                        o.suspended ? h('span', null, ' ', badge('suspended', 'bad')) : o.unavailable ? h('span', null, ' ', badge('unavailable', 'warn')) : null,
                        o.unavailable ? h('p', { class: 'muted small' }, o.unavailable) : null,
                        o.input
                          ? h(
                              'details',
                              { class: 'args' },
                              h('summary', null, 'Input schema'),
                              h('pre', { class: 'code', tabindex: '0' }, pretty(o.input)),
                            )
                          : null,
                      ),
                    ),
                  )
                : h('p', { class: 'muted' }, 'No operations.'),
            ),
          ),
        )
      : emptyState('No connectors are loaded.', 'Copy one of policies/connectors/*.yaml.example to a .yaml file and restart.'),
    files.length
      ? h(
          'section',
          { class: 'panel', 'aria-labelledby': 'conn-files' },
          h('h3', { id: 'conn-files' }, 'Connector files on disk'),
          filesTable(files),
        )
      : null,
  );
}

/**
 * An MCP connector's upstream changes waiting for an admin: each suspended operation's tool as
 * pinned and as the server now describes it (untrusted text, shown as text), and Accept.
 */
function mcpChanges(c, reload) {
  const changed = (c.pins ?? []).filter((p) => p.changed);
  if (!changed.length) return null;
  const accept = h('button', { type: 'button', class: 'small' }, 'Accept upstream changes');
  accept.addEventListener('click', async () => {
    const ok = await confirmDialog({
      title: `Accept the upstream changes of ${c.id}?`,
      message: `The new tool schemas and descriptions are pinned and ${changed.map((p) => p.action).join(', ')} can be called again, under the authorities in force. Journaled.`,
      confirmLabel: 'Accept changes',
      returnFocus: accept,
    });
    if (!ok) return;
    try {
      const r = await post(`/v1/connectors/${seg(c.id)}/accept`, {});
      toast(`Accepted: ${r.accepted.map((a) => a.action).join(', ') || 'nothing'}${r.missing.length ? `; still suspended (tool gone): ${r.missing.join(', ')}` : ''}.`, 'ok');
      reload();
    } catch (err) {
      toastError(err, 'Could not accept the changes');
    }
  });
  return h(
    'section',
    { class: 'notice notice-warn', 'aria-label': `Upstream changes of ${c.id}` },
    h('p', null, `The MCP server changed ${changed.length === 1 ? 'a tool' : `${changed.length} tools`} since ${changed.length === 1 ? 'it was' : 'they were'} pinned; ${changed.length === 1 ? 'its operation is' : 'their operations are'} suspended until accepted.`),
    h(
      'ul',
      { class: 'mini-list' },
      changed.map((p) =>
        h(
          'li',
          null,
          h('code', null, p.action),
          ` (tool ${p.tool}): `,
          p.changed.missing ? 'the server no longer offers this tool.' : null,
          p.changed.missing
            ? null
            : h(
                'details',
                { class: 'args' },
                h('summary', null, 'Pinned and now'),
                h('p', null, 'Pinned description: ', h('q', null, p.pinned.description)),
                h('p', null, 'Now: ', h('q', null, p.changed.description ?? '')),
                h('pre', { class: 'code', tabindex: '0' }, `pinned:\n${pretty(p.pinned.inputSchema)}\n\nnow:\n${pretty(p.changed.inputSchema)}`),
              ),
        ),
      ),
    ),
    accept,
  );
}

// ------------------------------------------------------------------------------------------------
// Policies (read-only)

async function policiesPanel(root) {
  replace(root, sectionHead(2, 'Policies'), h('p', { class: 'muted' }, 'Loading…'));
  let r;
  let versions;
  try {
    [r, versions] = await Promise.all([get('/v1/policies'), get('/v1/policies/versions').catch(() => null)]);
  } catch (err) {
    replace(
      root,
      sectionHead(2, 'Policies'),
      isMissingRoute(err)
        ? emptyState(
            'This server does not list policies over HTTP yet.',
            'npx regent policy versions lists them; npx regent policy check validates the files.',
          )
        : errorBox(err, 'Could not load policies'),
    );
    return;
  }
  const inForce = r?.inForce ?? null;
  const disk = r?.disk ?? {};
  const errors = r?.errors ?? [];
  const authorities = (r?.files ?? []).filter((f) => f.kind === 'authority');
  const diskNote = !disk.valid
    ? h(
        'p',
        null,
        badge('invalid', 'bad'),
        ` The files on disk have ${errors.length} problem${errors.length === 1 ? '' : 's'}; ${inForce ? 'the last good version stays in force' : 'every action is refused until they are fixed'}.`,
      )
    : disk.matchesInForce
      ? h('p', null, badge('valid', 'ok'), ' The files on disk are valid and are the version in force.')
      : h(
          'p',
          null,
          badge('valid', 'ok'),
          ' The files on disk are valid but differ from the version in force; they are loaded on the next reload.',
        );
  replace(
    root,
    sectionHead(2, 'Policies'),
    h('p', { class: 'hint' }, 'Read-only. Authority documents are files in policies/authorities, validated and reloaded when they change.'),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'pol-current' },
      h('h3', { id: 'pol-current' }, 'In force'),
      inForce
        ? h(
            'dl',
            { class: 'kv' },
            h('dt', null, 'Version'),
            h('dd', null, h('code', { class: 'hash' }, inForce.version)),
            h('dt', null, 'Since'),
            h('dd', null, inForce.createdAt ? fmtDateTime(inForce.createdAt) : '—'),
            h('dt', null, 'Loaded by'),
            h('dd', null, show(inForce.loadedBy)),
          )
        : h('p', { class: 'warn-text' }, 'No valid policy bundle is in force: every action is refused.'),
      diskNote,
      errors.length ? problemList(errors) : null,
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'pol-files' },
      h('h3', { id: 'pol-files' }, 'Authority files'),
      authorities.length ? filesTable(authorities) : h('p', { class: 'muted' }, 'No authority files.'),
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'pol-versions' },
      h('h3', { id: 'pol-versions' }, 'Versions'),
      versions?.versions?.length
        ? h(
            'div',
            { class: 'table-wrap' },
            dataTable(
              'Policy versions, newest first',
              ['Version', 'Loaded', 'By', 'Changes', 'Status'],
              versions.versions.map((v) => {
                const sum = v.summary ?? {};
                const changes = [
                  sum.added?.length ? `added ${sum.added.join(', ')}` : null,
                  sum.changed?.length ? `changed ${sum.changed.join(', ')}` : null,
                  sum.removed?.length ? `removed ${sum.removed.join(', ')}` : null,
                ].filter(Boolean);
                return h(
                  'tr',
                  null,
                  h('td', null, h('code', { class: 'hash', title: v.version }, shortHash(v.version))),
                  h('td', null, timeEl(v.createdAt)),
                  h('td', null, show(v.loadedBy)),
                  h(
                    'td',
                    null,
                    changes.length
                      ? changes.join('; ')
                      : sum.previous
                        ? 'no file changes'
                        : `first version (${(sum.authorities ?? []).join(', ') || 'no authorities'})`,
                  ),
                  h('td', null, v.inForce ? badge('in force', 'ok') : badge('earlier', 'muted')),
                );
              }),
            ),
          )
        : h('p', { class: 'muted' }, versions ? 'No versions recorded yet.' : 'The version history is not available.'),
    ),
  );
}

const shortHash = (v) => (typeof v === 'string' && v.length > 24 ? `${v.slice(0, 19)}…${v.slice(-6)}` : show(v));

/** Files with their validation status, each viewable (read-only). */
function filesTable(files) {
  return h(
    'ul',
    { class: 'file-list' },
    files.map((f) =>
      h(
        'li',
        null,
        h(
          'div',
          { class: 'file-head' },
          h('code', null, f.file),
          ' ',
          badge(f.valid ? 'valid' : 'invalid', f.valid ? 'ok' : 'bad'),
          f.inForce === true ? badge('in force', 'ok') : f.inForce === false ? badge('not in force', 'warn') : null,
        ),
        f.errors?.length ? problemList(f.errors.map((e) => ({ file: f.file, ...e }))) : null,
        h(
          'details',
          { class: 'args' },
          h('summary', null, 'Show file'),
          h('pre', { class: 'code', tabindex: '0', 'aria-label': f.file }, f.text),
        ),
      ),
    ),
  );
}

function problemList(errors) {
  return h(
    'ul',
    { class: 'problems' },
    errors.map((e) =>
      h(
        'li',
        null,
        typeof e === 'string' ? e : [e.file ? h('code', null, `${e.file}${e.line ? `:${e.line}` : ''}`) : null, ' ', e.message ?? show(e)],
      ),
    ),
  );
}
