import type { AppendInput } from '../journal/types';
import type { ProposalContext } from './context';
import { subject, transitionEntry } from './entries';
import type { Proposal } from './types';

/** The sweeper: expiry of pending approvals and approved work, and escalation before expiry. */
export function createSweeper(ctx: ProposalContext) {
  const { deps } = ctx;
  const { store, journal, policy } = deps;

  /**
   * Expires pending approvals and approved work whose time ran out; a pending approval with an
   * escalation target is escalated once (another window, the target added) before it expires.
   */
  async function sweep(): Promise<number> {
    const escalated: Proposal[] = [];
    const n = await store.transaction(async (tx) => {
      const due = await store.lockExpired(tx, 100);
      const entries: AppendInput[] = [];
      for (const p of due) {
        const a = p.approval;
        if (p.status === 'pending_approval' && a && a.escalateTo.length > 0 && !a.escalated) {
          const window = Math.max(Date.parse(a.expiresAt) - Date.parse(p.createdAt), 60_000);
          const expiresAt = new Date(Date.now() + window).toISOString();
          escalated.push(await store.update(tx, p.id, { approval: { ...a, escalated: true, expiresAt }, expiresAt }));
          entries.push({
            kind: 'proposal.escalated',
            actor: 'system',
            subject: subject(p.id),
            data: { to: a.escalateTo, expiresAt },
            policyVersion: p.policyVersion,
          });
          continue;
        }
        await store.update(tx, p.id, { status: 'expired', error: `expired at ${p.expiresAt}` });
        await policy.release(subject(p.id), tx);
        entries.push(
          transitionEntry(p, 'expired', 'system', `no ${p.status === 'approved' ? 'execution' : 'decision'} before ${p.expiresAt}`),
        );
      }
      await journal.appendWithin(tx, entries);
      return due.length;
    });
    for (const p of escalated) deps.onPending?.(p, 'escalated');
    return n;
  }

  return { sweep };
}
