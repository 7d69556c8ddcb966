/**
 * Playbooks (`policies/playbooks/*.yaml`): machine-readable procedures whose steps are action
 * requests, with args templated from the objective's parameters. They let a twin work with no
 * language model at all, and the console and CLI offer them as forms (params is JSON Schema).
 *
 * A playbook plans; it never decides. Every step still goes through the governed pipeline, so a
 * playbook can ask for no more than the twin's authority allows.
 */
import { z } from 'zod';
import { ActionName, compileInputSchema, InputSchemaSchema, toJsonSchema, type InputSchema } from '../connectors/schema';
import { InputError } from '../errors/errors';
import type { Logger } from '../log/logger';
import { conditionProblems } from '../policy/conditions';
import { parseDocuments, type Located, type YamlSource } from '../yaml/documents';
import { byPosition, type YamlProblem as LoadError } from '../yaml/problems';
import { createCatalog } from '../yaml/catalog';
import { folderFingerprint, readYamlSources } from '../yaml/folder';
import { malformed, references } from './template';

export const PLAYBOOK_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const Id = z.string().regex(PLAYBOOK_ID, { error: 'playbook ids are lower-case letters, digits and "-", e.g. renewal-discount' });
const StepId = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, { error: 'step ids are lower-case letters, digits and "_", e.g. discount' });

/** What a step does when its action request ends badly (refused, denied, rejected, expired, cancelled, failed). */
export const ON_FAILURE = ['stop', 'continue'] as const;
/** settled: wait until the request is decided and, if allowed, executed; submitted: go on at once. */
export const AWAIT = ['settled', 'submitted'] as const;

export const PlaybookStepSchema = z
  .object({
    id: StepId,
    title: z.string().min(1).max(200).optional(),
    action: ActionName,
    /** The action's args; strings may hold {{params.x}}, {{steps.<id>.result.x}}, {{objective.id}}. */
    args: z.record(z.string(), z.unknown()),
    /** Why, as the approver reads it; templated like args. */
    rationale: z.string().min(1).max(4000),
    /** Run the step only when these conditions hold (MongoDB-style, over params, steps and objective). */
    when: z.record(z.string(), z.unknown()).optional(),
    onFailure: z.enum(ON_FAILURE).default('stop'),
    await: z.enum(AWAIT).default('settled'),
  })
  .strict();

const ROOTS = ['params', 'steps', 'objective'] as const;
const STEP_FIELDS = ['status', 'result', 'reasons', 'proposalId', 'error'];
const OBJECTIVE_FIELDS = ['id', 'text'];

export const PlaybookSchema = z
  .object({
    kind: z.literal('Playbook', { error: (iss) => (iss.input === undefined ? 'required' : 'kind must be Playbook') }),
    id: Id,
    title: z.string().min(1).max(120),
    description: z.string().min(1).max(2000),
    /** The parameters an objective gives, as a JSON Schema subset (type object), compiled to zod. */
    params: InputSchemaSchema,
    /** Values for parameters the objective leaves out. */
    defaults: z.record(z.string(), z.unknown()).default({}),
    steps: z.array(PlaybookStepSchema).min(1, { error: 'a playbook has at least one step' }).max(50),
  })
  .strict()
  .superRefine((p, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    if (p.params.type !== 'object') {
      issue(['params', 'type'], 'params is type object (its properties are the parameters)');
      return;
    }
    const props = p.params.properties ?? {};
    for (const [name, value] of Object.entries(p.defaults)) {
      const prop = props[name];
      if (!prop) issue(['defaults', name], `default for "${name}", which is not a parameter (parameters: ${Object.keys(props).join(', ') || 'none'})`);
      else {
        const r = compileInputSchema(prop).safeParse(value);
        if (!r.success) issue(['defaults', name], `default ${JSON.stringify(value)} does not fit the parameter: ${r.error.issues[0]!.message}`);
      }
    }
    const seen = new Map<string, number>();
    p.steps.forEach((step, i) => {
      const first = seen.get(step.id);
      if (first !== undefined) issue(['steps', i, 'id'], `duplicate step id "${step.id}" (also steps[${first}])`);
      else seen.set(step.id, i);
      const earlier = new Set(p.steps.slice(0, i).map((s) => s.id));
      const checkRef = (ref: string, at: (string | number)[]) => {
        const [root, name, field] = ref.split('.');
        if (!(ROOTS as readonly string[]).includes(root!)) return issue(at, `{{${ref}}} must start with ${ROOTS.join(', ')}`);
        if (root === 'params' && !props[name ?? '']) return issue(at, `{{${ref}}} names no parameter (parameters: ${Object.keys(props).join(', ') || 'none'})`);
        if (root === 'objective' && !OBJECTIVE_FIELDS.includes(name ?? '')) return issue(at, `{{${ref}}}: objective has ${OBJECTIVE_FIELDS.join(', ')}`);
        if (root === 'steps') {
          if (!earlier.has(name ?? '')) return issue(at, `{{${ref}}} names no earlier step (a step sees only the steps before it)`);
          if (!STEP_FIELDS.includes(field ?? '')) return issue(at, `{{${ref}}}: a step has ${STEP_FIELDS.join(', ')}`);
        }
      };
      for (const r of [...references(step.args, ['steps', i, 'args']), ...references(step.rationale, ['steps', i, 'rationale'])]) checkRef(r.ref, r.path);
      for (const m of [...malformed(step.args, ['steps', i, 'args']), ...malformed(step.rationale, ['steps', i, 'rationale'])])
        issue(m.path, `${JSON.stringify(m.text)} has braces that are not a {{placeholder}}`);
      if (step.when) {
        for (const c of conditionProblems(step.when)) issue(['steps', i, 'when', ...c.path], c.message);
        for (const field of Object.keys(step.when)) checkRef(field, ['steps', i, 'when', field]);
      }
    });
  });

export type PlaybookDoc = z.output<typeof PlaybookSchema>;
export type PlaybookStep = PlaybookDoc['steps'][number];

export interface Playbook {
  id: string;
  title: string;
  description: string;
  /** Where it was read from (`policies/playbooks/x.yaml`). */
  file: string;
  doc: PlaybookDoc;
  /** Validates an objective's params (defaults filled in). */
  params: z.ZodType<Record<string, unknown>>;
}

/** What GET /v1/playbooks shows: enough for a form (JSON Schema with defaults) and a preview of the steps. */
export interface PlaybookView {
  id: string;
  title: string;
  description: string;
  params: Record<string, unknown>;
  steps: { id: string; title: string | null; action: string; when: Record<string, unknown> | null; onFailure: string; await: string }[];
}

export function compilePlaybook(doc: PlaybookDoc, file: string): Playbook {
  return { id: doc.id, title: doc.title, description: doc.description, file, doc, params: compileInputSchema(doc.params) as z.ZodType<Record<string, unknown>> };
}

export function playbookView(p: Playbook): PlaybookView {
  const schema = toJsonSchema(p.doc.params);
  const props = { ...(schema.properties as Record<string, Record<string, unknown>>) };
  for (const [k, v] of Object.entries(p.doc.defaults)) if (props[k]) props[k] = { ...props[k], default: v };
  return {
    id: p.id,
    title: p.title,
    description: p.description,
    params: { ...schema, properties: props },
    steps: p.doc.steps.map((s) => ({ id: s.id, title: s.title ?? null, action: s.action, when: s.when ?? null, onFailure: s.onFailure, await: s.await })),
  };
}

/** The objective's params with defaults filled in, validated; an InputError names the first bad field. */
export function resolveParams(p: Playbook, given: Record<string, unknown>): Record<string, unknown> {
  const value = { ...p.doc.defaults, ...given };
  const r = p.params.safeParse(value);
  if (r.success) return r.data;
  const i = r.error.issues[0]!;
  const keys = i.code === 'unrecognized_keys' ? i.keys : [];
  const path = [...i.path, ...keys.slice(0, 1)].map(String);
  const field = path.length ? `params.${path.join('.')}` : 'params';
  const known = Object.keys(p.doc.params.properties ?? {}).join(', ');
  const missing = i.code === 'invalid_type' && i.path.length === 1 && (value as Record<string, unknown>)[String(i.path[0])] === undefined;
  const message =
    i.code === 'unrecognized_keys'
      ? `is not a parameter of playbook ${p.id} (parameters: ${known})`
      : missing
        ? `is required by playbook ${p.id}${p.doc.params.properties?.[String(i.path[0])]?.description ? ` (${p.doc.params.properties[String(i.path[0])]!.description})` : ''}`
        : i.message;
  throw new InputError(`${field}: ${message}`, { field });
}

/** The JSON Schema subset's declared parameters, for messages. */
export const paramNames = (p: Playbook): string[] => Object.keys((p.doc.params as InputSchema).properties ?? {});

export type PlaybookLoad = { ok: true; playbooks: Map<string, Playbook> } | { ok: false; errors: LoadError[] };

export function loadPlaybooksFromSources(sources: readonly YamlSource[]): PlaybookLoad {
  const { docs, errors } = parseDocuments(sources, PlaybookSchema, 'Playbook');
  const playbooks = new Map<string, Playbook>();
  const first = new Map<string, Located<PlaybookDoc>>();
  for (const d of docs) {
    const prior = first.get(d.doc.id);
    if (prior) {
      errors.push({ file: d.file, line: d.lineOf(['id']), message: `duplicate playbook id "${d.doc.id}" (also in ${prior.file}:${prior.lineOf(['id'])})` });
      continue;
    }
    first.set(d.doc.id, d);
    playbooks.set(d.doc.id, compilePlaybook(d.doc, d.file));
  }
  return errors.length ? { ok: false, errors: errors.sort(byPosition) } : { ok: true, playbooks };
}

export const loadPlaybooks = (dir: string): PlaybookLoad => loadPlaybooksFromSources(readYamlSources(dir, 'playbooks'));

/**
 * The playbooks in force, re-read when a file in the folder changes (checked at most once a
 * second). An invalid edit is refused with every file:line in the log and the last good set stays.
 */
export function createPlaybookCatalog(dir: string, log: Logger, opts: { checkEveryMs?: number } = {}) {
  const catalog = createCatalog({
    name: 'playbooks',
    listedAs: 'playbooks',
    empty: new Map<string, Playbook>(),
    ids: (set) => [...set.keys()],
    source: () => ({
      fingerprint: folderFingerprint(dir, 'playbooks'),
      read: () => {
        const r = loadPlaybooks(dir);
        return r.ok ? { ok: true, set: r.playbooks } : r;
      },
    }),
    log,
    ...opts,
  });
  return {
    /** Reads the folder now (at start). */
    load: catalog.load,
    get: (id: string): Playbook | undefined => catalog.current().get(id),
    list: (): Playbook[] => [...catalog.current().values()].sort((a, b) => (a.id < b.id ? -1 : 1)),
    /** Problems of the files on disk, if the last read refused them. */
    errors: catalog.errors,
  };
}

export type PlaybookCatalog = ReturnType<typeof createPlaybookCatalog>;

