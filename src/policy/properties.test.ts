/**
 * The semantic rules of DESIGN.md as properties over generated authorities and requests
 * (seeded, so a failure names a seed that replays it exactly).
 */
import { stringify } from 'yaml';
import { decide, type PolicyBundle } from './engine';
import { loadBundleFromSources, formatLoadError, type PolicySource } from './load';
import { createRng, type Rng } from './testing/rng';
import { randomAuthority, randomForbid, randomGrant, randomRequest, VOCAB } from './testing/generate';
import { OUTCOME_RANK, MODES, type Decision, type DecisionRequest, type Mode } from './types';

const RUNS = 150;

function load(...docs: Record<string, unknown>[]): PolicyBundle {
  const sources: PolicySource[] = docs.map((d) => ({ file: `policies/authorities/${String(d.id)}.yaml`, text: stringify(d) }));
  const r = loadBundleFromSources(sources);
  if (!r.ok) throw new Error(r.errors.map(formatLoadError).join('\n'));
  return r.bundle;
}

/** Runs `check` for RUNS seeds; a failure reports the seed. */
function property(check: (rng: Rng) => void) {
  for (let seed = 1; seed <= RUNS; seed++) {
    try {
      check(createRng(seed));
    } catch (e) {
      (e as Error).message = `seed ${seed}: ${(e as Error).message}`;
      throw e;
    }
  }
}

const rank = (d: Decision) => OUTCOME_RANK[d.outcome];
/** What must not depend on order: the outcome, the reasons as words, the approval asked for. */
const meaning = (d: Decision) => ({
  outcome: d.outcome,
  reasons: d.reasons.map((r) => [r.code, r.message]),
  approval: d.approval && { approvers: d.approval.approvers, quorum: d.approval.quorum, expiresAt: d.approval.expiresAt },
});

describe('semantic properties', () => {
  it('denies by default: with no grant for the action the outcome is deny', () => {
    property((rng) => {
      const doc = randomAuthority(rng);
      const request = randomRequest(rng);
      doc.grants = (doc.grants as { action: string }[]).filter((g) => g.action !== request.action);
      const d = decide(load(doc), request);
      expect(d.outcome).toBe('deny');
      expect(d.approval).toBeNull();
    });
  });

  it('never allows anything without a matching grant of the principal’s authority', () => {
    let allowed = 0;
    property((rng) => {
      const d = decide(load(randomAuthority(rng)), randomRequest(rng));
      if (d.outcome === 'deny') return;
      allowed++;
      expect(d.matched.some((m) => m.kind === 'grant' && m.authority === 'gen')).toBe(true);
    });
    // The generator makes requests that are allowed, or the property above checked nothing.
    expect(allowed).toBeGreaterThan(0);
  });

  it('lets a matching forbid always win', () => {
    property((rng) => {
      const doc = randomAuthority(rng, { grants: rng.int(1, 6) });
      const request = randomRequest(rng);
      const forbid: Record<string, unknown> = { action: request.action, reason: 'never' };
      // with no condition, or with one the request satisfies
      if (rng.bool()) forbid.when = { counterparty: request.resource.counterparty };
      doc.forbid = rng.shuffle([...(doc.forbid as unknown[]), forbid]);
      const d = decide(load(doc), request);
      expect(d.outcome).toBe('deny');
      expect(d.reasons.map((r) => r.code)).toContain('forbidden');
    });
  });

  it('never lowers an outcome by adding a grant', () => {
    property((rng) => {
      const doc = randomAuthority(rng);
      const request = randomRequest(rng);
      const before = decide(load(doc), request);
      const grant = randomGrant(rng);
      if (rng.bool()) grant.action = request.action;
      const after = decide(load({ ...doc, grants: [...(doc.grants as unknown[]), grant] }), request);
      expect(rank(after)).toBeGreaterThanOrEqual(rank(before));
    });
  });

  it('never lets a child exceed its parent', () => {
    let childAllowed = 0;
    property((rng) => {
      const parent = randomAuthority(rng, { id: 'parent', delegate: 'twin:parent' });
      const allowed = MODES.filter((m) => OUTCOME_RANK[m] <= OUTCOME_RANK[parent.mode as Mode]);
      const child = randomAuthority(rng, { id: 'child', delegate: 'twin:child', parent: 'parent', mode: rng.pick(allowed) });
      const bundle = load(parent, child);
      const request = randomRequest(rng, 'twin:child');
      const asChild = decide(bundle, request);
      const asParent = decide(bundle, { ...request, principal: 'twin:parent' });
      expect(rank(asChild)).toBeLessThanOrEqual(rank(asParent));
      if (asChild.outcome !== 'deny') childAllowed++;
    });
    expect(childAllowed).toBeGreaterThan(0); // the child was allowed something to compare, in some runs
  });

  it('never exceeds the document mode or the twin mode', () => {
    property((rng) => {
      const doc = randomAuthority(rng);
      const request = randomRequest(rng);
      const d = decide(load(doc), request);
      expect(rank(d)).toBeLessThanOrEqual(OUTCOME_RANK[doc.mode as Mode]);
      expect(rank(d)).toBeLessThanOrEqual(OUTCOME_RANK[request.twinMode ?? 'execute']);
      expect(d.approval === null).toBe(d.outcome !== 'approve');
    });
  });

  it('does not depend on the order of grants and forbids', () => {
    property((rng) => {
      const doc = randomAuthority(rng, { grants: rng.int(2, 8), forbids: rng.int(0, 3) });
      const shuffled = { ...doc, grants: rng.shuffle(doc.grants as unknown[]), forbid: rng.shuffle(doc.forbid as unknown[]) };
      const a = load(doc);
      const b = load(shuffled);
      for (let i = 0; i < 5; i++) {
        const request = randomRequest(rng);
        expect(meaning(decide(b, request))).toEqual(meaning(decide(a, request)));
      }
    });
  });

  it('does not depend on the order of files', () => {
    property((rng) => {
      const parent = randomAuthority(rng, { id: 'parent', delegate: 'twin:parent', mode: 'execute' });
      const child = randomAuthority(rng, { id: 'child', delegate: 'twin:child', parent: 'parent' });
      const other = randomAuthority(rng, { id: 'other', delegate: 'twin:other' });
      const sources = [parent, child, other].map((d) => ({ file: `policies/authorities/${String(d.id)}.yaml`, text: stringify(d) }));
      const one = loadBundleFromSources(sources);
      const two = loadBundleFromSources(rng.shuffle(sources));
      if (!one.ok || !two.ok) throw new Error('generated documents must load');
      expect(two.bundle.version).toBe(one.bundle.version);
      const request = randomRequest(rng, rng.pick(['twin:parent', 'twin:child', 'twin:other']));
      expect(decide(two.bundle, request)).toEqual(decide(one.bundle, request));
    });
  });

  it('never hides a matching grant behind the grant index', () => {
    let matchedSome = 0;
    property((rng) => {
      const doc = randomAuthority(rng, { grants: rng.int(4, 12), forbids: 0, mode: 'execute' });
      const bundle = load(doc);
      const a = bundle.authorities.get('gen')!;
      const request = randomRequest(rng);
      // values the index must cope with: lists (matched element-wise), null, missing, numbers
      request.resource.counterparty = rng.pick([rng.pick(VOCAB.counterparties), rng.subset(VOCAB.counterparties), null, undefined, 7]);
      const d = decide(bundle, request);
      const expected = (a.byAction.get(request.action)?.grants ?? []).filter((g) => g.casl.matchesConditions(request.resource)).map((g) => g.rule);
      const actual = d.matched.filter((m) => m.kind === 'grant').map((m) => m.rule);
      if (d.reasons[0]?.code === 'bad_amount' || d.reasons[0]?.code === 'bad_request') return;
      expect(actual.sort()).toEqual(expected.sort());
      if (expected.length > 0) matchedSome++;
    });
    expect(matchedSome).toBeGreaterThan(0); // some requests did match grants through the index
  });

  it('is deterministic: the same request gives the same decision', () => {
    property((rng) => {
      const bundle = load(randomAuthority(rng));
      const request: DecisionRequest = randomRequest(rng);
      expect(decide(bundle, request)).toEqual(decide(bundle, structuredClone(request)));
    });
  });

  it('loads every generated document (the generators stay within the schema)', () => {
    property((rng) => {
      expect(() => load(randomAuthority(rng), { ...randomAuthority(rng, { id: 'x', delegate: 'twin:x' }), forbid: [randomForbid(rng)] })).not.toThrow();
    });
  });
});
