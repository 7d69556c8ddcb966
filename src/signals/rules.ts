/**
 * Standing rules (`policies/signals/*.yaml`): which signal types start which playbook objective
 * for which twin, with the playbook's params taken from the signal's payload. Loaded all or
 * nothing with every problem as `file:line`; re-read when the folder changes.
 */
import { compileInputSchema } from '../connectors/schema';
import type { Logger } from '../log/logger';
import { conditionProblems } from '../policy/conditions';
import { parseDocuments, type YamlSource } from '../yaml/documents';
import { createCatalog } from '../yaml/catalog';
import { folderFingerprint, readYamlSources } from '../yaml/folder';
import { byPosition, type YamlProblem as LoadError } from '../yaml/problems';
import type { Playbook } from '../objectives/playbooks';
import { malformed, references } from '../objectives/template';
import { SignalRuleSchema, type SignalRule } from './types';

const SIGNAL_FIELDS = ['id', 'type', 'source', 'occurredAt', 'receivedAt'];

export type RuleLoad = { ok: true; rules: SignalRule[] } | { ok: false; errors: LoadError[] };

/**
 * Parses and checks rules. With `playbooks`, each rule's playbook must exist and its params must
 * be parameters of that playbook (a typo would otherwise only show when a signal arrives).
 */
export function loadRulesFromSources(sources: readonly YamlSource[], playbooks?: ReadonlyMap<string, Playbook>): RuleLoad {
  const { docs, errors } = parseDocuments(sources, SignalRuleSchema, 'SignalRule');
  const seen = new Map<string, string>();
  const rules: SignalRule[] = [];
  for (const d of docs) {
    const r = d.doc;
    const at = (path: (string | number)[], message: string) => errors.push({ file: d.file, line: d.lineOf(path), message });
    const prior = seen.get(r.id);
    if (prior) at(['id'], `duplicate rule id "${r.id}" (also in ${prior})`);
    else seen.set(r.id, `${d.file}:${d.lineOf(['id'])}`);
    if (r.payload && r.payload.type !== 'object') at(['payload', 'type'], 'payload is type object');
    if (r.when) {
      for (const p of conditionProblems(r.when)) at(['when', ...p.path], p.message);
      for (const field of Object.keys(r.when)) {
        if (!/^(payload|signal)\./.test(field)) at(['when', field], `conditions look at payload.<field> or signal.<${SIGNAL_FIELDS.join('|')}>, not "${field}"`);
      }
    }
    for (const ref of [...references(r.params, ['params']), ...references(r.text, ['text'])]) {
      const [root, name] = ref.ref.split('.');
      if (root === 'signal' && !SIGNAL_FIELDS.includes(name ?? '')) at(ref.path, `{{${ref.ref}}}: a signal has ${SIGNAL_FIELDS.join(', ')}`);
      else if (root !== 'signal' && root !== 'payload') at(ref.path, `{{${ref.ref}}} must start with payload or signal`);
    }
    for (const m of [...malformed(r.params, ['params']), ...malformed(r.text, ['text'])]) at(m.path, `${JSON.stringify(m.text)} has braces that are not a {{placeholder}}`);
    if (playbooks) {
      const pb = playbooks.get(r.playbook);
      if (!pb) at(['playbook'], `no playbook "${r.playbook}" (available: ${[...playbooks.keys()].sort().join(', ') || 'none'})`);
      else {
        const names = Object.keys(pb.doc.params.properties ?? {});
        for (const name of Object.keys(r.params)) {
          if (!names.includes(name)) at(['params', name], `"${name}" is not a parameter of playbook ${pb.id} (parameters: ${names.join(', ')})`);
        }
      }
    }
    rules.push({ doc: r, file: d.file, line: d.lineOf(['id']) });
  }
  if (errors.length) return { ok: false, errors: errors.sort(byPosition) };
  // Compiling the payload schemas cannot fail once they validated; done here so a signal never waits on it.
  for (const rule of rules) if (rule.doc.payload) rule.payloadSchema = compileInputSchema(rule.doc.payload);
  return { ok: true, rules };
}

export const loadRules = (dir: string, playbooks?: ReadonlyMap<string, Playbook>): RuleLoad =>
  loadRulesFromSources(readYamlSources(dir, 'signals'), playbooks);

/** The rules in force; an invalid edit is refused (logged with file:line) and the last good set stays. */
export function createRuleCatalog(dir: string, log: Logger, playbooks: () => ReadonlyMap<string, Playbook>, opts: { checkEveryMs?: number } = {}) {
  const catalog = createCatalog({
    name: 'signal rules',
    listedAs: 'rules',
    empty: [] as SignalRule[],
    ids: (set) => set.map((x) => x.doc.id),
    // The rules are checked against the playbooks: a playbook added or removed is a change too.
    source: () => {
      const known = playbooks();
      return {
        fingerprint: `${folderFingerprint(dir, 'signals')}:${[...known.keys()].sort().join(',')}`,
        read: () => {
          const r = loadRules(dir, known);
          return r.ok ? { ok: true, set: r.rules } : r;
        },
      };
    },
    log,
    ...opts,
  });
  return {
    load: catalog.load,
    forType: (type: string): SignalRule[] => catalog.current().filter((r) => r.doc.signal === type),
    list: (): SignalRule[] => catalog.current(),
    errors: catalog.errors,
  };
}

export type RuleCatalog = ReturnType<typeof createRuleCatalog>;
