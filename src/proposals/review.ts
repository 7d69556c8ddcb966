import { ConflictError, InputError, NotFoundError, RegentError } from '../errors/errors';
import { firstIssue } from '../errors/input';
import type { AppendInput } from '../journal/types';
import { approverEligibility } from '../policy/approvers';
import { assertTransition, payloadHash, request, type ProposalContext } from './context';
import { decisionEntry, subject, transitionEntry } from './entries';
import type { Reviewer } from './service';
import type { ProposalPatch } from './store';
import { ReconcileSchema, ReviewSchema, type Proposal } from './types';

/** Settles an in-doubt proposal (the executor's). */
type Settle = (id: string, by: string, outcome: 'executed' | 'not_executed', evidence: string, result: Record<string, unknown> | null) => Promise<Proposal>;

/**
 * Review: what people do with a proposal. Approve, reject, edit or comment; withdraw it; settle
 * it when it is in doubt; audit it after the fact.
 */
export function createReview(ctx: ProposalContext, exec: { kick: () => void; settle: Settle }) {
  const { deps, opts, resolve, attributesOf, placement } = ctx;
  const { store, journal, policy, twins } = deps;
  const { kick, settle } = exec;

  /** The connector's preview of the effect, shown to approvers (no side effects). */
  async function preview(p: Proposal): Promise<{ summary: string; details: Record<string, unknown> } | null> {
    const registry = deps.connectors();
    const r = registry.resolve(p.action);
    if (!r) return null;
    try {
      return await r.connector.simulate(p.action, p.args);
    } catch (err) {
      return { summary: `preview unavailable: ${(err as Error).message}`, details: {} };
    }
  }

  /** approve | reject | edit | comment by a person. */
  async function review(id: string, reviewer: Reviewer, body: unknown): Promise<Proposal> {
    const parsed = ReviewSchema.safeParse(body);
    if (!parsed.success) throw new InputError(firstIssue(parsed.error, ''));
    const input = parsed.data;
    const me = `user:${reviewer.id}`;
    const before = await store.get(id);
    if (!before) throw new NotFoundError(`proposal ${id} does not exist`);
    const twin = await twins.get(before.twin);
    if (!twin) throw new NotFoundError(`twin ${before.twin} does not exist`);
    const outcome = await store.transaction(async (tx) => {
      const p = await store.lock(tx, id);
      if (!p) throw new NotFoundError(`proposal ${id} does not exist`);
      if (input.decision === 'comment') {
        await store.addReview(tx, {
          proposalId: p.id,
          actor: me,
          decision: 'comment',
          comment: input.comment!,
          args: null,
          argsHash: p.argsHash,
          policyVersion: p.policyVersion,
        });
        await journal.appendWithin(tx, [
          {
            kind: 'proposal.reviewed',
            actor: me,
            subject: subject(p.id),
            data: { decision: 'comment', comment: input.comment! },
            policyVersion: p.policyVersion,
          },
        ]);
        return { proposal: p, kick: false, pending: false };
      }
      if (p.status !== 'pending_approval')
        throw new ConflictError(
          `proposal ${p.id} is ${p.status}; only a pending approval can be ${input.decision === 'edit' ? 'edited' : input.decision + 'd'}`,
          { status: p.status },
        );
      if (p.expiresAt && Date.parse(p.expiresAt) <= Date.now())
        throw new ConflictError(`proposal ${p.id} expired at ${p.expiresAt}`, { status: 'expired' });
      let current: Proposal = p;
      const entries: AppendInput[] = [];
      // An approval counts only under the policy version in force: decide again if it changed.
      if (policy.version() !== p.policyVersion || input.decision === 'edit') {
        let args = p.args;
        if (input.decision === 'edit') {
          const resolved = resolve(p.action);
          const valid = resolved ? resolved.operation.input.safeParse(input.args) : undefined;
          if (valid && !valid.success) throw new InputError(firstIssue(valid.error, `args of ${p.action}: `));
          args = (valid?.data ?? input.args) as Record<string, unknown>;
        }
        const req = request(twin, p.action, attributesOf(p.action, args));
        const { decision } = await policy.decideAndReserve(req, subject(p.id), tx);
        const place = placement(decision, twin.mode, Date.now());
        const changedArgs = input.decision === 'edit';
        const patch: ProposalPatch = {
          decision,
          policyVersion: decision.policyVersion,
          status: place.status,
          approval: place.approval,
          expiresAt: place.expiresAt,
          audit: place.audit,
        };
        if (changedArgs) Object.assign(patch, { args, argsHash: payloadHash(args) });
        current = await store.update(tx, p.id, patch);
        entries.push(decisionEntry(p.id, p.twin, changedArgs ? me : 'system', req, decision));
        if (changedArgs) {
          await store.addReview(tx, {
            proposalId: p.id,
            actor: me,
            decision: 'edit',
            comment: input.comment ?? null,
            args,
            argsHash: current.argsHash,
            policyVersion: current.policyVersion,
          });
          entries.push({
            kind: 'proposal.reviewed',
            actor: me,
            subject: subject(p.id),
            data: { decision: 'edit', comment: input.comment ?? null, argsHash: current.argsHash, previousArgsHash: p.argsHash },
            policyVersion: current.policyVersion,
          });
        }
        entries.push(
          transitionEntry(
            p,
            current.status,
            changedArgs ? me : 'system',
            changedArgs ? 'edited; decided again' : 'policy changed; decided again',
          ),
        );
        if (changedArgs || current.status !== 'pending_approval') {
          await journal.appendWithin(tx, entries);
          return { proposal: current, kick: current.status === 'approved', pending: current.status === 'pending_approval' };
        }
      }
      // Who may decide is policy's rule (policy/approvers), given the approver's own decision
      // on the same action where an authority delegates to them.
      const attributes = attributesOf(current.action, current.args);
      const own = policy.bundle().byDelegate.has(me)
        ? policy.decide({ principal: me, action: current.action, resource: attributes, at: new Date().toISOString() })
        : null;
      const verdict = approverEligibility({
        approval: current.approval,
        approver: { principal: me, roles: reviewer.roles },
        owner: twin.owner,
        own,
        decision: input.decision === 'reject' ? 'reject' : 'approve',
      });
      if (!verdict.eligible) {
        if (verdict.refusal === 'already_approved') throw new ConflictError(`${me} already approved proposal ${p.id}; quorum counts distinct people`);
        throw new RegentError('forbidden', verdict.reason);
      }
      if (input.decision === 'reject') {
        assertTransition(current, 'rejected');
        await store.addReview(tx, {
          proposalId: p.id,
          actor: me,
          decision: 'reject',
          comment: input.comment!,
          args: null,
          argsHash: current.argsHash,
          policyVersion: current.policyVersion,
        });
        const updated = await store.update(tx, p.id, { status: 'rejected', error: `rejected by ${me}: ${input.comment}` });
        await policy.release(subject(p.id), tx);
        entries.push({
          kind: 'proposal.reviewed',
          actor: me,
          subject: subject(p.id),
          data: { decision: 'reject', comment: input.comment },
          policyVersion: current.policyVersion,
        });
        entries.push(transitionEntry(current, 'rejected', me, input.comment!));
        await journal.appendWithin(tx, entries);
        return { proposal: updated, kick: false, pending: false };
      }
      // approve
      const approval = current.approval!;
      await store.addReview(tx, {
        proposalId: p.id,
        actor: me,
        decision: 'approve',
        comment: input.comment ?? null,
        args: null,
        argsHash: current.argsHash,
        policyVersion: current.policyVersion,
      });
      const { approvedBy, reached } = verdict;
      entries.push({
        kind: 'proposal.reviewed',
        actor: me,
        subject: subject(p.id),
        data: {
          decision: 'approve',
          comment: input.comment ?? null,
          argsHash: current.argsHash,
          approvals: approvedBy.length,
          quorum: approval.quorum,
        },
        policyVersion: current.policyVersion,
      });
      let updated: Proposal;
      if (reached) {
        assertTransition(current, 'approved');
        await policy.reserveApproved(current.decision, subject(p.id), tx);
        updated = await store.update(tx, p.id, {
          status: 'approved',
          approval: { ...approval, approvedBy },
          expiresAt: new Date(Date.now() + opts.executionWindowMs).toISOString(),
        });
        entries.push(transitionEntry(current, 'approved', me, `quorum ${approval.quorum} reached: ${approvedBy.join(', ')}`));
      } else {
        updated = await store.update(tx, p.id, { approval: { ...approval, approvedBy } });
      }
      await journal.appendWithin(tx, entries);
      return { proposal: updated, kick: reached, pending: false };
    });
    if (outcome.kick) kick();
    if (outcome.pending) deps.onPending?.(outcome.proposal, 'pending');
    return outcome.proposal;
  }

  /** Withdraws a proposal that has not run (the twin's owner, an admin, or the twin itself). */
  async function cancel(id: string, actor: string, reason: string): Promise<Proposal> {
    return store.transaction(async (tx) => {
      const p = await store.lock(tx, id);
      if (!p) throw new NotFoundError(`proposal ${id} does not exist`);
      assertTransition(p, 'cancelled');
      const updated = await store.update(tx, id, { status: 'cancelled', error: `cancelled by ${actor}: ${reason}` });
      await policy.release(subject(id), tx);
      await journal.appendWithin(tx, [transitionEntry(p, 'cancelled', actor, reason)]);
      return updated;
    });
  }

  /**
   * A person settles an in-doubt proposal (POST /v1/proposals/:id/reconcile): the twin's owner
   * or an admin, as the caller checked; never a twin.
   */
  async function reconcile(id: string, actor: string, body: unknown): Promise<Proposal> {
    if (!actor.startsWith('user:')) throw new RegentError('forbidden', `${actor} may not reconcile: only the twin's owner or an admin settles an action in doubt`);
    const parsed = ReconcileSchema.safeParse(body);
    if (!parsed.success) throw new InputError(firstIssue(parsed.error, ''));
    return settle(id, actor, parsed.data.outcome, parsed.data.evidence, null);
  }

  /** Post-hoc audit of an action executed in execute mode: passed or flagged. */
  async function audit(id: string, actor: string, verdict: 'passed' | 'flagged', comment?: string): Promise<Proposal> {
    return store.transaction(async (tx) => {
      const p = await store.lock(tx, id);
      if (!p) throw new NotFoundError(`proposal ${id} does not exist`);
      if (p.audit === null) throw new ConflictError(`proposal ${id} is not queued for post-hoc audit`);
      if (p.audit !== 'pending') throw new ConflictError(`proposal ${id} was already audited (${p.audit})`);
      const updated = await store.update(tx, id, { audit: verdict });
      await journal.appendWithin(tx, [
        {
          kind: 'proposal.audited',
          actor,
          subject: subject(id),
          data: { verdict, comment: comment ?? null, status: p.status },
          policyVersion: p.policyVersion,
        },
      ]);
      return updated;
    });
  }

  return { preview, review, cancel, reconcile, audit };
}
