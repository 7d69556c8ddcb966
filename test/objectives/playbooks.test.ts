import fs from 'node:fs';
import path from 'node:path';
import { loadConnectors } from '../../src/connectors/load';
import type { Sql } from '../../src/db/sql';
import type { Logger } from '../../src/log/logger';
import { createPlaybookCatalog, loadPlaybooks, loadPlaybooksFromSources, playbookView, resolveParams } from '../../src/objectives/playbooks';
import { toolsFor } from '../../src/objectives/tools';
import { loadPolicies } from '../../src/policy/load';
import { createRuleCatalog, loadRules, loadRulesFromSources } from '../../src/signals/rules';
import { tmpDir } from '../support/databases';

const POLICIES = path.resolve(__dirname, '../../policies');
const FILE = 'policies/playbooks/x.yaml';

const PLAYBOOK = `kind: Playbook
id: x
title: X
description: An example
params:
  type: object
  required: [account]
  properties:
    account: { type: string }
    pct: { type: number, maximum: 20 }
defaults: { pct: 5 }
steps:
  - id: first
    action: crm.discount.update
    args: { account: "{{params.account}}", discountPct: "{{params.pct}}", amount: "1.00", currency: EUR }
    rationale: "because {{params.account}}"
  - id: second
    action: crm.note.create
    when: { steps.first.status: executed }
    args: { account: "{{params.account}}", text: "{{steps.first.result.summary}}" }
    rationale: note it
`;

describe('playbooks', () => {
  it('ship at least three that load, each offered whole to the twin its signal rules name', () => {
    const playbooks = loadPlaybooks(POLICIES);
    if (!playbooks.ok) throw new Error(playbooks.errors.map((e) => `${e.file}:${e.line}: ${e.message}`).join('\n'));
    expect([...playbooks.playbooks.keys()].sort()).toEqual(['maintenance-from-prediction', 'renewal-discount', 'supplier-repricing']);
    const rules = loadRules(POLICIES, playbooks.playbooks);
    if (!rules.ok) throw new Error(rules.errors.map((e) => `${e.file}:${e.line}: ${e.message}`).join('\n'));
    const bundle = loadPolicies(POLICIES);
    if (!bundle.ok) throw new Error('shipped policies do not load');
    const connectors = loadConnectors(POLICIES, {}, { sql: {} as Sql });
    if (!connectors.ok) throw new Error('shipped connectors do not load');
    const at = Date.parse('2026-11-10T10:00:00Z');
    // Every playbook runs on some shipped twin, and every rule's twin is offered its playbook's every action.
    const byTwin = new Map<string, string[]>();
    for (const twin of ['vp-sales-twin', 'ops-twin']) byTwin.set(twin, toolsFor(bundle.bundle, connectors.registry, twin, at).tools.map((t) => t.action));
    for (const r of rules.rules) {
      const offered = byTwin.get(r.doc.twin)!;
      for (const step of playbooks.playbooks.get(r.doc.playbook)!.doc.steps) expect({ rule: r.doc.id, action: step.action, offered: offered.includes(step.action) }).toMatchObject({ offered: true });
    }
    expect(new Set(rules.rules.map((r) => r.doc.playbook))).toEqual(new Set(playbooks.playbooks.keys()));
    expect(new Set(rules.rules.map((r) => r.doc.signal))).toEqual(new Set(['machine.failure_predicted', 'crm.churn_risk', 'erp.price_offer']));
  });

  it('offer only what the authority grants and a connector offers (least privilege)', () => {
    const bundle = loadPolicies(POLICIES);
    const connectors = loadConnectors(POLICIES, {}, { sql: {} as Sql });
    if (!bundle.ok || !connectors.ok) throw new Error('shipped policies do not load');
    const at = Date.parse('2026-11-10T10:00:00Z');
    // vp-sales-twin grants email.send too, but no connector offers it here: not a tool.
    expect(toolsFor(bundle.bundle, connectors.registry, 'vp-sales-twin', at).tools.map((t) => t.action)).toEqual(['crm.discount.update', 'crm.note.create']);
    expect(toolsFor(bundle.bundle, connectors.registry, 'ops-twin', at).tools.map((t) => t.action)).toEqual([
      'erp.supplier.reprice',
      'maintenance.workorder.create',
      'sandbox.email.send',
    ]);
    // A revoked authority offers nothing, and says why.
    const revoked = toolsFor(bundle.bundle, connectors.registry, 'interim-cfo-twin', Date.parse('2026-08-01T00:00:00Z'));
    expect(revoked).toMatchObject({ tools: [], unavailable: expect.stringMatching(/revoked/) });
    expect(toolsFor(bundle.bundle, connectors.registry, 'nope', at)).toMatchObject({ tools: [], unavailable: expect.stringMatching(/no authority "nope"/) });
  });

  it('validate params with defaults and name the first bad field', () => {
    const r = loadPlaybooksFromSources([{ file: FILE, text: PLAYBOOK }]);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const p = r.playbooks.get('x')!;
    expect(resolveParams(p, { account: 'acme' })).toEqual({ account: 'acme', pct: 5 });
    expect(() => resolveParams(p, { account: 'acme', pct: 50 })).toThrow(/^params\.pct: .*20/);
    expect(() => resolveParams(p, {})).toThrow(/^params\.account: /);
    expect(() => resolveParams(p, { account: 'acme', colour: 'red' })).toThrow(/^params\.colour: is not a parameter of playbook x \(parameters: account, pct\)$/);
    // The form the console renders: JSON Schema with the defaults.
    expect(playbookView(p)).toMatchObject({
      id: 'x',
      params: { type: 'object', required: ['account'], additionalProperties: false, properties: { pct: { type: 'number', maximum: 20, default: 5 } } },
      steps: [
        { id: 'first', action: 'crm.discount.update', when: null, onFailure: 'stop', await: 'settled' },
        { id: 'second', action: 'crm.note.create', when: { 'steps.first.status': 'executed' } },
      ],
    });
  });

  it.each([
    ['an unknown field', PLAYBOOK.replace('title: X', 'title: X\ncolour: red'), 4, /unknown field "colour" \(known fields: kind, id, title/],
    ['a template naming no parameter', PLAYBOOK.replace('because {{params.account}}', 'because {{params.acount}}'), 16, /\{\{params\.acount\}\} names no parameter \(parameters: account, pct\)/],
    ['a later step used before it runs', PLAYBOOK.replace('"{{params.pct}}"', '"{{steps.second.status}}"'), 15, /names no earlier step/],
    ['a malformed placeholder', PLAYBOOK.replace('note it', 'note {{it'), 21, /braces that are not a \{\{placeholder\}\}/],
    ['an unknown condition operator', PLAYBOOK.replace('steps.first.status: executed', 'steps.first.status: { $equals: executed }'), 19, /unknown operator "\$equals"/],
    ['a default that does not fit', PLAYBOOK.replace('pct: 5', 'pct: 50'), 11, /default 50 does not fit the parameter/],
    ['a duplicate step id', PLAYBOOK.replace('id: second', 'id: first'), 17, /duplicate step id "first" \(also steps\[0\]\)/],
    ['a YAML syntax error', PLAYBOOK.replace('title: X', 'title: [X'), 4, /YAML syntax error/],
  ])('refuse %s with file:line', (_what, text, line, message) => {
    const r = loadPlaybooksFromSources([{ file: FILE, text }]);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors[0]).toMatchObject({ file: FILE, line, message: expect.stringMatching(message) });
  });

  it('refuse signal rules that name an unknown playbook or parameter, with file:line', () => {
    const playbooks = loadPlaybooksFromSources([{ file: FILE, text: PLAYBOOK }]);
    if (!playbooks.ok) throw new Error('fixture');
    const rule = `kind: SignalRule
id: r
signal: crm.churn_risk
twin: vic-twin
playbook: x
text: "keep {{payload.account}}"
params:
  account: "{{payload.account}}"
  colour: "{{payload.colour}}"
`;
    const bad = loadRulesFromSources([{ file: 'policies/signals/r.yaml', text: rule }], playbooks.playbooks);
    expect(bad).toMatchObject({ ok: false, errors: [{ file: 'policies/signals/r.yaml', line: 9, message: expect.stringMatching(/"colour" is not a parameter of playbook x/) }] });
    const unknown = loadRulesFromSources([{ file: 'policies/signals/r.yaml', text: rule.replace('playbook: x', 'playbook: y').replace(/\n  colour.*\n/, '\n') }], playbooks.playbooks);
    expect(unknown).toMatchObject({ ok: false, errors: [{ line: 5, message: 'no playbook "y" (available: x)' }] });
    const when = loadRulesFromSources([{ file: 'policies/signals/r.yaml', text: rule.replace(/\n  colour.*\n/, '\n') + 'when: { riskScore: { $gte: 0.7 } }\n' }], playbooks.playbooks);
    expect(when).toMatchObject({ ok: false, errors: [{ line: 9, message: expect.stringMatching(/conditions look at payload\.<field>/) }] });
  });

  it('are re-read from disk while the server runs; a broken edit leaves the last good set, and rules follow the playbooks', () => {
    const dir = path.join(tmpDir('regent-catalog-'), 'policies');
    const write = (rel: string, text: string) => {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), text);
    };
    const log = { info: jest.fn(), error: jest.fn() };
    const playbooks = createPlaybookCatalog(dir, log as unknown as Logger, { checkEveryMs: 0 });
    const rules = createRuleCatalog(dir, log as unknown as Logger, () => new Map(playbooks.list().map((p) => [p.id, p])), { checkEveryMs: 0 });
    write('playbooks/x.yaml', PLAYBOOK);
    write('signals/r.yaml', 'kind: SignalRule\nid: r\nsignal: crm.churn_risk\ntwin: vic-twin\nplaybook: y\ntext: keep\nparams: { account: "{{payload.account}}" }\n');
    expect(playbooks.load()).toEqual({ ok: true, errors: [] });
    expect(log.info).toHaveBeenCalledWith('playbooks loaded', { playbooks: ['x'] });
    expect(rules.load()).toMatchObject({ ok: false, errors: [{ file: 'policies/signals/r.yaml', line: 5, message: 'no playbook "y" (available: x)' }] });
    expect(log.error).toHaveBeenCalledWith('signal rules refused; the last good set stays in force', {
      errors: ['policies/signals/r.yaml:5: no playbook "y" (available: x)'],
      inForce: [],
    });

    write('playbooks/y.yaml', PLAYBOOK.replace('id: x', 'id: y').replace('title: X', 'titel: X'));
    expect(playbooks.list().map((p) => p.id)).toEqual(['x']);
    expect(playbooks.errors()).toMatchObject([
      { file: 'policies/playbooks/y.yaml', line: 1, message: 'missing required field "title"' },
      { file: 'policies/playbooks/y.yaml', line: 3, message: expect.stringMatching(/^unknown field "titel" \(known fields: kind, id, title,/) },
    ]);
    expect(log.error).toHaveBeenLastCalledWith('playbooks refused; the last good set stays in force', {
      errors: ['policies/playbooks/y.yaml:1: missing required field "title"', expect.stringMatching(/^policies\/playbooks\/y\.yaml:3: unknown field "titel"/)],
      inForce: ['x'],
    });

    // Fixed (a longer file, so the change shows whatever the clock's resolution): y is in force, and
    // the rule that named it loads although no rule file changed.
    write('playbooks/y.yaml', PLAYBOOK.replace('id: x', 'id: y').replace('title: X', 'title: Y, fixed'));
    expect(playbooks.get('y')?.id).toBe('y');
    expect(playbooks.errors()).toEqual([]);
    expect(rules.forType('crm.churn_risk').map((r) => r.doc.id)).toEqual(['r']);
    expect(log.info).toHaveBeenLastCalledWith('signal rules loaded', { rules: ['r'] });
  });
});
