import { randomUUID } from 'node:crypto';
import type { Connector } from '../connectors/types';
import type { SqlTx } from '../db/sql';
import { ConflictError, InputError, NotFoundError, RegentError, UnavailableError } from '../errors/errors';
import { firstIssue } from '../errors/input';
import type { Decision } from '../policy/types';
import { OUTCOME_STATUS, payloadHash, request, type ProposalContext } from './context';
import { createdEntry, decisionEntry, subject, transitionEntry } from './entries';
import { createInlineExecutor } from './inline';
import type { NewProposal } from './store';
import { CreateProposalSchema, type ActingTwin, type Proposal } from './types';

/** Thrown inside a transaction to roll it back: the idempotency key was already used. */
class Retry extends Error {
  constructor(readonly existing: Proposal) {
    super(`idempotency key already used by proposal ${existing.id}`);
  }
}

/** Intake: a twin's action request becomes a proposal, decided by policy and recorded. */
export function createIntake(ctx: ProposalContext, kick: () => void) {
  const { deps, executor, resolve, placement } = ctx;
  const { store, journal, policy, twins, log } = deps;

  /** Inserts a new proposal; a used idempotency key rolls the whole transaction back (Retry). */
  async function insertOrRetry(tx: SqlTx, p: NewProposal & { id: string }): Promise<Proposal> {
    const r = await store.insert(p, tx);
    if (!r.created) throw new Retry(r.proposal);
    return r.proposal;
  }

  const inline = createInlineExecutor({
    store,
    policy,
    journal,
    log,
    twins: (ids, tx) => twins.getManyForAction(ids, tx),
    executes: (d) => OUTCOME_STATUS[d.outcome] === 'approved',
  });

  /** A twin's action request (POST /v1/proposals). The same idempotency key returns the same proposal. */
  async function create(
    twinId: string,
    body: unknown,
    opts: { context?: Record<string, unknown> } = {},
  ): Promise<{ proposal: Proposal; created: boolean }> {
    const parsed = CreateProposalSchema.safeParse(body);
    if (!parsed.success) {
      const message = firstIssue(parsed.error, '');
      await journal.append({
        kind: 'proposal.refused',
        actor: `twin:${twinId}`,
        data: {
          reason: message,
          action: typeof (body as { action?: unknown })?.action === 'string' ? (body as { action: string }).action : null,
        },
      });
      throw new InputError(message);
    }
    const input = parsed.data;
    const resolved = resolve(input.action);
    let args = input.args;
    if (resolved) {
      const valid = resolved.operation.input.safeParse(input.args);
      if (!valid.success) {
        const message = firstIssue(valid.error, `args of ${input.action}: `);
        await journal.append({
          kind: 'proposal.refused',
          actor: `twin:${twinId}`,
          data: { reason: message, action: input.action, idempotencyKey: input.idempotencyKey },
        });
        throw new InputError(message);
      }
      args = valid.data;
    }
    const argsHash = payloadHash(args);
    const asRetry = (existing: Proposal) => {
      if (existing.action !== input.action || existing.argsHash !== argsHash) {
        throw new ConflictError(`idempotency key ${input.idempotencyKey} was already used for a different request (proposal ${existing.id})`);
      }
      return { proposal: existing, created: false };
    };
    // Execute mode with a connector whose system lives in this database: decided, booked,
    // applied and recorded in one transaction, batched with other such requests (inline.ts),
    // which read the twin too. Anything unusual on the way leaves the request to the ordinary
    // path: recorded, then executed.
    let result: { proposal: Proposal; created: boolean } | undefined;
    try {
      if (resolved && inline.supports(resolved.connector)) result = await executeWithDecision(resolved.connector);
      if (!result) {
        const twin = await twins.getForAction(twinId);
        if (!twin) throw new NotFoundError(`twin ${twinId} does not exist`);
        result = await record(twin);
      }
    } catch (err) {
      if (err instanceof Retry) return asRetry(err.existing);
      if (err instanceof NotFoundError) throw err;
      if (err instanceof RegentError) {
        await journal
          .append({
            kind: 'proposal.refused',
            actor: `twin:${twinId}`,
            data: { reason: err.message, action: input.action, idempotencyKey: input.idempotencyKey },
          })
          .catch(() => undefined);
        throw err;
      }
      throw new UnavailableError(`the action request could not be recorded: ${(err as Error).message}`);
    }
    if (result.proposal.status === 'approved') kick();
    if (result.proposal.status === 'pending_approval') deps.onPending?.(result.proposal, 'pending');
    if (result.proposal.status === 'executed') {
      log.info('proposal executed', { proposal: result.proposal.id, action: result.proposal.action, twin: twinId, inline: true });
      deps.onSettled?.(result.proposal);
    }
    return result;

    async function record(twin: ActingTwin): Promise<{ proposal: Proposal; created: boolean }> {
      const id = randomUUID();
      const req = request(twin, input.action, resolved ? resolved.operation.attributes(args) : {});
      return store.transaction(async (tx) => {
        // An action no connector offers can never run, whatever a document says: decide it
        // without reserving anything, then deny it.
        const { decision } = resolved ? await policy.decideAndReserve(req, subject(id), tx) : { decision: policy.decide(req) };
        const d: Decision = resolved
          ? decision
          : {
              ...decision,
              outcome: 'deny',
              approval: null,
              reservations: [],
              reasons: [
                { code: 'no_grant', message: `no connector offers ${input.action}`, source: 'connectors' },
                ...decision.reasons.filter((r) => r.code !== 'granted'),
              ],
            };
        const place = placement(d, twin!.mode, Date.now());
        const r = await insertOrRetry(tx, { id, twin: twin!.id, action: input.action, args, argsHash, rationale: input.rationale, idempotencyKey: input.idempotencyKey, decision: d, context: opts.context ?? null, ...place });
        await journal.appendWithin(tx, [decisionEntry(id, twin!.id, `twin:${twin!.id}`, req, d), createdEntry(r, place.status, d)]);
        return { proposal: r, created: true };
      });
    }

    async function executeWithDecision(connector: Connector): Promise<{ proposal: Proposal; created: boolean } | undefined> {
      const id = randomUUID();
      const attributes = resolved!.operation.attributes(args);
      const o = await inline.submit({
        id,
        twin: twinId,
        idempotencyKey: input.idempotencyKey,
        connector,
        action: input.action,
        args,
        request: (twin) => (twin.mode === 'execute' && !twin.halted ? request(twin, input.action, attributes) : undefined),
        record: (twin, req, d, result) => ({
          row: {
            id,
            twin: twin.id,
            action: input.action,
            args,
            argsHash,
            rationale: input.rationale,
            idempotencyKey: input.idempotencyKey,
            decision: d,
            context: opts.context ?? null,
            ...placement(d, twin.mode, Date.now()),
            status: 'executed',
            result,
            attempts: 1,
          },
          entries: (p) => [
            decisionEntry(id, p.twin, `twin:${p.twin}`, req, d),
            createdEntry(p, 'approved', d),
            transitionEntry({ ...p, status: 'approved' }, 'executing', 'system', 'executed with its decision (in-database connector)', { executor, attempt: 1 }),
            transitionEntry({ ...p, status: 'executing' }, 'executed', 'system', 'executed', { result }),
          ],
        }),
      });
      if (o.kind === 'taken') throw new Retry(o.existing);
      return o.kind === 'executed' ? { proposal: o.proposal, created: true } : undefined;
    }
  }

  return {
    create,

    /** Requests executed with their decision: transactions run and requests carried. */
    inlineStats: () => inline.stats(),
  };
}
