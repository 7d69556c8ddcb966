/**
 * Loads the signal sources (`policies/signals/sources/*.yaml`) all or nothing, every problem as
 * `file:line`; a secret named by `auth.secretEnv` must be set.
 */
import { parseDocuments, type YamlSource } from '../../yaml/documents';
import { readYamlSources } from '../../yaml/folder';
import { byPosition, type YamlProblem } from '../../yaml/problems';
import { SignalSourceSchema, type SignalSourceConfig } from './types';

export type SourceLoad = { ok: true; sources: SignalSourceConfig[] } | { ok: false; errors: YamlProblem[] };

export function loadSourcesFrom(files: readonly YamlSource[], env: NodeJS.ProcessEnv): SourceLoad {
  const { docs, errors } = parseDocuments(files, SignalSourceSchema, 'SignalSource');
  const seen = new Map<string, string>();
  const sources: SignalSourceConfig[] = [];
  for (const d of docs) {
    const s = d.doc;
    const at = (path: (string | number)[], message: string) => errors.push({ file: d.file, line: d.lineOf(path), message });
    const prior = seen.get(s.id);
    if (prior) at(['id'], `duplicate signal source id "${s.id}" (also in ${prior})`);
    else seen.set(s.id, `${d.file}:${d.lineOf(['id'])}`);
    let password: string | undefined;
    if (s.auth) {
      password = env[s.auth.secretEnv];
      if (!password) at(['auth', 'secretEnv'], `environment variable ${s.auth.secretEnv} (auth.secretEnv) is not set; set it, or rename the file to *.yaml.example to disable source ${s.id}`);
    }
    sources.push({ doc: s, file: d.file, line: d.lineOf(['id']), ...(password ? { password } : {}) });
  }
  if (errors.length) return { ok: false, errors: errors.sort(byPosition) };
  return { ok: true, sources };
}

export const loadSources = (policiesDir: string, env: NodeJS.ProcessEnv = process.env): SourceLoad =>
  loadSourcesFrom(readYamlSources(policiesDir, 'signals/sources'), env);
