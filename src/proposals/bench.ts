import fs from 'node:fs';
import path from 'node:path';
import { createRegistry } from '../connectors/registry';
import { createSandboxConnector, seedSandbox } from '../connectors/sandbox';
import { openScratchDatabase } from '../db/scratch';
import { loadOrCreateSigner } from '../journal/keys';
import { createJournalService } from '../journal/service';
import { createJournalStore } from '../journal/store';
import type { Logger } from '../log/logger';
import { createPeopleService } from '../people/service';
import { createPolicyService } from '../policy/service';
import { createPolicyStore } from '../policy/store';
import { createTwinService } from '../twins/service';
import { createProposalService } from './service';
import { createProposalStore } from './store';
import type { Proposal } from './types';

export interface PipelineBenchResult {
  actions_per_s: number;
  p50_ms: number;
  p99_ms: number;
  database: 'embedded' | 'postgres';
  actions: number;
  concurrency: number;
  /** Requests per transaction where they executed with their decision (group commit). */
  requests_per_transaction: number;
}

/** The bench twin's authority: discounts up to 20% execute, with a limit no bench reaches. */
export const BENCH_AUTHORITY = `kind: Authority
id: bench-twin
version: 1
delegator: user:bench-exec
delegate: twin:bench-twin
parent: null
valid: { from: 2020-01-01T00:00:00Z, until: 2100-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: crm.discount.update
    outcome: execute
    when: { discountPct: { $lte: 20 } }
    limits: { perAction: "1000", perPeriod: { amount: "1000000000", period: month } }
`;

/**
 * Governed actions end to end in execute mode against the sandbox connector, durable: each
 * request is validated, decided with its running total reserved, recorded and journaled, claimed
 * by the executor, applied to the sandbox records, and its result recorded and journaled.
 * Latency is from the request to the recorded execution. Runs on a scratch database.
 */
export async function benchPipeline(o: {
  postgresUrl?: string;
  actions: number;
  concurrency: number;
  log: Logger;
}): Promise<PipelineBenchResult> {
  const scratch = await openScratchDatabase({
    postgresUrl: o.postgresUrl,
    poolMax: Math.max(4, o.concurrency),
    command: 'regent bench pipeline',
  });
  const { db } = scratch;
  try {
    const policiesDir = path.join(scratch.dir, 'policies');
    fs.mkdirSync(path.join(policiesDir, 'authorities'), { recursive: true });
    fs.writeFileSync(path.join(policiesDir, 'authorities', 'bench.yaml'), BENCH_AUTHORITY);

    const journal = createJournalService({
      store: createJournalStore(db.sql),
      signer: loadOrCreateSigner({ dataDir: scratch.dir, origin: 'bench.regent.local/journal' }),
      log: o.log,
      checkpointEvery: 1000,
      checkpointIntervalMs: 10_000,
    });
    await journal.start();
    const policy = createPolicyService({ dir: policiesDir, store: createPolicyStore(db.sql, db.prisma), journal, log: o.log });
    const loaded = await policy.start();
    if (!loaded.ok) throw new Error('the bench authority did not load');
    const people = createPeopleService({ sql: db.sql, prisma: db.prisma, journal, log: o.log });
    await people.addUser({ id: 'bench-exec', name: 'Bench Executive', roles: ['executive'] }, 'system');
    const twins = createTwinService({ sql: db.sql, prisma: db.prisma, journal, people, policy, log: o.log });
    await twins.create({ id: 'bench-twin', owner: 'user:bench-exec', authority: 'bench-twin', mode: 'execute' }, 'user:bench-exec');
    await seedSandbox(db.sql);
    const registry = createRegistry([
      createSandboxConnector({ id: 'sandbox', operations: [{ action: 'crm.discount.update' }] }, { sql: db.sql }),
    ]);

    const waiting = new Map<string, (p: Proposal) => void>();
    const settled = new Map<string, Proposal>();
    const proposals = createProposalService({
      store: createProposalStore(db.sql),
      journal,
      policy,
      connectors: () => registry,
      twins,
      log: o.log,
      options: { pollIntervalMs: 50, sweepIntervalMs: 60_000 },
      onSettled: (p) => {
        const w = waiting.get(p.id);
        if (w) w(p);
        else settled.set(p.id, p); // finished before its caller started waiting
      },
    });
    proposals.start();

    const accounts = ['acme', 'globex', 'initech', 'umbrella'];
    const one = async (i: number): Promise<number> => {
      const t0 = performance.now();
      let resolveDone!: (p: Proposal) => void;
      const done = new Promise<Proposal>((r) => (resolveDone = r));
      const { proposal } = await proposals.create('bench-twin', {
        action: 'crm.discount.update',
        args: {
          account: accounts[Math.abs(i) % accounts.length],
          discountPct: Math.abs(i) % 20,
          amount: `${(Math.abs(i) % 900) + 1}.00`,
          currency: 'EUR',
        },
        rationale: 'bench',
        idempotencyKey: `bench-${i}`,
      });
      if (proposal.status !== 'approved' && proposal.status !== 'executed') throw new Error(`bench action ${i} was ${proposal.status}, not approved`);
      const early = proposal.status === 'executed' ? proposal : settled.get(proposal.id);
      let final: Proposal;
      if (early) final = early;
      else {
        waiting.set(proposal.id, resolveDone);
        final = await done;
      }
      waiting.delete(proposal.id);
      settled.delete(proposal.id);
      if (final.status !== 'executed') throw new Error(`bench action ${i} ended ${final.status}: ${final.error}`);
      return performance.now() - t0;
    };

    // Warm-up, then the measured run.
    for (let i = 0; i < Math.min(20, o.actions); i++) await one(-1 - i);
    const latencies: number[] = [];
    const before = proposals.inlineStats();
    let next = 0;
    const t = performance.now();
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        while (next < o.actions) latencies.push(await one(next++));
      }),
    );
    const seconds = (performance.now() - t) / 1000;
    const after = proposals.inlineStats();
    await proposals.stop();
    policy.stop();
    await journal.stop();
    latencies.sort((a, b) => a - b);
    const pct = (q: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]! * 100) / 100;
    return {
      actions_per_s: Math.round(o.actions / seconds),
      p50_ms: pct(0.5),
      p99_ms: pct(0.99),
      database: db.kind,
      actions: o.actions,
      concurrency: o.concurrency,
      requests_per_transaction: Math.round(((after.requests - before.requests) / Math.max(1, after.batches - before.batches)) * 10) / 10,
    };
  } finally {
    await scratch.dispose();
  }
}
