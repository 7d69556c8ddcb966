import type { CallInDoubt, Connector, ExecutionResult, LookupResult } from '../connectors/types';
import type { SqlTx } from '../db/sql';
import { ConflictError, NotFoundError } from '../errors/errors';
import { assertTransition, type ProposalContext } from './context';
import { subject, transitionEntry } from './entries';
import type { ProposalPatch } from './store';
import type { InDoubt, Proposal } from './types';

/**
 * The executor: claims approved work and runs it through its connector, exactly once; a call
 * whose outcome is unknown goes in doubt, is looked up where its connector can be asked, and is
 * settled by that answer or by a person.
 */
export function createExecutor(ctx: ProposalContext) {
  const { deps, opts, executor, resolve } = ctx;
  const { store, journal, policy, twins, log } = deps;
  let running: Promise<number> | undefined;
  let again = false;
  let stopped = false;

  function kick(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = executeDue().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        kick();
      }
    });
    running.catch((err) => log.error('executor tick failed', { error: err }));
  }

  /** Claims due work and runs it through its connector, one proposal at a time per claim batch. */
  async function executeDue(limit = 20): Promise<number> {
    let done = 0;
    for (;;) {
      // Without its liveness lock, this process's claims look dead to others: claim nothing.
      if (deps.alive && !deps.alive()) return done;
      // The claim and its journal entries commit together.
      const claimed = await store.transaction(async (tx) => {
        const rows = await store.claim(tx, executor, opts.leaseMs, limit);
        await journal.appendWithin(
          tx,
          rows.map((p) =>
            transitionEntry(
              { ...p, status: p.attempts > 1 ? 'executing' : 'approved' },
              'executing',
              'system',
              p.attempts > 1 ? `attempt ${p.attempts}` : 'claimed for execution',
              { executor, attempt: p.attempts },
            ),
          ),
        );
        return rows;
      });
      if (claimed.length === 0) return done;
      await Promise.all(claimed.map((p) => runOne(p)));
      done += claimed.length;
    }
  }

  async function runOne(p: Proposal): Promise<void> {
    const ref = subject(p.id);
    // The kill switch may have been engaged between the claim and now: check once more.
    if (await twins.isHalted(p.twin)) {
      await finishWith(p, { status: 'approved', nextAttemptAt: null }, async () => undefined, 'kill switch engaged; waiting');
      return;
    }
    const resolved = resolve(p.action);
    let outcome: ExecutionResult;
    const startedAt = new Date().toISOString();
    if (!resolved) outcome = { ok: false, error: `no connector offers ${p.action} any more`, retryable: false };
    else {
      try {
        // The proposal id is the idempotency key: a retry or a takeover never makes a second effect.
        outcome = await resolved.connector.execute(p.action, p.args, p.id, { executor });
      } catch (err) {
        outcome = { ok: false, error: `connector failed: ${(err as Error).message}`, retryable: true, maybeSent: true };
      }
    }
    if (outcome.ok) {
      const finished = await finishWith(
        p,
        { status: 'executed', result: outcome.result, error: null },
        async (tx) => {
          await policy.commit(ref, tx);
        },
        'executed',
      );
      if (finished) log.info('proposal executed', { proposal: p.id, action: p.action, twin: p.twin });
      else await settleLate(p, outcome);
      return;
    }
    const retry = outcome.retryable && p.attempts < opts.maxAttempts;
    if (retry) {
      const delay = opts.retryBaseMs * 2 ** (p.attempts - 1) * (0.5 + Math.random());
      await finishWith(
        p,
        { status: 'approved', error: outcome.error, nextAttemptAt: new Date(Date.now() + delay).toISOString() },
        async () => undefined,
        `will retry: ${outcome.error}`,
      );
      setTimeout(kick, delay + 10).unref();
      return;
    }
    // Retries of an idempotent call ran out, the last one sent and unanswered: it may have acted.
    const doubt: CallInDoubt | undefined =
      outcome.inDoubt ??
      (outcome.maybeSent ? { sentAt: startedAt, sentBy: executor, lastHeard: outcome.error, checkIn: `${resolved?.connector.id ?? 'the system'} for idempotency key ${p.id}` } : undefined);
    if (doubt) {
      await goInDoubt(p, doubt, outcome.error, resolved?.connector);
      return;
    }
    const finished = await finishWith(
      p,
      { status: 'failed', error: outcome.error },
      async (tx) => {
        await policy.release(ref, tx);
      },
      outcome.error,
    );
    if (!finished) await settleLate(p, outcome);
  }

  /**
   * The call's outcome is unknown: the proposal goes in doubt, its amount stays reserved, and
   * the connector's own status lookup (where it has one) is asked at once.
   */
  async function goInDoubt(p: Proposal, doubt: CallInDoubt, error: string, connector: Connector | undefined): Promise<void> {
    const inDoubt: InDoubt = {
      since: new Date().toISOString(),
      sentAt: doubt.sentAt,
      executor: doubt.sentBy,
      connector: connector?.id ?? null,
      checkIn: doubt.checkIn,
      lastHeard: doubt.lastHeard,
      error,
    };
    // The sweep asks the connector again only after the interval: it is asked once right here.
    const nextAttemptAt = new Date(Date.now() + opts.lookupIntervalMs).toISOString();
    const updated = await finishWith(p, { status: 'in_doubt', error, inDoubt, nextAttemptAt }, async () => undefined, `outcome unknown: ${error}`, { inDoubt });
    if (!updated) return;
    log.warn('proposal in doubt', { proposal: p.id, action: p.action, twin: p.twin, connector: inDoubt.connector });
    deps.onPending?.(updated, 'in_doubt');
    if (connector?.lookup && connector.canLookup?.(p.action)) await lookUp(updated, connector);
  }

  /**
   * This executor's claim was taken over while its call ran (its lease lapsed, or its liveness
   * lock was lost). If the taker put the proposal in doubt, what this executor heard settles it.
   */
  async function settleLate(p: Proposal, outcome: ExecutionResult): Promise<void> {
    if (!outcome.ok && (outcome.inDoubt || outcome.retryable || outcome.maybeSent)) return; // nothing more is known
    const now = await store.get(p.id).catch(() => undefined);
    if (now?.status !== 'in_doubt') return;
    const evidence = outcome.ok
      ? `the executor that sent the call (${executor}) received its answer after its claim was taken over`
      : `the executor that sent the call (${executor}) was told it was refused: ${outcome.error}`;
    await settle(p.id, 'system', outcome.ok ? 'executed' : 'not_executed', evidence, outcome.ok ? outcome.result : null).catch((err) =>
      log.warn('could not settle an in-doubt proposal from its late answer', { proposal: p.id, error: err }),
    );
  }

  /** Asks the connector whether an in-doubt call took effect; settles it when the answer does. */
  async function lookUp(p: Proposal, connector: Connector): Promise<LookupResult | undefined> {
    let answer: LookupResult | undefined;
    try {
      answer = await connector.lookup!(p.action, p.args, p.id);
    } catch (err) {
      answer = { outcome: 'unknown', error: (err as Error).message };
    }
    if (!answer) return undefined;
    if (answer.outcome === 'unknown') {
      log.info('in-doubt status lookup settled nothing', { proposal: p.id, connector: connector.id, error: answer.error });
      return answer;
    }
    await settle(p.id, 'system', answer.outcome, answer.evidence, answer.outcome === 'executed' ? answer.result : null).catch((err) => {
      if (!(err instanceof ConflictError)) throw err; // settled meanwhile by a person: theirs stands
    });
    return answer;
  }

  /**
   * Settles an in-doubt proposal: executed commits its reservation, not executed releases it.
   * Once only; journaled with who settled it and on what evidence.
   */
  async function settle(
    id: string,
    by: string,
    outcome: 'executed' | 'not_executed',
    evidence: string,
    result: Record<string, unknown> | null,
  ): Promise<Proposal> {
    const settled = await store.transaction(async (tx) => {
      const p = await store.lock(tx, id);
      if (!p) throw new NotFoundError(`proposal ${id} does not exist`);
      if (p.reconciliation)
        throw new ConflictError(`proposal ${id} was already reconciled by ${p.reconciliation.by} (${p.reconciliation.outcome})`, { status: p.status });
      if (p.status !== 'in_doubt') throw new ConflictError(`proposal ${id} is ${p.status}; only a proposal in doubt can be reconciled`, { status: p.status });
      const reconciliation = { outcome, evidence, by, at: new Date().toISOString() };
      const to = outcome === 'executed' ? 'executed' : 'failed';
      assertTransition(p, to);
      const updated = await store.update(tx, id, {
        status: to,
        reconciliation,
        ...(outcome === 'executed' ? { result: result ?? { reconciled: true }, error: null } : { error: `not executed (reconciled by ${by}): ${evidence}` }),
      });
      if (outcome === 'executed') await policy.commit(subject(id), tx);
      else await policy.release(subject(id), tx);
      await journal.appendWithin(tx, [
        {
          kind: 'proposal.reconciled',
          actor: by,
          subject: subject(id),
          data: { twin: p.twin, action: p.action, outcome, evidence, inDoubt: p.inDoubt },
          policyVersion: p.policyVersion,
        },
        transitionEntry(p, to, by, `reconciled: ${outcome === 'executed' ? 'it took effect' : 'it did not take effect'}`),
      ]);
      return updated;
    });
    log.info('in-doubt proposal reconciled', { proposal: id, outcome, by: by === 'system' ? 'system' : 'person' });
    deps.onSettled?.(settled);
    return settled;
  }

  /** Records an execution's end if this executor still holds the claim, with its journal entry. */
  async function finishWith(
    p: Proposal,
    patch: ProposalPatch,
    extra: (tx: SqlTx) => Promise<void>,
    reason: string,
    data: Record<string, unknown> = {},
  ): Promise<Proposal | undefined> {
    return store
      .transaction(async (tx) => {
        // Only while this executor still holds the claim: if it lapsed, another executor took the
        // work over and its result is the one that counts.
        const updated = await store.updateClaimed(tx, p.id, executor, { ...patch, claimedBy: null, claimedUntil: null });
        if (!updated) return undefined;
        await extra(tx);
        await journal.appendWithin(tx, [
          transitionEntry(
            { ...p, status: 'executing' },
            patch.status!,
            'system',
            reason,
            { ...(patch.status === 'executed' ? { result: patch.result } : { error: patch.error ?? null }), ...data },
          ),
        ]);
        return updated;
      })
      .then((updated) => {
        if (updated) deps.onSettled?.(updated);
        return updated;
      });
  }

  /**
   * Asks connectors with a status lookup about in-doubt calls due for another look; returns
   * how many were settled.
   */
  async function lookupDue(limit = 20): Promise<number> {
    const due = await store.dueForLookup(opts.lookupIntervalMs, limit);
    let settled = 0;
    for (const p of due) {
      const connector = resolve(p.action)?.connector;
      if (!connector?.lookup || !connector.canLookup?.(p.action)) continue;
      const answer = await lookUp(p, connector).catch((err) => {
        log.warn('in-doubt status lookup failed', { proposal: p.id, error: err });
        return undefined;
      });
      if (answer && answer.outcome !== 'unknown') settled++;
    }
    return settled;
  }

  return {
    kick,
    executeDue,
    settle,
    lookupDue,

    /** Resolves once no execution started by kick() is running. */
    async idle(): Promise<void> {
      while (running) await running.catch(() => undefined);
    },

    /** kick() starts nothing more (the service is stopping). */
    halt(): void {
      stopped = true;
    },
  };
}
