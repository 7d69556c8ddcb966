import fs from 'node:fs';
import path from 'node:path';
import { regent, regentInProcess } from '../support/cli';
import { describeEachDatabase } from '../support/databases';
import { makePolicies, startRegent, until } from './support';

describe('regent playbooks list', () => {
  // The binary runs the first listing and the assignment; the rest run in this process (test/support/cli.ts).
  it('prints the shipped playbooks as the API serves them', async () => {
    const r = regent(['playbooks', 'list', '--json', '--policies', path.resolve(__dirname, '../../policies')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const list = JSON.parse(r.stdout) as Array<{ id: string; params: { properties: Record<string, unknown> } }>;
    expect(list.map((p) => p.id)).toEqual(['maintenance-from-prediction', 'renewal-discount', 'supplier-repricing']);
    expect(list[1]!.params.properties.currency).toMatchObject({ type: 'string', default: 'EUR' });
    const text = await regentInProcess(['playbooks', 'list', '--policies', path.resolve(__dirname, '../../policies')]);
    expect(text.stdout).toMatch(/^renewal-discount {2}Renewal discount/m);
    expect(text.stdout).toMatch(/params: account: string, discountPct: number, amount: string, currency\?: string = "EUR"/);
  });

  it('refuses an invalid playbook with file:line and exit 1', async () => {
    const dir = makePolicies();
    fs.writeFileSync(path.join(dir, 'playbooks', 'broken.yaml'), 'kind: Playbook\nid: broken\ntitle: B\ndescription: d\nparams: { type: object }\nsteps: []\n');
    const r = await regentInProcess(['playbooks', 'list', '--policies', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('regent: policies/playbooks/broken.yaml:6: steps: a playbook has at least one step');
  });
});

describeEachDatabase('regent objectives', (getDb) => {
  const policies = makePolicies();
  let env: Record<string, string>;
  let id: string;

  beforeAll(async () => {
    env = { ...getDb().env, REGENT_POLICIES_DIR: policies };
    // People and a twin, made in-process (there is no twin command).
    const h = await startRegent(getDb(), policies, { runner: false });
    try {
      await h.regent.people.addUser({ id: 'vic', name: 'Vic', roles: ['executive'] }, 'system');
      await h.regent.people.addUser({ id: 'ivan', name: 'Ivan', roles: ['executive'] }, 'system');
      await h.regent.twins.create({ id: 'vic-propose', owner: 'user:vic', authority: 'vic-propose', mode: 'propose' }, 'user:vic');
    } finally {
      await h.close();
    }
  });

  it('assigns a playbook objective as the twin’s owner, typing params as the playbook declares them', () => {
    const r = regent(['objectives', 'assign', '--twin', 'vic-propose', '--playbook', 'renewal-discount', '--actor', 'user:vic', '--param', 'account=acme', '--param', 'discountPct=12', '--param', 'amount=800.00', '--json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.stdout);
    expect(o).toMatchObject({ status: 'queued', twin: 'vic-propose', createdBy: 'user:vic', text: 'Renewal discount', params: { account: 'acme', discountPct: 12, amount: '800.00', currency: 'EUR' } });
    id = o.id;
  });

  it.each([
    [['--actor', 'user:ivan', '--param', 'discountPct=1'], /^regent: user:ivan may not assign objectives to vic-propose \(it belongs to user:vic\)$/],
    [['--actor', 'user:vic', '--param', 'discountPct=twelve'], /^regent: --param discountPct=twelve: discountPct is a number$/],
    [['--actor', 'user:vic', '--param', 'discountPct=120'], /^regent: params\.discountPct: /],
    [['--actor', 'user:vic'], /^regent: params\.discountPct: is required by playbook renewal-discount \(New discount in percent\)$/],
  ])('refuses %j with one line and exit 1 or 2', async (args, message) => {
    const r = await regentInProcess(['objectives', 'assign', '--twin', 'vic-propose', '--playbook', 'renewal-discount', '--param', 'account=acme', '--param', 'amount=1.00', ...args], env);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim()).toMatch(message);
  });

  it('lists it, and shows it once a server’s runner carried it out', async () => {
    const list = await regentInProcess(['objectives', 'list', '--twin', 'vic-propose', '--json'], env);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).map((o: { id: string }) => o.id)).toEqual([id]);
    const h = await startRegent(getDb(), policies);
    try {
      const first = await h.regent.people.createKey('user:vic', 'test', 'system');
      await until(h, `/v1/objectives/${id}`, first.apiKey, ['completed', 'failed']);
    } finally {
      await h.close();
    }
    const show = await regentInProcess(['objectives', 'show', id], env);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`^${id} {2}completed {2}twin vic-propose {2}playbook renewal-discount$`, 'm'));
    expect(show.stdout).toMatch(/^ {2}- discount: crm\.discount\.update → proposed \(proposal [0-9a-f-]{36}\)/m);
    const json = JSON.parse((await regentInProcess(['objectives', 'show', id, '--json'], env)).stdout);
    expect(json.proposals.map((p: { status: string }) => p.status)).toEqual(['proposed', 'proposed']);
    const missing = await regentInProcess(['objectives', 'show', '00000000-0000-4000-8000-000000000000'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe('regent: objective 00000000-0000-4000-8000-000000000000 does not exist');
  });
});
