/**
 * `regent bench signals`: CloudEvents published over MQTT (QoS 1) to the machine's broker, each
 * taken by a signal source, journaled as signal.received with its objective created (the shipped
 * rule for machine.failure_predicted), on a scratch database. Latency is from the publish to the
 * signal's commit; `window` messages are in flight at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import mqtt from 'mqtt';
import { openRegent } from '../app';
import { loadConfig } from '../config/config';
import { openScratchDatabase } from '../db/scratch';
import { createObjectiveStore } from '../objectives/store';
import type { Logger } from '../log/logger';
import { loadSourcesFrom } from './sources/load';
import { createSignalSources } from './sources/runner';

export interface SignalsBenchResult {
  events_per_s: number;
  p50_ms: number;
  p99_ms: number;
  database: 'embedded' | 'postgres';
  events: number;
  window: number;
  sessions: number;
  objectives: number;
}

const SHIPPED = path.resolve(__dirname, '../../../policies');

function benchPolicies(dir: string): string {
  const policies = path.join(dir, 'policies');
  for (const sub of ['authorities', 'connectors', 'playbooks', 'signals']) fs.mkdirSync(path.join(policies, sub), { recursive: true });
  const src = fs.existsSync(SHIPPED) ? SHIPPED : path.resolve(process.cwd(), 'policies');
  fs.writeFileSync(
    path.join(policies, 'authorities', 'ops-twin.yaml'),
    fs.readFileSync(path.join(src, 'authorities', 'ops-twin.yaml'), 'utf8').replace(/until: \d{4}-/, 'until: 2100-'),
  );
  fs.copyFileSync(path.join(src, 'connectors', 'sandbox.yaml'), path.join(policies, 'connectors', 'sandbox.yaml'));
  for (const f of fs.readdirSync(path.join(src, 'playbooks'))) fs.copyFileSync(path.join(src, 'playbooks', f), path.join(policies, 'playbooks', f));
  fs.copyFileSync(path.join(src, 'signals', 'failure-prediction.yaml'), path.join(policies, 'signals', 'failure-prediction.yaml'));
  return policies;
}

export async function benchSignals(o: { brokerUrl: string; postgresUrl?: string; events: number; window: number; sessions: number; log: Logger }): Promise<SignalsBenchResult> {
  const scratch = await openScratchDatabase({ postgresUrl: o.postgresUrl, poolMax: 8, command: 'regent bench signals' });
  await scratch.db.close();
  const policies = benchPolicies(scratch.dir);
  const config = loadConfig({
    REGENT_DATA_DIR: scratch.dir,
    REGENT_POLICIES_DIR: policies,
    ...(scratch.url ? { DATABASE_URL: scratch.url } : {}),
    REGENT_CHECKPOINT_INTERVAL_MS: '10000',
  });
  const regent = await openRegent(config, o.log, { command: 'regent bench signals', policies: 'load', warm: true });
  const run = randomUUID().slice(0, 8);
  const topic = `regent-bench/${run}/predictions`;
  const pub = await mqtt.connectAsync(o.brokerUrl, { protocolVersion: 5, clientId: `regent-bench-pub-${run}` });
  let sources: ReturnType<typeof createSignalSources> | undefined;
  const sessionIds = Array.from({ length: o.sessions }, (_, i) => `regent-bench-${run}-bench${o.sessions > 1 ? `-${i}` : ''}`);
  try {
    await regent.people.addUser({ id: 'olga', name: 'Olga', roles: ['executive'] }, 'system');
    await regent.twins.create({ id: 'ops-twin', owner: 'user:olga', authority: 'ops-twin', mode: 'execute' }, 'user:olga');
    const loaded = loadSourcesFrom(
      [
        {
          file: 'bench/signals/sources/bench.yaml',
          text: `kind: SignalSource\nid: bench\ntype: mqtt\nurl: ${o.brokerUrl}\nsubscribe: ${topic}\nformat: cloudevents\ngroup: regent-bench-${run}\nclientId: regent-bench-${run}\nsessionExpirySeconds: 60\nprefetch: ${o.sessions}\n`,
        },
      ],
      {},
    );
    if (!loaded.ok) throw new Error(`bench source: ${loaded.errors[0]!.message}`);
    const waiting = new Map<string, () => void>();
    const signals = regent.signals!;
    sources = createSignalSources({
      sources: loaded.sources,
      log: o.log,
      env: { REGENT_INSTANCE: 'bench' },
      signals: {
        refuseMessage: signals.refuseMessage,
        async receive(body, actor, opts) {
          const r = await signals.receive(body, actor, opts);
          waiting.get(String((body as { id: string }).id))?.();
          return r;
        },
      },
    });
    sources.start();
    const until = Date.now() + 15_000;
    while (!sources.status().every((s) => s.connected)) {
      if (Date.now() > until) throw new Error(`the bench source did not connect to ${o.brokerUrl}: ${sources.status()[0]?.error}`);
      await new Promise((r) => setTimeout(r, 50));
    }

    const one = async (i: number): Promise<number> => {
      const id = `bench-${run}-${i}`;
      const done = new Promise<void>((r) => waiting.set(id, r));
      const t0 = performance.now();
      const event = {
        specversion: '1.0',
        id,
        type: 'machine.failure_predicted',
        source: '/plant/bench',
        time: new Date().toISOString(),
        datacontenttype: 'application/json',
        data: { asset: `press-${i % 50}`, probability: 0.95, window: 'tomorrow 06:00-10:00', estimatedCost: '4800.00' },
      };
      await pub.publishAsync(topic, JSON.stringify(event), { qos: 1, properties: { contentType: 'application/cloudevents+json' } });
      await done;
      waiting.delete(id);
      return performance.now() - t0;
    };
    for (let i = 0; i < Math.min(50, o.events); i++) await one(-1 - i); // warm-up
    const latencies: number[] = [];
    let next = 0;
    const t = performance.now();
    await Promise.all(
      Array.from({ length: o.window }, async () => {
        while (next < o.events) latencies.push(await one(next++));
      }),
    );
    const seconds = (performance.now() - t) / 1000;
    // The timed events' objectives (the warm-up's ids are bench-<run>--<n>).
    const store = createObjectiveStore(regent.db.sql, regent.db.prisma);
    const objectives = (await store.countBySignalPrefix(`bench-${run}-`)) - (await store.countBySignalPrefix(`bench-${run}--`));
    latencies.sort((a, b) => a - b);
    const pct = (q: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]! * 100) / 100;
    return {
      events_per_s: Math.round(o.events / seconds),
      p50_ms: pct(0.5),
      p99_ms: pct(0.99),
      database: regent.db.kind,
      events: o.events,
      window: o.window,
      sessions: o.sessions,
      objectives,
    };
  } finally {
    await sources?.stop(1000).catch(() => undefined);
    await pub.endAsync().catch(() => undefined);
    for (const id of sessionIds) {
      const c = await mqtt.connectAsync(o.brokerUrl, { protocolVersion: 5, clientId: id, clean: true, connectTimeout: 3000 }).catch(() => undefined);
      await c?.endAsync().catch(() => undefined);
    }
    await regent.close({ graceMs: 500 }).catch(() => undefined);
    await scratch.dispose();
  }
}
