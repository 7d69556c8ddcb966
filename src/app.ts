import type { Config } from './config/config';
import { openDatabase, type Database } from './db/database';
import { createJournalService, type JournalService } from './journal/service';
import { loadOrCreateSigner } from './journal/keys';
import { createJournalStore } from './journal/store';
import type { Logger } from './log/logger';
import { createPeopleService, type PeopleService } from './people/service';
import { createPolicyService, type PolicyService } from './policy/service';
import { createPolicyStore } from './policy/store';
import { createTwinService, type TwinService } from './twins/service';
import { formatConnectorErrors, loadConnectors } from './connectors/load';
import type { ConnectorRegistry } from './connectors/types';
import { createProposalService, type ProposalService } from './proposals/service';
import { createProposalStore } from './proposals/store';
import { createWebhookNotifier, type WebhookNotifier } from './notify/webhooks';

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
  /** Flushes the journal (final checkpoint) and closes the database. */
  close(): Promise<void>;
}

export async function openRegent(config: Config, log: Logger, opts: { command: string; migrate?: boolean; policies?: 'load' | 'watch' }): Promise<Regent> {
  const signer = loadOrCreateSigner({ keyText: config.signingKey, dataDir: config.dataDir, origin: config.journalOrigin });
  if (signer.created) log.info('created the journal signing key', { file: signer.file, vkey: signer.vkey });
  const db = await openDatabase(config.database, config.dataDir, { migrate: opts.migrate ?? true, command: opts.command });
  if (db.recovered) log.warn('recovered the embedded database from a previous run that did not shut down cleanly', { dir: db.location });
  const journal = createJournalService({
    store: createJournalStore(db.sql),
    signer,
    log,
    checkpointEvery: config.checkpointEvery,
    checkpointIntervalMs: config.checkpointIntervalMs,
  });
  let policy: PolicyService | undefined;
  try {
    await journal.start();
    if (opts.policies) {
      policy = createPolicyService({ dir: config.policiesDir, store: createPolicyStore(db.sql), journal, log });
      const loaded = await policy.start({ watch: opts.policies === 'watch' });
      if (!loaded.ok) log.warn('policy files refused at start', { errors: loaded.errors.length, inForce: loaded.inForce });
    }
  } catch (err) {
    policy?.stop();
    await journal.stop().catch(() => undefined);
    await db.close();
    throw err;
  }
  const people = createPeopleService({ sql: db.sql, journal, log });
  const twins = createTwinService({ sql: db.sql, journal, people, policy, log });
  let connectors: ConnectorRegistry | undefined;
  let proposals: ProposalService | undefined;
  let notifier: WebhookNotifier | undefined;
  if (policy) {
    // Connectors hold credentials from the environment; a broken connector file stops start-up
    // rather than leaving actions without the connector their authority expects.
    const loaded = loadConnectors(config.policiesDir, process.env, { sql: db.sql });
    if (!loaded.ok) {
      policy.stop();
      await journal.stop().catch(() => undefined);
      await db.close();
      throw new Error(`connectors refused: ${formatConnectorErrors(loaded.errors).split('\n')[0]}`);
    }
    const registry = loaded.registry;
    connectors = registry;
    const webhooks = config.webhook && createWebhookNotifier(db.sql, log, config.webhook);
    notifier = webhooks || undefined;
    proposals = createProposalService({
      store: createProposalStore(db.sql),
      journal,
      policy,
      connectors: () => registry,
      twins,
      log,
      options: { leaseMs: config.executionLeaseMs },
      onPending: webhooks
        ? (p, why) =>
            void webhooks
              .notify(why === 'pending' ? 'proposal.pending_approval' : 'proposal.escalated', {
                proposal: p.id,
                twin: p.twin,
                action: p.action,
                approvers: p.approval?.approvers ?? [],
                escalateTo: p.approval?.escalated ? p.approval.escalateTo : [],
                quorum: p.approval?.quorum ?? null,
                expiresAt: p.expiresAt,
                rationale: p.rationale,
              })
              .catch((err) => log.error('could not queue a webhook', { error: err, proposal: p.id }))
        : undefined,
    });
  }
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
    async close() {
      policy?.stop();
      await proposals?.stop();
      await notifier?.stop();
      await connectors?.close().catch(() => undefined);
      try {
        await journal.stop();
      } finally {
        await db.close();
      }
    },
  };
}
