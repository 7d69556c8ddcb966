/**
 * The small template language of playbooks and signal rules: `{{params.account}}` in a value.
 * A string that is exactly one placeholder takes the value itself (a number stays a number; an
 * absent value drops the field); placeholders inside longer text are replaced by the value's text.
 * No expressions, no code: what a template can reach is the scope it is given, nothing else.
 */
import { createMongoAbility, subject as caslSubject } from '@casl/ability';

const PATH = '[A-Za-z_][A-Za-z0-9_-]*(?:\\.[A-Za-z0-9_-]+)*';
const WHOLE = new RegExp(`^\\{\\{\\s*(${PATH})\\s*\\}\\}$`);
const ANY = new RegExp(`\\{\\{\\s*(${PATH})\\s*\\}\\}`, 'g');
/** Braces that do not form a placeholder: a typo such as `{{ params.x }` or `{params.x}}`. */
const STRAY = /\{\{|\}\}/;

export type Scope = Record<string, unknown>;

function lookup(scope: unknown, path: string): unknown {
  let v = scope;
  for (const seg of path.split('.')) {
    if (v === null || typeof v !== 'object' || !Object.prototype.hasOwnProperty.call(v, seg)) return undefined;
    v = (v as Record<string, unknown>)[seg];
  }
  return v;
}

const asText = (v: unknown) => (v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v));

/** Renders `value` against `scope`. Object fields whose template has no value are left out. */
export function render(value: unknown, scope: Scope): unknown {
  if (typeof value === 'string') {
    const whole = WHOLE.exec(value);
    if (whole) return lookup(scope, whole[1]!);
    return value.replace(ANY, (_m, path: string) => asText(lookup(scope, path)));
  }
  if (Array.isArray(value)) return value.map((v) => render(v, scope)).filter((v) => v !== undefined);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const r = render(v, scope);
      if (r !== undefined) out[k] = r;
    }
    return out;
  }
  return value;
}

/** Renders text (a rationale, an objective's text): always a string. */
export const renderText = (text: string, scope: Scope): string => asText(render(text, scope));

/** Every placeholder path in `value`, with the path (into `value`) where it occurs. */
export function references(value: unknown, at: (string | number)[] = []): { ref: string; path: (string | number)[] }[] {
  if (typeof value === 'string') return [...value.matchAll(ANY)].map((m) => ({ ref: m[1]!, path: at }));
  if (Array.isArray(value)) return value.flatMap((v, i) => references(v, [...at, i]));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => references(v, [...at, k]));
  return [];
}

/** Strings with braces that are not a well-formed placeholder, with where they are. */
export function malformed(value: unknown, at: (string | number)[] = []): { text: string; path: (string | number)[] }[] {
  if (typeof value === 'string') return STRAY.test(value.replace(ANY, '')) ? [{ text: value, path: at }] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => malformed(v, [...at, i]));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => malformed(v, [...at, k]));
  return [];
}

/**
 * Whether `scope` satisfies `when`: the same MongoDB-style conditions as authority documents
 * (checked by src/policy/conditions before they get here), with dotted paths such as
 * `steps.discount.status` reaching into nested values.
 */
export function matches(when: Record<string, unknown> | undefined, scope: Scope): boolean {
  if (!when || Object.keys(when).length === 0) return true;
  // Conditions come from loaded documents, which do not change: one ability each.
  let ability = abilities.get(when);
  if (!ability) abilities.set(when, (ability = createMongoAbility([{ action: 'match', subject: 'Scope', conditions: when }])));
  // CASL tags the top-level object it is given; a shallow copy keeps the caller's scope untouched.
  return ability.can('match', caslSubject('Scope', { ...scope }));
}

const abilities = new WeakMap<object, ReturnType<typeof createMongoAbility>>();
