import { randomUUID } from 'node:crypto';
import type { Planner } from '../agent/types';
import { createPlaybookPlanner } from '../agent/playbook';
import type { ConnectorRegistry } from '../connectors/types';
import type { PrismaClient } from '../db/prisma';
import type { Sql, SqlTx } from '../db/sql';
import { ConflictError, InputError, NotFoundError, RegentError } from '../errors/errors';
import { parseInput } from '../errors/input';
import type { JournalService } from '../journal/service';
import type { AppendInput } from '../journal/contract';
import type { Logger } from '../log/logger';
import type { PolicyService } from '../policy/service';
import type { ProposalService } from '../proposals/service';
import { WITHDRAWABLE, type Proposal } from '../proposals/types';
import type { TwinService } from '../twins/service';
import { outcomeOf } from './outcome';
import { compilePlaybook, PlaybookSchema, playbookView, resolveParams, type PlaybookCatalog, type PlaybookView } from './playbooks';
import { createObjectiveRunner, type RunnerOptions } from './runner';
import { createObjectiveStore, type NewObjective } from './store';
import { toolsFor } from './tools';
import {
  CreateObjectiveSchema,
  ListObjectivesQuery,
  OBJECTIVE_TRANSITIONS,
  TERMINAL_OBJECTIVE,
  type Objective,
  type ObjectiveRecord,
  type ObjectiveStatus,
} from './types';

export interface ObjectiveDeps {
  sql: Sql;
  /** For the management listings (Prisma Client); everything else goes through sql. */
  prisma: PrismaClient;
  journal: Pick<JournalService, 'appendWithin' | 'append'>;
  proposals: ProposalService;
  twins: Pick<TwinService, 'get'>;
  policy: Pick<PolicyService, 'bundle' | 'version'>;
  connectors: () => ConnectorRegistry;
  playbooks: PlaybookCatalog;
  /** The language-model planner for free-text objectives; undefined when no model is configured. */
  llm: Planner | undefined;
  /** Step budget of objectives that set none. */
  defaultStepBudget: number;
  log: Logger;
  runnerId?: string;
  runner?: Partial<RunnerOptions>;
}

/** An objective validated and ready to insert, with its journal entry. */
export interface PreparedObjective {
  record: NewObjective;
  entry: AppendInput;
}

/** What GET /v1/objectives/:id shows. */
export interface ObjectiveDetail extends Objective {
  steps: {
    key: string;
    action: string;
    proposalId: string | null;
    status: string;
    reasons: string[];
    createdAt: string;
  }[];
  proposals: {
    id: string;
    step: string;
    action: string;
    status: string;
    args: Record<string, unknown>;
    rationale: string;
    decision: { outcome: string; reasons: { code: string; message: string; source: string }[] };
    result: Record<string, unknown> | null;
    error: string | null;
    createdAt: string;
    updatedAt: string;
  }[];
}

const subject = (id: string) => `objective:${id}`;

/** Compiled playbook planners kept per process (an objective's turns reuse its own). */
const MAX_CACHED_PLANNERS = 1000;

/** Strips the runner's internals from a record. */
export function publicObjective(o: ObjectiveRecord): Objective {
  return {
    id: o.id,
    twin: o.twin,
    owner: o.owner,
    createdBy: o.createdBy,
    text: o.text,
    playbook: o.playbook,
    params: o.params,
    constraints: o.constraints,
    deadline: o.deadline,
    stepBudget: o.stepBudget,
    planner: o.planner,
    status: o.status,
    summary: o.summary,
    stepsUsed: o.stepsUsed,
    signal: o.signal,
    createdAt: o.createdAt,
    updatedAt: o.updatedAt,
    finishedAt: o.finishedAt,
  };
}

/**
 * Objectives: an executive (or a signal's standing rule) gives a twin something to achieve; a
 * durable run plans it with a playbook or a language model and acts only through the pipeline.
 */
export function createObjectiveService(deps: ObjectiveDeps) {
  const { journal, log } = deps;
  const store = createObjectiveStore(deps.sql, deps.prisma);

  /** Playbook planners by objective id (oldest dropped first past the bound). */
  const playbookPlanners = new Map<string, Planner>();
  const runner = createObjectiveRunner({
    store,
    journal,
    proposals: deps.proposals,
    twins: deps.twins,
    policy: deps.policy,
    connectors: deps.connectors,
    log,
    ...(deps.runnerId ? { runnerId: deps.runnerId } : {}),
    ...(deps.runner ? { options: deps.runner } : {}),
    plannerFor(o) {
      if (o.planner === 'playbook') {
        // The snapshot never changes once the objective exists: validate and compile it once.
        const known = playbookPlanners.get(o.id);
        if (known) return known;
        const snapshot = PlaybookSchema.safeParse((o.playbookSnapshot as { doc?: unknown } | null)?.doc);
        if (!snapshot.success) return `the playbook snapshot of objective ${o.id} is unreadable: ${snapshot.error.issues[0]!.message}`;
        const planner = createPlaybookPlanner(compilePlaybook(snapshot.data, String((o.playbookSnapshot as { file?: unknown }).file ?? o.playbook)));
        if (playbookPlanners.size >= MAX_CACHED_PLANNERS) playbookPlanners.delete(playbookPlanners.keys().next().value!);
        playbookPlanners.set(o.id, planner);
        return planner;
      }
      return deps.llm ?? 'no language model is configured any more (REGENT_MODEL); a free-text objective cannot be planned without one';
    },
  });

  const playbookNames = () => deps.playbooks.list().map((p) => p.id);

  /** Validates an objective for `twinId` (everything but authorization, which is the caller's). */
  async function prepare(twinId: string, body: unknown, actor: string, source: { signal?: string } = {}): Promise<PreparedObjective> {
    const input = parseInput(CreateObjectiveSchema, body, 'body');
    const twin = await deps.twins.get(twinId);
    const bundle = deps.policy.bundle();
    const authority = bundle.authorities.get(twin.authority);
    const offered = toolsFor(bundle, deps.connectors(), twin.authority);
    if (offered.unavailable) throw new ConflictError(`twin ${twin.id} cannot act: ${offered.unavailable}`);

    let params: Record<string, unknown> = {};
    let snapshot: { file: string; doc: unknown } | null = null;
    if (input.playbook !== undefined) {
      const playbook = deps.playbooks.get(input.playbook);
      if (!playbook) {
        throw new InputError(`playbook: there is no playbook "${input.playbook}" (available: ${playbookNames().join(', ') || 'none'})`, { field: 'playbook' });
      }
      params = resolveParams(playbook, input.params ?? {});
      const granted = new Set(offered.tools.map((t) => t.action));
      const missing = playbook.doc.steps.filter((s) => !granted.has(s.action));
      if (missing.length) {
        throw new InputError(
          `playbook: ${playbook.id} needs ${[...new Set(missing.map((s) => s.action))].join(', ')} (step ${missing.map((s) => s.id).join(', ')}), which twin ${twin.id} is not offered: its authority ${twin.authority} does not grant it, or no connector offers it`,
          { field: 'playbook' },
        );
      }
      snapshot = { file: playbook.file, doc: playbook.doc };
    } else {
      if (input.params !== undefined) throw new InputError('params: only a playbook takes params; name one in "playbook"', { field: 'params' });
      if (!deps.llm) {
        throw new InputError(
          `playbook: no language model is configured (set REGENT_MODEL, OPENAI_API_KEY and OPENAI_BASE_URL), so an objective must name a playbook: ${playbookNames().join(', ') || 'none are installed'} (see GET /v1/playbooks)`,
          { field: 'playbook' },
        );
      }
    }

    const constraints = input.constraints ?? {};
    if (constraints.deadline && Date.parse(constraints.deadline) <= Date.now()) {
      throw new InputError(`constraints.deadline: ${constraints.deadline} is already past`, { field: 'constraints.deadline' });
    }
    if (constraints.spendCeiling && authority && constraints.spendCeiling.currency !== authority.currency) {
      throw new InputError(
        `constraints.spendCeiling.currency: ${twin.authority} works in ${authority.currency}, so the ceiling must be in ${authority.currency}, not ${constraints.spendCeiling.currency} (amounts are never converted)`,
        { field: 'constraints.spendCeiling.currency' },
      );
    }
    const id = randomUUID();
    const record: NewObjective = {
      id,
      twin: twin.id,
      owner: twin.owner,
      createdBy: actor,
      text: input.text,
      playbook: input.playbook ?? null,
      playbookSnapshot: snapshot,
      params,
      constraints,
      deadline: constraints.deadline ? new Date(constraints.deadline).toISOString() : null,
      stepBudget: constraints.stepBudget ?? deps.defaultStepBudget,
      planner: snapshot ? 'playbook' : 'llm',
      signal: source.signal ?? null,
    };
    const entry: AppendInput<'objective.created'> = {
      kind: 'objective.created',
      actor,
      subject: subject(id),
      data: {
        twin: twin.id,
        owner: twin.owner,
        text: input.text,
        planner: record.planner,
        playbook: record.playbook,
        params,
        constraints,
        stepBudget: record.stepBudget,
        signal: record.signal,
      },
      policyVersion: deps.policy.version(),
    };
    return { record, entry };
  }

  async function insertPrepared(tx: SqlTx, p: PreparedObjective): Promise<ObjectiveRecord> {
    const row = await store.insert(tx, p.record);
    await journal.appendWithin(tx, [p.entry]);
    return row;
  }

  async function mustGet(id: string): Promise<ObjectiveRecord> {
    const o = await store.get(id);
    if (!o) throw new NotFoundError(`objective ${id} does not exist`);
    return o;
  }

  return {
    store,
    runner,
    prepare,
    insertPrepared,

    /** The playbooks in force, as forms. */
    playbooks: (): PlaybookView[] => deps.playbooks.list().map(playbookView),

    /** One playbook in force, compiled. */
    playbook: (id: string) => deps.playbooks.get(id),

    /** Whether free-text objectives can be planned here. */
    hasModel: (): boolean => deps.llm !== undefined,

    /** A new objective for a twin (POST /v1/twins/:id/objectives); refusals are journaled. */
    async create(twinId: string, body: unknown, actor: string): Promise<Objective> {
      let prepared: PreparedObjective;
      try {
        prepared = await prepare(twinId, body, actor);
      } catch (err) {
        if (err instanceof RegentError && (err.code === 'bad_input' || err.code === 'conflict')) {
          await journal
            .append({
              kind: 'objective.refused',
              actor,
              subject: `twin:${twinId}`,
              data: {
                reason: err.message,
                playbook: typeof (body as { playbook?: unknown })?.playbook === 'string' ? String((body as { playbook: string }).playbook).slice(0, 64) : null,
              },
              policyVersion: deps.policy.version(),
            })
            .catch((e) => log.error('could not journal a refused objective', { error: e, twin: twinId }));
        }
        throw err;
      }
      const row = await store.transaction((tx) => insertPrepared(tx, prepared));
      log.info('objective created', { objective: row.id, twin: row.twin, planner: row.planner, playbook: row.playbook, actor });
      runner.kick();
      return publicObjective(row);
    },

    async get(id: string): Promise<Objective> {
      return publicObjective(await mustGet(id));
    },

    /** The objective with its steps and the proposals they became. */
    async detail(id: string): Promise<ObjectiveDetail> {
      const o = await mustGet(id);
      const steps = await store.steps(o.id);
      const proposals: ObjectiveDetail['proposals'] = [];
      const stepViews: ObjectiveDetail['steps'] = [];
      for (const s of steps) {
        let p: Proposal | undefined;
        if (s.proposalId) p = await deps.proposals.get(s.proposalId).catch(() => undefined);
        const outcome = p ? outcomeOf(p, p.status === 'rejected' || p.approval ? await deps.proposals.reviews(p.id) : []) : s.outcome;
        stepViews.push({
          key: s.key,
          action: s.action,
          proposalId: s.proposalId,
          status: outcome?.kind ?? 'submitting',
          reasons: !outcome ? [] : outcome.kind === 'refused' ? [outcome.reason] : outcome.reasons,
          createdAt: s.createdAt,
        });
        if (p) {
          proposals.push({
            id: p.id,
            step: s.key,
            action: p.action,
            status: p.status,
            args: p.args,
            rationale: p.rationale,
            decision: { outcome: p.decision.outcome, reasons: p.decision.reasons.map((r) => ({ code: r.code, message: r.message, source: r.source })) },
            result: p.result,
            error: p.error,
            createdAt: p.createdAt,
            updatedAt: p.updatedAt,
          });
        }
      }
      return { ...publicObjective(o), steps: stepViews, proposals };
    },

    async list(twinId: string, query: unknown = {}): Promise<Objective[]> {
      const q = parseInput(ListObjectivesQuery, query, 'query');
      await deps.twins.get(twinId);
      return (await store.list({ twin: twinId, ...q })).map(publicObjective);
    },

    /** Stops an unfinished objective and withdraws its requests that have not run. */
    async cancel(id: string, actor: string, reason?: string): Promise<Objective> {
      const why = reason ?? `cancelled by ${actor}`;
      const updated = await store.transaction(async (tx) => {
        const o = await store.lock(tx, id);
        if (!o) throw new NotFoundError(`objective ${id} does not exist`);
        if (!OBJECTIVE_TRANSITIONS[o.status].includes('cancelled'))
          throw new ConflictError(`objective ${id} is ${o.status}; only an unfinished objective can be cancelled`, { status: o.status });
        const row = await store.update(tx, id, {
          status: 'cancelled',
          summary: `${o.summary ? `${o.summary}; ` : ''}cancelled by ${actor}${reason ? `: ${reason}` : ''}`,
          claimedBy: null,
          claimedUntil: null,
          nextRunAt: null,
          finished: true,
        });
        await journal.appendWithin(tx, [
          {
            kind: 'objective.transitioned',
            actor,
            subject: subject(id),
            data: { twin: o.twin, from: o.status, to: 'cancelled' satisfies ObjectiveStatus, reason: why },
            policyVersion: deps.policy.version(),
          },
        ]);
        return row!;
      });
      runner.interrupt(id);
      await runner.withdrawOpen(updated, actor, `objective ${id} was cancelled: ${why}`, WITHDRAWABLE);
      log.info('objective cancelled', { objective: id, actor });
      return publicObjective(updated);
    },

    isTerminal: (o: Objective) => TERMINAL_OBJECTIVE.has(o.status),

    start: () => runner.start(),
    stop: () => runner.stop(),
    kick: () => runner.kick(),
    idle: () => runner.idle(),
  };
}

export type ObjectiveService = ReturnType<typeof createObjectiveService>;
