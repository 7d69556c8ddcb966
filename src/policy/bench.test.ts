import { benchPolicy } from './bench';
import { decide } from './engine';
import { loadBundleFromSources } from './load';
import { benchAuthority } from './testing/generate';

describe('the policy benchmark', () => {
  it.each([1, 100, 1000])('times a decision against a %i-grant authority that executes', (n) => {
    const { source, request } = benchAuthority(n);
    const loaded = loadBundleFromSources([source]);
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    expect(loaded.bundle.authorities.get('bench-twin')!.grants).toHaveLength(n);
    expect(decide(loaded.bundle, request).outcome).toBe('execute');
    const r = benchPolicy(loaded.bundle, request, 2_000);
    expect(Object.keys(r)).toEqual(['p50_us', 'p99_us', 'ops_per_s']);
    expect(r.p50_us).toBeGreaterThan(0);
    expect(r.p99_us).toBeGreaterThanOrEqual(r.p50_us);
    // Generous bound: jest and shared CI machines are slow; the real figures come from `regent bench policy`.
    expect(r.p50_us).toBeLessThan(1_000);
  });
});
