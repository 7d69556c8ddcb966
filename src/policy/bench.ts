/** `regent bench policy`: the in-process decision timed call by call. */
import { decide, type PolicyBundle } from './engine';
import type { DecisionRequest } from './types';

export interface BenchResult {
  p50_us: number;
  p99_us: number;
  ops_per_s: number;
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

export function benchPolicy(bundle: PolicyBundle, request: DecisionRequest, iterations = 100_000): BenchResult {
  const n = Math.max(1, Math.floor(iterations));
  // Warm-up lets V8 optimise decide() and fills the time-zone caches, as in a running server.
  const warmup = Math.max(1_000, Math.min(n, 50_000));
  let sink = 0;
  for (let i = 0; i < warmup; i++) sink += decide(bundle, request).reasons.length;
  const samples = new Float64Array(n);
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    sink += decide(bundle, request).reasons.length;
    samples[i] = Number(process.hrtime.bigint() - t0);
  }
  const elapsed = Number(process.hrtime.bigint() - start);
  if (sink < 0) throw new Error('unreachable'); // keeps the results observably used
  samples.sort();
  const at = (q: number) => samples[Math.min(n - 1, Math.floor(q * (n - 1)))]! / 1000;
  return { p50_us: round(at(0.5), 3), p99_us: round(at(0.99), 3), ops_per_s: Math.round(n / (elapsed / 1e9)) };
}
