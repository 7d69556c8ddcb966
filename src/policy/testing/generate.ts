/**
 * Generated authorities and requests: N-grant documents for the benchmark, and random documents
 * and requests over a small vocabulary for the property tests (small, so that random requests
 * often hit random rules).
 */
import { stringify } from 'yaml';
import type { PolicySource } from '../load';
import { MODES, type DecisionRequest } from '../types';
import { PERIODS } from '../time';
import type { Rng } from './rng';

/**
 * A document with `n` grants like real ones: every tenth grant is for the benchmarked action
 * (crm.discount.update, each for other counterparties), the rest for other actions, plus forbids
 * on the same action that do not match. The request matches exactly one grant, within its
 * limits and hours, so it executes after checking every rule of its action.
 */
export function benchAuthority(n: number): { source: PolicySource; request: DecisionRequest } {
  const grants: string[] = [];
  const target = Math.max(1, Math.floor(n / 10));
  const hit = Math.floor(target / 2);
  for (let i = 0, t = 0; i < n; i++) {
    const isTarget = t < target && (i % 10 === 0 || n - i <= target - t);
    if (isTarget) {
      grants.push(`  - action: crm.discount.update
    outcome: execute
    when: { counterparty: { $in: [acct-${t}-a, acct-${t}-b, acct-${t}-c] }, discountPct: { $lte: 15 }, region: { $nin: [embargoed] } }
    limits: { perAction: "10000", perPeriod: { amount: "50000", period: month } }
    approval:
      tiers:
        - { above: "0", approvers: [role:sales-director], quorum: 1 }
        - { above: "25000", approvers: [role:cfo], quorum: 2 }
      expiresAfter: PT48H`);
      t++;
    } else {
      grants.push(`  - action: svc${i % 17}.op${i}
    outcome: ${i % 3 === 0 ? 'approve' : 'execute'}
    when: { dataClass: { $in: [public, internal] } }
    limits: { perAction: "${1000 + i}" }`);
    }
  }
  const text = `kind: Authority
id: bench-twin
version: 1
delegator: user:bench
delegate: twin:bench-twin
valid: { from: 2026-01-01T00:00:00Z, until: 2027-01-01T00:00:00Z }
mode: execute
currency: EUR
hours: { tz: Europe/Berlin, days: [mon, tue, wed, thu, fri], from: "08:00", until: "19:00" }
grants:
${grants.join('\n')}
forbid:
  - { action: crm.discount.update, when: { counterparty: megacorp }, reason: Board pricing }
  - { action: crm.discount.update, when: { discountPct: { $gt: 40 } }, reason: Never that deep }
  - { action: payments.transfer, reason: Treasury moves are never delegated }
`;
  return {
    source: { file: `policies/authorities/bench-${n}.yaml`, text },
    request: {
      principal: 'twin:bench-twin',
      action: 'crm.discount.update',
      resource: { counterparty: `acct-${hit}-b`, discountPct: 12, region: 'emea', amount: '8000.00' },
      at: '2026-11-10T10:00:00+01:00',
      spent: { month: '30000.00' },
    },
  };
}

export const VOCAB = {
  actions: ['crm.discount.update', 'email.send', 'payments.pay'] as const,
  counterparties: ['acme', 'globex', 'initech', 'umbrella'] as const,
  dataClasses: ['public', 'internal', 'confidential'] as const,
};

type Doc = Record<string, unknown>;

function randomWhen(rng: Rng): Doc | undefined {
  if (rng.bool(0.25)) return undefined;
  const when: Doc = {};
  if (rng.bool(0.7)) {
    when.counterparty = rng.pick([
      () => ({ $in: rng.subset(VOCAB.counterparties) }),
      () => ({ $nin: rng.subset(VOCAB.counterparties) }),
      () => rng.pick(VOCAB.counterparties),
    ])();
  }
  if (rng.bool(0.5)) when.discountPct = rng.bool() ? { $lte: rng.int(0, 30) } : { $gt: rng.int(0, 30) };
  if (rng.bool(0.3)) when.dataClass = { $in: rng.subset(VOCAB.dataClasses) };
  return when;
}

const amount = (rng: Rng, max: number) => (rng.bool(0.3) ? `${rng.int(0, max)}.${String(rng.int(0, 99)).padStart(2, '0')}` : String(rng.int(0, max)));

export function randomGrant(rng: Rng): Doc {
  const g: Doc = { action: rng.pick(VOCAB.actions), outcome: rng.pick(MODES) };
  const when = randomWhen(rng);
  if (when) g.when = when;
  if (rng.bool(0.1)) g.currency = 'USD';
  if (rng.bool(0.6)) {
    const limits: Doc = {};
    if (rng.bool(0.7)) limits.perAction = amount(rng, 15_000);
    if (rng.bool(0.5)) limits.perPeriod = { amount: amount(rng, 60_000), period: rng.pick(PERIODS) };
    g.limits = limits;
  }
  if (rng.bool(0.6)) {
    const aboves = [...new Set([0, rng.int(1, 20_000), rng.int(1, 20_000)])].sort((a, b) => a - b).slice(0, rng.int(1, 3));
    g.approval = {
      tiers: aboves.map((above, i) => ({ above: String(above), approvers: [`role:level-${i}`], quorum: rng.int(1, 2) })),
      expiresAfter: rng.pick(['PT24H', 'PT48H', 'P2D']),
    };
  }
  return g;
}

export function randomForbid(rng: Rng): Doc {
  const f: Doc = { action: rng.pick(VOCAB.actions), reason: 'generated' };
  const when = randomWhen(rng);
  if (when) f.when = when;
  return f;
}

export interface RandomAuthorityOptions {
  id?: string;
  delegate?: string;
  parent?: string;
  grants?: number;
  forbids?: number;
  mode?: (typeof MODES)[number];
}

export function randomAuthority(rng: Rng, opts: RandomAuthorityOptions = {}): Doc {
  const doc: Doc = {
    kind: 'Authority',
    id: opts.id ?? 'gen',
    version: 1,
    delegator: 'user:gen',
    delegate: opts.delegate ?? 'twin:gen',
    parent: opts.parent ?? null,
    valid: { from: '2026-01-01T00:00:00Z', until: '2027-01-01T00:00:00Z' },
    mode: opts.mode ?? rng.pick(MODES),
    currency: 'EUR',
  };
  if (rng.bool(0.4)) doc.hours = { tz: rng.pick(['Europe/Berlin', 'America/New_York', 'UTC']), days: rng.subset(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']), from: '08:00', until: '19:00' };
  doc.grants = Array.from({ length: opts.grants ?? rng.int(0, 6) }, () => randomGrant(rng));
  doc.forbid = Array.from({ length: opts.forbids ?? rng.int(0, 2) }, () => randomForbid(rng));
  return doc;
}

export function randomRequest(rng: Rng, principal = 'twin:gen'): DecisionRequest {
  const resource: Record<string, unknown> = {
    counterparty: rng.pick(VOCAB.counterparties),
    discountPct: rng.int(0, 30),
    dataClass: rng.pick(VOCAB.dataClasses),
  };
  if (rng.bool(0.85)) resource.amount = amount(rng, 20_000);
  if (rng.bool(0.1)) resource.currency = 'USD';
  const at = new Date(Date.UTC(2026, rng.int(0, 11), rng.int(1, 28), rng.int(0, 23), rng.int(0, 59))).toISOString();
  const request: DecisionRequest = { principal, action: rng.pick(VOCAB.actions), resource, at };
  if (rng.bool(0.7)) request.spent = Object.fromEntries(rng.subset(PERIODS).map((p) => [p, amount(rng, 60_000)]));
  if (rng.bool(0.3)) request.twinMode = rng.pick(MODES);
  return request;
}

export function toSource(doc: Doc, file = `policies/authorities/${String(doc.id)}.yaml`): PolicySource {
  return { file, text: stringify(doc) };
}
