import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Config } from './config/config';
import { openDatabase, type Database } from './db/database';
import { createLiveness, type Liveness } from './db/liveness';
import { createJournalService, type JournalService } from './journal/service';
import { loadOrCreateSigner, SigningKeyError, type Signer } from './journal/keys';
import { createToolsBus, type ToolsBus } from './mcp/events';
import { createJournalStore } from './journal/store';
import type { Logger } from './log/logger';
import { createPeopleService, type PeopleService } from './people/service';
import { createPolicyService, type PolicyService } from './policy/service';
import { createPolicyStore } from './policy/store';
import { createTwinService, type TwinService } from './twins/service';
import { formatConnectorErrors, loadConnectors } from './connectors/load';
import type { ConnectorRegistry } from './connectors/types';
import { createRegistry } from './connectors/registry';
import { createProposalService, type ProposalService } from './proposals/service';
import { createProposalStore } from './proposals/store';
import { createWebhookNotifier, type WebhookNotifier } from './notify/webhooks';
import type { Planner } from './agent/types';
import type * as llmModule from './agent/llm';
import { createPlaybookCatalog } from './objectives/playbooks';
import { createObjectiveService, type ObjectiveService } from './objectives/service';
import { createRuleCatalog } from './signals/rules';
import { createSignalService, type SignalService } from './signals/service';
import { loadSources } from './signals/sources/load';
import { createSignalSources, type SignalSources } from './signals/sources/runner';
import { formatProblem } from './yaml/problems';
import type { RunningServer } from './http/server';
import { createKnowledgeService, type KnowledgeService } from './knowledge/service';
import { twinKnowledgeOf } from './knowledge/authority';

/** The composition root: opens storage and wires the capabilities together, nothing more. */
export interface Regent {
  config: Config;
  log: Logger;
  db: Database;
  journal: JournalService;
  /** Present when opened with `policies` (the server; policy commands). */
  policy: PolicyService | undefined;
  /** Users and the API keys of users and twins. */
  people: PeopleService;
  /** Twins, their modes and the kill switches. */
  twins: TwinService;
  /** The governed action pipeline; present with policies (the server). */
  proposals: ProposalService | undefined;
  connectors: ConnectorRegistry | undefined;
  /** Signed webhook notifications, when REGENT_WEBHOOK_URL is set. */
  notifier: WebhookNotifier | undefined;
  /** Objectives, their durable runs (start/stop the runner with the server) and playbooks; present with policies. */
  objectives: ObjectiveService | undefined;
  /** Signals from other systems and the standing rules that turn them into objectives; present with policies. */
  signals: SignalService | undefined;
  /** The governed decision corpus: documents, passages, search, retention (start its purge timer with the server). */
  knowledge: KnowledgeService;
  /** Broker subscriptions (policies/signals/sources) feeding `signals`; present when opened with `signalSources` (the server). Started by the caller. */
  signalSources: SignalSources | undefined;
  /** Signs checkpoints; derives the secret that signs MCP session ids. */
  signer: Signer;
  /** "What a twin is offered may have changed" for MCP clients, across processes; present with connectors. */
  mcpBus: ToolsBus | undefined;
  /**
   * Stops everything in order (see stopInOrder), the HTTP server first when given; flushes the
   * journal (final checkpoint) and closes the database.
   */
  close(opts?: StopOptions): Promise<void>;
}

export interface StopOptions {
  /** The server of this Regent's API: it stops taking requests before anything else stops. */
  server?: Pick<RunningServer, 'close'>;
  /** How long in-flight requests may take to finish (default: the shutdown timeout less 2 s, at least 0.5 s). */
  graceMs?: number;
  /** Journals `system.stopped` with this signal once the runner and the executor have stopped (regent serve). */
  signal?: string;
}

/** What a Regent runs, as far as it was made: a part not made (yet) is left out. */
interface Running {
  server?: Pick<RunningServer, 'close'>;
  policy?: PolicyService;
  signalSources?: SignalSources;
  objectives?: ObjectiveService;
  proposals?: ProposalService;
  notifier?: WebhookNotifier;
  liveness?: Liveness;
  connectors?: ConnectorRegistry;
  mcpBus?: ToolsBus;
  knowledge?: KnowledgeService;
  journal: JournalService;
  db: Database;
}

/**
 * The stop order, written here only: the HTTP server (no new requests; in-flight ones finish
 * within graceMs), the policy watcher, the signal sources (no new messages; those in hand are
 * journaled and acknowledged, or left to the broker), the objective runner (interrupted runs are released and
 * resume on the next start, or in another process), the executor, `system.stopped` when a signal
 * is given, the webhook notifier, this process's claim holders, the connectors, the journal (final
 * checkpoint) and the database, which is closed even when the journal fails to stop.
 */
async function stopInOrder(r: Running, opts: { graceMs: number; signal?: string; log: Logger }): Promise<void> {
  await r.server?.close(opts.graceMs);
  r.policy?.stop();
  await r.signalSources?.stop(Math.min(opts.graceMs, 5000));
  await r.objectives?.stop();
  await r.proposals?.stop();
  if (opts.signal)
    await r.journal
      .append({ kind: 'system.stopped', actor: 'system', data: { signal: opts.signal } })
      .catch((err) => opts.log.error('could not journal the shutdown', { error: err }));
  await r.notifier?.stop();
  await r.knowledge?.stop().catch(() => undefined);
  await r.liveness?.close().catch(() => undefined);
  await r.mcpBus?.close().catch(() => undefined);
  await r.connectors?.close().catch(() => undefined);
  try {
    await r.journal.stop();
  } finally {
    await r.db.close();
  }
}

/**
 * The language-model planner for free-text objectives, when REGENT_MODEL is configured. Loaded
 * only then, so commands and servers without a model never load LangChain.
 */
function languageModelPlanner(config: Config, log: Logger): Planner | undefined {
  if (!config.llm) return undefined;
  const { createLlmPlanner } = require('./agent/llm') as typeof llmModule;
  const planner = createLlmPlanner({ baseUrl: config.llm.baseUrl, apiKey: config.llm.apiKey, model: config.llm.model, log });
  log.info('language model configured for free-text objectives', { model: config.llm.model, baseUrl: config.llm.baseUrl ?? 'https://api.openai.com/v1' });
  return planner;
}

export async function openRegent(
  config: Config,
  log: Logger,
  opts: {
    command: string;
    migrate?: boolean;
    policies?: 'load' | 'watch';
    /** Plans free-text objectives instead of the configured model (tests, scripted runs). */
    llmPlanner?: Planner;
    /** Objective runner id (default: unique per process). */
    runnerId?: string;
    /**
     * false: no connector is loaded (nor are their secrets needed), for tools that only settle
     * records, such as reconciling an action in doubt; nothing can execute in such a process.
     */
    connectors?: boolean;
    /**
     * Warm Prisma Client up at open (its first query costs about half a second): the server does,
     * so no one waits on a first click; a one-shot command would only pay for it.
     */
    warm?: boolean;
    /** Load the signal sources (policies/signals/sources); a broken file stops start-up. Connected by `signalSources.start()`. */
    signalSources?: boolean;
  },
): Promise<Regent> {
  const signer = loadOrCreateSigner({ keyText: config.signingKey, dataDir: config.dataDir, origin: config.journalOrigin });
  if (signer.created) log.info('created the journal signing key', { file: signer.file, vkey: signer.vkey });
  const db = await openDatabase(config.database, config.dataDir, { migrate: opts.migrate ?? true, command: opts.command, warm: opts.warm ?? false });
  if (db.recovered) log.warn('recovered the embedded database from a previous run that did not shut down cleanly', { dir: db.location });
  const journal = createJournalService({
    store: createJournalStore(db.sql),
    signer,
    log,
    checkpointEvery: config.checkpointEvery,
    checkpointIntervalMs: config.checkpointIntervalMs,
  });
  // Undoes a start that failed part way; the error that stopped it is the one thrown.
  const abandon = (made: Omit<Running, 'journal' | 'db'>) => stopInOrder({ ...made, journal, db }, { graceMs: 0, log }).catch(() => undefined);
  let policy: PolicyService | undefined;
  try {
    await journal.start();
    if (opts.policies) {
      policy = createPolicyService({ dir: config.policiesDir, store: createPolicyStore(db.sql, db.prisma), journal, log });
      // Several processes share a PostgreSQL database: each follows the version in force there.
      const loaded = await policy.start({ watch: opts.policies === 'watch', syncMs: db.kind === 'postgres' ? 2000 : undefined });
      if (!loaded.ok) log.warn('policy files refused at start', { errors: loaded.errors.length, inForce: loaded.inForce });
    }
  } catch (err) {
    await abandon({ policy });
    // A key made just now for a journal that another key signs has signed nothing: leave no
    // stray key behind for the next start to pick up and be refused with again.
    if (err instanceof SigningKeyError && signer.created && signer.file) {
      for (const f of [signer.file, path.join(path.dirname(signer.file), 'journal.vkey')]) fs.rmSync(f, { force: true });
    }
    throw err;
  }
  const people = createPeopleService({ sql: db.sql, prisma: db.prisma, journal, log });
  const twins = createTwinService({ sql: db.sql, prisma: db.prisma, journal, people, policy, log });
  let connectors: ConnectorRegistry | undefined;
  let proposals: ProposalService | undefined;
  let notifier: WebhookNotifier | undefined;
  let objectives: ObjectiveService | undefined;
  let signals: SignalService | undefined;
  let signalSources: SignalSources | undefined;
  let liveness: Liveness | undefined;
  let mcpBus: ToolsBus | undefined;
  if (policy) {
    // Connectors hold credentials from the environment; a broken connector file stops start-up
    // rather than leaving actions without the connector their authority expects.
    const loaded =
      opts.connectors === false ? ({ ok: true, registry: createRegistry([]) } as const) : loadConnectors(config.policiesDir, process.env, { sql: db.sql, journal, log });
    if (!loaded.ok) {
      await abandon({ policy });
      throw new Error(`connectors refused: ${formatConnectorErrors(loaded.errors).split('\n')[0]}`);
    }
    const registry = loaded.registry;
    connectors = registry;
    // MCP servers are started now (bounded): one that cannot start leaves its operations
    // unavailable with the reason (log, /readyz, GET /v1/connectors) and is retried with backoff.
    if (opts.connectors !== false) await registry.start();
    // Every claimer of this process registers, so that others take its work over the moment it
    // dies rather than when its lease runs out. A process without connectors (a settling tool)
    // claims nothing, so it holds no liveness lock either.
    const tag = `${process.pid}-${randomUUID().slice(0, 8)}`;
    const holders = { executor: `executor-${tag}`, runner: opts.runnerId ?? `runner-${tag}`, webhooks: `webhooks-${tag}` };
    if (opts.connectors !== false) {
      try {
        liveness = await createLiveness(db, log);
        for (const id of Object.values(holders)) await liveness.register(id);
      } catch (err) {
        await abandon({ policy, liveness, connectors: registry });
        throw new Error(`cannot register this process's claim holders: ${(err as Error).message}`);
      }
    }
    if (opts.connectors !== false) {
      // What MCP clients are offered follows policy, modes and kill switches at once.
      mcpBus = await createToolsBus(db, log);
      const bus = mcpBus;
      policy.onChange(() => bus.publish({ kind: 'tools_list_changed' }));
      twins.onChange((c) => bus.toolsChanged(c.what));
    }
    const alive = liveness ? liveness.alive : () => false;
    const webhooks = config.webhook && createWebhookNotifier(db.sql, log, { ...config.webhook, holder: holders.webhooks, alive });
    notifier = webhooks || undefined;
    proposals = createProposalService({
      store: createProposalStore(db.sql),
      journal,
      policy,
      connectors: () => registry,
      twins,
      log,
      executorId: holders.executor,
      alive,
      options: { leaseMs: config.executionLeaseMs, lookupIntervalMs: config.inDoubtLookupMs },
      onPending: webhooks
        ? (p, why) =>
            void webhooks
              .notify(
                why === 'in_doubt' ? 'proposal.in_doubt' : why === 'pending' ? 'proposal.pending_approval' : 'proposal.escalated',
                why === 'in_doubt'
                  ? {
                      proposal: p.id,
                      twin: p.twin,
                      action: p.action,
                      connector: p.inDoubt?.connector ?? null,
                      checkIn: p.inDoubt?.checkIn ?? null,
                      sentAt: p.inDoubt?.sentAt ?? null,
                      since: p.inDoubt?.since ?? null,
                      rationale: p.rationale,
                    }
                  : {
                      proposal: p.id,
                      twin: p.twin,
                      action: p.action,
                      approvers: p.approval?.approvers ?? [],
                      escalateTo: p.approval?.escalated ? p.approval.escalateTo : [],
                      quorum: p.approval?.quorum ?? null,
                      expiresAt: p.expiresAt,
                      rationale: p.rationale,
                    },
              )
              .catch((err) => log.error('could not queue a webhook', { error: err, proposal: p.id }))
        : undefined,
    });
    // Playbooks and signal rules: a broken file is logged with file:line and left out (the last
    // good set stays in force while the server runs); actions still go through policy either way.
    const playbooks = createPlaybookCatalog(config.policiesDir, log);
    const rules = createRuleCatalog(config.policiesDir, log, () => new Map(playbooks.list().map((p) => [p.id, p])));
    playbooks.load();
    rules.load();
    objectives = createObjectiveService({
      sql: db.sql,
      prisma: db.prisma,
      journal,
      proposals,
      twins,
      policy,
      connectors: () => registry,
      playbooks,
      llm: opts.llmPlanner ?? languageModelPlanner(config, log),
      defaultStepBudget: config.agent.stepBudget,
      log,
      runnerId: holders.runner,
      runner: { leaseMs: config.executionLeaseMs, ratePerMinute: config.agent.ratePerMinute },
    });
    const pol = policy;
    signals = createSignalService({ sql: db.sql, journal, objectives, rules, log, policyVersion: () => pol.version() });
    if (opts.signalSources) {
      const loaded = loadSources(config.policiesDir, process.env);
      if (!loaded.ok) {
        await abandon({ policy, liveness, connectors: registry, mcpBus });
        for (const e of loaded.errors) log.error('signal source refused', { problem: formatProblem(e) });
        throw new Error(`signal sources refused: ${formatProblem(loaded.errors[0]!)}${loaded.errors.length > 1 ? ` (and ${loaded.errors.length - 1} more in the log)` : ''}`);
      }
      if (loaded.sources.length) signalSources = createSignalSources({ sources: loaded.sources, signals, log });
    }
  }
  const knowledge = createKnowledgeService({
    sql: db.sql,
    journal,
    log,
    maxDocumentBytes: config.knowledge.maxDocumentBytes,
    purgeIntervalMs: config.knowledge.purgeIntervalMs,
    twinKnowledge: twinKnowledgeOf(policy, twins),
    policyVersion: () => policy?.version() ?? null,
  });
  return {
    config,
    log,
    db,
    journal,
    policy,
    people,
    twins,
    proposals,
    connectors,
    notifier,
    objectives,
    signals,
    knowledge,
    signalSources,
    signer,
    mcpBus,
    close: (o: StopOptions = {}) =>
      stopInOrder(
        { server: o.server, policy, signalSources, objectives, proposals, notifier, knowledge, liveness, connectors, mcpBus, journal, db },
        { graceMs: o.graceMs ?? Math.max(config.shutdownTimeoutMs - 2000, 500), signal: o.signal, log },
      ),
  };
}
