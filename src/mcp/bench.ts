/**
 * `regent bench mcp`: execute-mode calls against the sandbox connector through /mcp (the v2 SDK
 * client, 2026-07-28), and the same action requests through POST /v1/proposals, in one run on
 * one server, in alternating phases so that the machine's noise falls on both. Each call is a new
 * proposal (distinct arguments), decided, executed and journaled; latency is from the call to its
 * answer (for execute mode: the executed outcome). The callers run in a worker thread.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { openRegent } from '../app';
import { loadConfig } from '../config/config';
import { createHttpApp, httpDepsOf } from '../http/app';
import { listen } from '../http/server';
import type { Logger } from '../log/logger';

export interface McpBenchResult {
  /** Calls per second through /mcp with `concurrency` in flight. */
  calls_per_s: number;
  /** Latency of one call through /mcp with nothing else in flight (no queueing). */
  p50_ms: number;
  p99_ms: number;
  /** MCP's p50 less the REST p50, both one call at a time, measured in the same run. */
  overhead_p50_ms: number;
  rest_calls_per_s: number;
  rest_p50_ms: number;
  rest_p99_ms: number;
  /** How much lower MCP's throughput is than REST's, in percent (negative: higher). */
  throughput_overhead_pct: number;
  /** p50 with `concurrency` in flight, MCP and REST (queueing included). */
  loaded_p50_ms: number;
  rest_loaded_p50_ms: number;
  /** The server thread's busy time per call under load (event-loop utilization x wall time / calls), MCP and REST. */
  server_ms_per_call: number;
  rest_server_ms_per_call: number;
  calls: number;
  concurrency: number;
  database: 'embedded' | 'postgres';
}

/**
 * The load generator, in a worker thread so that the clients' own work (the MCP SDK client,
 * fetch) does not run on the server's thread: callers are other processes in real use, and the
 * figures are the server's. Plain JavaScript, loaded with `eval`, so it runs the same from the
 * build and under the test runner.
 */
const LOAD_GENERATOR = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const { Client, StreamableHTTPClientTransport } = require(workerData.clientModule);
const { url, apiKey } = workerData;
const clients = [];
let seq = 0;
async function viaMcp(worker) {
  const r = await clients[worker].callTool({ name: 'crm_note_create', arguments: { account: 'acme', text: 'mcp ' + seq++ } });
  if (!r.structuredContent || r.structuredContent.status !== 'executed') throw new Error('an MCP call answered ' + JSON.stringify(r).slice(0, 300));
}
async function viaRest() {
  const n = seq++;
  const res = await fetch(url + '/v1/proposals', {
    method: 'POST',
    headers: { authorization: 'Bearer ' + apiKey, 'content-type': 'application/json' },
    body: JSON.stringify({ action: 'crm.note.create', args: { account: 'acme', text: 'rest ' + n }, rationale: 'bench', idempotencyKey: 'rest-' + n }),
  });
  const body = await res.json();
  if (res.status !== 201 || body.status !== 'executed') throw new Error('POST /v1/proposals answered ' + res.status + ' ' + JSON.stringify(body).slice(0, 300));
}
async function phase(kind, n, concurrency) {
  while (kind === 'mcp' && clients.length < concurrency) {
    const c = new Client({ name: 'regent-bench', version: '1' }, { versionNegotiation: { mode: 'auto' } });
    await c.connect(new StreamableHTTPClientTransport(new URL(url + '/mcp'), { requestInit: { headers: { Authorization: 'Bearer ' + apiKey } } }));
    clients.push(c);
  }
  const ms = [];
  let left = n;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async (_, worker) => {
    while (left > 0) {
      left--;
      const t = performance.now();
      await (kind === 'mcp' ? viaMcp(worker) : viaRest());
      ms.push(performance.now() - t);
    }
  }));
  return { ms, wallMs: performance.now() - started };
}
parentPort.on('message', async (m) => {
  try {
    if (m.type === 'phase') parentPort.postMessage({ type: 'done', ...(await phase(m.kind, m.n, m.concurrency)) });
    else if (m.type === 'close') {
      await gen?.close();
      parentPort.postMessage({ type: 'closed' });
    }
  } catch (err) {
    parentPort.postMessage({ type: 'error', message: String(err && err.stack || err) });
  }
});
`;

type Phase = { ms: number[]; wallMs: number };

export function loadGenerator(url: string, apiKey: string) {
  const worker = new Worker(LOAD_GENERATOR, { eval: true, workerData: { url, apiKey, clientModule: require.resolve('@modelcontextprotocol/client') } });
  const ask = <T>(m: Record<string, unknown>): Promise<T> =>
    new Promise((resolve, reject) => {
      const onMessage = (r: { type: string; message?: string }) => {
        worker.off('error', onError);
        if (r.type === 'error') reject(new Error(`load generator: ${r.message}`));
        else resolve(r as T);
      };
      const onError = (err: Error) => {
        worker.off('message', onMessage);
        reject(err);
      };
      worker.once('message', onMessage);
      worker.once('error', onError);
      worker.postMessage(m);
    });
  return {
    phase: (kind: 'mcp' | 'rest', n: number, concurrency: number) => ask<Phase>({ type: 'phase', kind, n, concurrency }),
    async close() {
      await ask({ type: 'close' }).catch(() => undefined);
      await worker.terminate();
    },
  };
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
  let gen: ReturnType<typeof loadGenerator> | undefined;
  try {
    await regent.people.addUser({ id: 'bench-exec', name: 'Bench', roles: ['executive'] }, 'system');
    const { apiKey } = await regent.twins.create({ id: 'bench-mcp', owner: 'user:bench-exec', authority: 'bench-mcp', mode: 'execute' }, 'user:bench-exec');
    gen = loadGenerator(server.url, apiKey);
    const c = o.concurrency;
    // Warm-up of both paths, then alternating rounds: loaded (c in flight) for throughput,
    // then one at a time for latency without queueing (at c in flight a call's latency is mostly
    // the queue ahead of it, which multiplies any per-call cost by the queue's length).
    await gen.phase('mcp', Math.min(200, o.calls), c);
    await gen.phase('rest', Math.min(200, o.calls), c);
    const loaded = { mcp: [] as number[], rest: [] as number[], mcpWall: 0, restWall: 0, mcpBusy: 0, restBusy: 0 };
    const busy = async (run: () => Promise<Phase>): Promise<Phase & { busyMs: number }> => {
      const before = performance.eventLoopUtilization();
      const r = await run();
      const elu = performance.eventLoopUtilization(before);
      return { ...r, busyMs: elu.active };
    };
    const single = { mcp: [] as number[], rest: [] as number[] };
    const rounds = 8;
    const size = Math.ceil(o.calls / rounds);
    const singleSize = Math.max(5, Math.ceil(size / 4));
    const loadedPhase = async (kind: 'mcp' | 'rest') => {
      const r = await busy(() => gen!.phase(kind, size, c));
      loaded[kind].push(...r.ms);
      if (kind === 'mcp') (loaded.mcpWall += r.wallMs), (loaded.mcpBusy += r.busyMs);
      else (loaded.restWall += r.wallMs), (loaded.restBusy += r.busyMs);
    };
    for (let round = 0; round < rounds; round++) {
      // Which path goes first alternates too: what a phase leaves behind (a checkpoint, garbage)
      // falls on both alike.
      const order: ('mcp' | 'rest')[] = round % 2 === 0 ? ['rest', 'mcp'] : ['mcp', 'rest'];
      for (const kind of order) await loadedPhase(kind);
      for (const kind of order) single[kind].push(...(await gen.phase(kind, singleSize, 1)).ms);
    }
    for (const a of [loaded.mcp, loaded.rest, single.mcp, single.rest]) a.sort((x, y) => x - y);
    const mcpRate = loaded.mcp.length / (loaded.mcpWall / 1000);
    const restRate = loaded.rest.length / (loaded.restWall / 1000);
    return {
      calls_per_s: round(mcpRate, 1),
      p50_ms: round(quantile(single.mcp, 0.5)),
      p99_ms: round(quantile(single.mcp, 0.99)),
      overhead_p50_ms: round(quantile(single.mcp, 0.5) - quantile(single.rest, 0.5)),
      rest_calls_per_s: round(restRate, 1),
      rest_p50_ms: round(quantile(single.rest, 0.5)),
      rest_p99_ms: round(quantile(single.rest, 0.99)),
      throughput_overhead_pct: round((1 - mcpRate / restRate) * 100, 1),
      loaded_p50_ms: round(quantile(loaded.mcp, 0.5)),
      rest_loaded_p50_ms: round(quantile(loaded.rest, 0.5)),
      server_ms_per_call: round(loaded.mcpBusy / loaded.mcp.length, 3),
      rest_server_ms_per_call: round(loaded.restBusy / loaded.rest.length, 3),
      calls: loaded.mcp.length,
      concurrency: c,
      database: regent.db.kind,
    };
  } finally {
    await gen?.close();
    await regent.close({ server, graceMs: 1000 });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
