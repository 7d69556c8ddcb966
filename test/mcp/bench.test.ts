/** `regent bench mcp` runs end to end and prints the fixed fields (figures are the bench's business, not a test's). */
import { benchMcp } from '../../src/mcp/bench';
import { silentLog } from '../support/journal';

describe('regent bench mcp', () => {
  it('measures calls through /mcp and POST /v1/proposals in one run', async () => {
    const r = await benchMcp({ calls: 8, concurrency: 2, log: silentLog });
    expect(Object.keys(r).slice(0, 4)).toEqual(['calls_per_s', 'p50_ms', 'p99_ms', 'overhead_p50_ms']);
    expect(r.calls).toBe(8);
    expect(r.calls_per_s).toBeGreaterThan(0);
    expect(r.rest_calls_per_s).toBeGreaterThan(0);
    expect(r.p99_ms).toBeGreaterThanOrEqual(r.p50_ms);
  }, 120_000);
});
