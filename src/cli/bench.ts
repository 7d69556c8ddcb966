import type { Command } from 'commander';
import type { Config } from '../config/config';
import { action, positiveInt, printJson, setup } from './io';
import { registerPolicyBench } from './policy';

// Loaded on first use, so `regent --help` and light commands start fast.
import type * as journalBenchModule from '../journal/bench';
const journalBench = (): typeof journalBenchModule => require('../journal/bench');
import type * as pipelineBenchModule from '../proposals/bench';
const pipelineBench = (): typeof pipelineBenchModule => require('../proposals/bench');
import type * as mcpBenchModule from '../mcp/bench';
const mcpBench = (): typeof mcpBenchModule => require('../mcp/bench');
import type * as scaleBenchModule from '../scale/bench';
import type * as knowledgeBenchModule from '../knowledge/bench';
const knowledgeBench = (): typeof knowledgeBenchModule => require('../knowledge/bench');
import type * as signalsBenchModule from '../signals/bench';
const signalsBench = (): typeof signalsBenchModule => require('../signals/bench');
const scaleBench = (): typeof scaleBenchModule => require('../scale/bench');

/** `--postgres` alone means DATABASE_URL's server, or the local one; with a URL, that server. */
function benchPostgresUrl(flag: string | true | undefined, config: Config): string | undefined {
  if (flag !== true) return flag;
  return config.database.kind === 'postgres' ? config.database.url : 'postgresql://postgres@127.0.0.1:5432/postgres';
}

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('benchmarks (each prints one JSON object with --json)');

  registerPolicyBench(bench);

  bench
    .command('mcp')
    .description('execute-mode calls against the sandbox through /mcp (v2 SDK client, 2026-07-28) and the same through POST /v1/proposals, alternating, on an embedded scratch database')
    .option('--calls <n>', 'calls through each path', positiveInt('--calls'), 2000)
    .option('--concurrency <n>', 'calls in flight', positiveInt('--concurrency'), 16)
    .option('--json', 'print one JSON object')
    .action(
      action(async (o: { calls: number; concurrency: number; json?: boolean }) => {
        const { log } = setup('tool');
        const r = await mcpBench().benchMcp({ calls: o.calls, concurrency: o.concurrency, log });
        if (o.json) printJson(r);
        else
          console.log(
            `MCP: ${r.calls_per_s} calls/s, p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms; POST /v1/proposals: ${r.rest_calls_per_s}/s, p50 ${r.rest_p50_ms} ms; MCP adds ${r.overhead_p50_ms} ms to the p50 and ${r.throughput_overhead_pct}% to throughput (${r.calls} calls each, ${r.concurrency} in flight)`,
          );
      }),
    );

  bench
    .command('pipeline')
    .description('governed actions end to end in execute mode against the sandbox connector, on a scratch database')
    .option('--postgres [url]', 'bench on a PostgreSQL server (default: DATABASE_URL) in a scratch database it creates and drops')
    .option('--actions <n>', 'governed actions to run', positiveInt('--actions'), 2000)
    .option('--concurrency <n>', 'requests in flight', positiveInt('--concurrency'), 16)
    .option('--processes <n>', 'over HTTP against this many `regent serve` processes on one scratch PostgreSQL database (needs --postgres)', positiveInt('--processes'))
    .option('--kill-one', 'with --processes: SIGKILL one process half way and start it again')
    .option('--duration <s>', 'with --processes: seconds of load', positiveInt('--duration'), 10)
    .option('--connections <n>', 'with --processes: HTTP connections in all', positiveInt('--connections'), 24)
    .option('--json', 'print one JSON object')
    .action(
      action(
        async (o: {
          postgres?: string | true;
          actions: number;
          concurrency: number;
          processes?: number;
          killOne?: boolean;
          duration: number;
          connections: number;
          json?: boolean;
        }) => {
          const { config, log } = setup('tool');
          const postgresUrl = benchPostgresUrl(o.postgres, config);
          if (o.processes !== undefined || o.killOne) {
            if (!postgresUrl) throw new Error('--processes needs --postgres: several processes share a PostgreSQL server, never the embedded database');
            const r = await scaleBench().benchScale({
              postgresUrl,
              processes: o.processes ?? 3,
              killOne: !!o.killOne,
              seconds: o.duration,
              connections: o.connections,
              log,
            });
            if (o.json) printJson(r);
            else
              process.stdout.write(
                `pipeline over HTTP on ${r.processes} processes${r.killed ? ' (one killed half way)' : ''}: ${r.actions_per_s} acknowledged actions/s, ` +
                  `p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms; ${r.acknowledged} acknowledged, ${r.executed} executed, journal ${r.journal_contiguous ? 'contiguous' : 'NOT contiguous'}\n`,
              );
            return;
          }
          const r = await pipelineBench().benchPipeline({ postgresUrl, actions: o.actions, concurrency: o.concurrency, log });
          if (o.json) printJson(r);
          else
            process.stdout.write(
              `pipeline on ${r.database}: ${r.actions_per_s} actions/s, p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms (${r.actions} actions, ${r.concurrency} in flight, ${r.requests_per_transaction} per transaction)\n`,
            );
        },
      ),
    );

  bench
    .command('knowledge')
    .description('ingest pages/s and full-text search latency over a generated corpus, on a scratch database')
    .option('--postgres [url]', 'bench on a PostgreSQL server (default: DATABASE_URL) in a scratch database it creates and drops')
    .option('--passages <n>', 'passages in the generated corpus', positiveInt('--passages'), 10_000)
    .option('--searches <n>', 'searches timed, one at a time', positiveInt('--searches'), 1000)
    .option('--json', 'print one JSON object')
    .action(
      action(async (o: { postgres?: string | true; passages: number; searches: number; json?: boolean }) => {
        const { config, log } = setup('tool');
        const r = await knowledgeBench().benchKnowledge({ postgresUrl: benchPostgresUrl(o.postgres, config), passages: o.passages, searches: o.searches, log });
        if (o.json) printJson(r);
        else
          process.stdout.write(
            `knowledge on ${r.database}: ingest ${r.ingest_pages_per_s} pages/s (${r.pages} pages, ${r.documents} documents, ${r.passages} passages); ` +
              `search p50 ${r.search_p50_ms} ms, p99 ${r.search_p99_ms} ms (${r.searches} searches, ${r.hits_per_search} hits each)\n`,
          );
      }),
    );

  bench
    .command('signals')
    .description('CloudEvents published over MQTT (QoS 1) to a journaled signal with its objective created, through a signal source, on a scratch database')
    .option('--broker <url>', 'the MQTT broker', 'mqtt://127.0.0.1:1883')
    .option('--postgres [url]', 'bench on a PostgreSQL server (default: DATABASE_URL) in a scratch database it creates and drops')
    .option('--events <n>', 'events to publish', positiveInt('--events'), 3000)
    .option('--window <n>', 'events in flight (published, not yet journaled)', positiveInt('--window'), 8)
    .option('--sessions <n>', 'MQTT sessions in the shared subscription (the source\'s prefetch)', positiveInt('--sessions'), 4)
    .option('--json', 'print one JSON object')
    .action(
      action(async (o: { broker: string; postgres?: string | true; events: number; window: number; sessions: number; json?: boolean }) => {
        const { config, log } = setup('tool');
        const r = await signalsBench().benchSignals({
          brokerUrl: o.broker,
          postgresUrl: benchPostgresUrl(o.postgres, config),
          events: o.events,
          window: o.window,
          sessions: o.sessions,
          log,
        });
        if (o.json) printJson(r);
        else
          process.stdout.write(
            `signals over MQTT on ${r.database}: ${r.events_per_s} events/s, p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms (${r.events} events, ${r.window} in flight, ${r.sessions} sessions, ${r.objectives} objectives)\n`,
          );
      }),
    );

  bench
    .command('journal')
    .description('journal appends/s (concurrent single appends, batched) and offline verify entries/s, on a scratch database')
    .option('--postgres [url]', 'bench on a PostgreSQL server (default: DATABASE_URL) in a scratch database it creates and drops')
    .option('--appends <n>', 'single-entry appends', positiveInt('--appends'), 5000)
    .option('--concurrency <n>', 'concurrent appenders', positiveInt('--concurrency'), 50)
    .option('--entries <n>', 'entries written with batched appends', positiveInt('--entries'), 100_000)
    .option('--batch <n>', 'entries per batched append', positiveInt('--batch'), 1000)
    .option('--json', 'print one JSON object')
    .action(
      action(
        async (o: { postgres?: string | true; appends: number; concurrency: number; entries: number; batch: number; json?: boolean }) => {
          const { config, log } = setup('tool');
          const postgresUrl = benchPostgresUrl(o.postgres, config);
          const r = await journalBench().benchJournal({
            postgresUrl,
            appends: o.appends,
            concurrency: o.concurrency,
            entries: o.entries,
            batch: Math.min(o.batch, 2000),
            log,
          });
          if (o.json) printJson(r);
          else
            process.stdout.write(
              `journal on ${r.database}: ${r.appends_per_s} appends/s (${r.concurrency} concurrent), ` +
                `${r.batched_appends_per_s} batched appends/s (batches of ${r.batch}), ` +
                `${r.sequential_appends_per_s} sequential appends/s, verify ${r.verify_entries_per_s} entries/s over ${r.entries}\n`,
            );
        },
      ),
    );
}
