/** Helpers for tests: bundles from inline YAML and requests with defaults. */
import { loadBundleFromSources, formatLoadError, type PolicySource } from '../load';
import type { PolicyBundle } from '../engine';
import type { DecisionRequest } from '../types';

/** Loads inline documents (each string one file, named after its id) or throws with the errors. */
export function bundleOf(...texts: string[]): PolicyBundle {
  const sources: PolicySource[] = texts.map((text, i) => ({ file: `policies/authorities/${/^id: *(\S+)/m.exec(text)?.[1] ?? i}.yaml`, text }));
  const r = loadBundleFromSources(sources);
  if (!r.ok) throw new Error(r.errors.map(formatLoadError).join('\n'));
  return r.bundle;
}

/** A minimal valid authority; `body` is appended (grants, forbid, hours, ...). */
export function authority(fields: { id?: string; delegate?: string; mode?: string; currency?: string; parent?: string; valid?: string; extra?: string } = {}, body = 'grants: []\n'): string {
  const id = fields.id ?? 'gen';
  return `kind: Authority
id: ${id}
version: 1
delegator: user:${id}-owner
delegate: ${fields.delegate ?? `twin:${id}`}
parent: ${fields.parent ?? 'null'}
valid: ${fields.valid ?? '{ from: 2026-01-01T00:00:00Z, until: 2036-01-01T00:00:00Z }'}
mode: ${fields.mode ?? 'execute'}
currency: ${fields.currency ?? 'EUR'}
${fields.extra ?? ''}
${body}`;
}

export function request(overrides: Partial<DecisionRequest> = {}): DecisionRequest {
  return {
    principal: 'twin:gen',
    action: 'crm.discount.update',
    resource: { counterparty: 'acme', discountPct: 10, amount: '100.00' },
    at: '2026-11-10T10:00:00+01:00',
    ...overrides,
  };
}
