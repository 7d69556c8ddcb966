/**
 * `regent bench mcp`: execute-mode calls against the sandbox connector through /mcp (the v2 SDK
 * client, 2026-07-28), and the same action requests through POST /v1/proposals, in one run on
 * one server, in alternating phases so that the machine's noise falls on both. Each call is a new
 * proposal (distinct arguments), decided, executed and journaled; latency is from the call to its
 * answer (for execute mode: the executed outcome).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { openRegent } from '../app';
import { loadConfig } from '../config/config';
import { createHttpApp, httpDepsOf } from '../http/app';
import { listen } from '../http/server';
import type { Logger } from '../log/logger';

export interface McpBenchResult {
  calls_per_s: number;
  p50_ms: number;
  p99_ms: number;
  /** MCP's p50 less the REST p50 measured in the same run. */
  overhead_p50_ms: number;
  rest_calls_per_s: number;
  rest_p50_ms: number;
  rest_p99_ms: number;
  /** How much lower MCP's throughput is than REST's, in percent (negative: higher). */
  throughput_overhead_pct: number;
  calls: number;
  concurrency: number;
  database: 'embedded' | 'postgres';
}

const AUTHORITY = `kind: Authority
id: bench-mcp
version: 1
delegator: user:bench-exec
delegate: twin:bench-mcp
parent: null
valid: { from: 2020-01-01T00:00:00Z, until: 2100-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: crm.note.create
    outcome: execute
`;

const CONNECTOR = `kind: Connector
id: sandbox
type: sandbox
operations:
  - action: crm.note.create
`;

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

export async function benchMcp(o: { calls: number; concurrency: number; log: Logger }): Promise<McpBenchResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regent-bench-mcp-'));
  const policies = path.join(dir, 'policies');
  fs.mkdirSync(path.join(policies, 'authorities'), { recursive: true });
  fs.mkdirSync(path.join(policies, 'connectors'), { recursive: true });
  fs.writeFileSync(path.join(policies, 'authorities', 'bench-mcp.yaml'), AUTHORITY);
  fs.writeFileSync(path.join(policies, 'connectors', 'sandbox.yaml'), CONNECTOR);
  const config = loadConfig({
    REGENT_DATA_DIR: path.join(dir, 'data'),
    REGENT_POLICIES_DIR: policies,
    REGENT_RATE_LIMIT_PER_MINUTE: '0',
    REGENT_CHECKPOINT_INTERVAL_MS: '60000',
  });
  const regent = await openRegent(config, o.log, { command: 'bench mcp', policies: 'load' });
  const server = await listen(createHttpApp(httpDepsOf(regent)), '127.0.0.1', 0, o.log);
  regent.proposals!.start();
  const clients: Client[] = [];
  try {
    await regent.people.addUser({ id: 'bench-exec', name: 'Bench', roles: ['executive'] }, 'system');
    const { apiKey } = await regent.twins.create({ id: 'bench-mcp', owner: 'user:bench-exec', authority: 'bench-mcp', mode: 'execute' }, 'user:bench-exec');
    const url = server.url;
    for (let i = 0; i < o.concurrency; i++) {
      const c = new Client({ name: 'regent-bench', version: '1' }, { versionNegotiation: { mode: 'auto' } });
      await c.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${apiKey}` } } }));
      clients.push(c);
    }
    let seq = 0;
    const viaMcp = async (worker: number) => {
      const r = (await clients[worker]!.callTool({ name: 'crm_note_create', arguments: { account: 'acme', text: `mcp ${seq++}` } })) as { structuredContent?: { status?: string } };
      if (r.structuredContent?.status !== 'executed') throw new Error(`an MCP call answered ${JSON.stringify(r).slice(0, 300)}`);
    };
    const viaRest = async () => {
      const n = seq++;
      const res = await fetch(`${url}/v1/proposals`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ action: 'crm.note.create', args: { account: 'acme', text: `rest ${n}` }, rationale: 'bench', idempotencyKey: `rest-${n}` }),
      });
      const body = (await res.json()) as { status?: string };
      if (res.status !== 201 || body.status !== 'executed') throw new Error(`POST /v1/proposals answered ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
    };
    async function phase(n: number, one: (worker: number) => Promise<void>): Promise<{ ms: number[]; wallMs: number }> {
      const ms: number[] = [];
      let left = n;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: o.concurrency }, async (_, worker) => {
          while (left > 0) {
            left--;
            const t = performance.now();
            await one(worker);
            ms.push(performance.now() - t);
          }
        }),
      );
      return { ms, wallMs: performance.now() - started };
    }
    // Warm-up of both paths, then alternating halves.
    await phase(Math.min(200, o.calls), viaMcp);
    await phase(Math.min(200, o.calls), () => viaRest());
    const mcp: number[] = [];
    const rest: number[] = [];
    let mcpWall = 0;
    let restWall = 0;
    for (let round = 0; round < 4; round++) {
      const size = Math.ceil(o.calls / 4);
      const r = await phase(size, () => viaRest());
      rest.push(...r.ms);
      restWall += r.wallMs;
      const m = await phase(size, viaMcp);
      mcp.push(...m.ms);
      mcpWall += m.wallMs;
    }
    mcp.sort((a, b) => a - b);
    rest.sort((a, b) => a - b);
    const mcpRate = mcp.length / (mcpWall / 1000);
    const restRate = rest.length / (restWall / 1000);
    return {
      calls_per_s: round(mcpRate, 1),
      p50_ms: round(quantile(mcp, 0.5)),
      p99_ms: round(quantile(mcp, 0.99)),
      overhead_p50_ms: round(quantile(mcp, 0.5) - quantile(rest, 0.5)),
      rest_calls_per_s: round(restRate, 1),
      rest_p50_ms: round(quantile(rest, 0.5)),
      rest_p99_ms: round(quantile(rest, 0.99)),
      throughput_overhead_pct: round((1 - mcpRate / restRate) * 100, 1),
      calls: mcp.length,
      concurrency: o.concurrency,
      database: regent.db.kind,
    };
  } finally {
    for (const c of clients) await c.close().catch(() => undefined);
    await regent.close({ server, graceMs: 1000 });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
