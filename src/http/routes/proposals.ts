import { Router, type Request } from 'express';
import { z } from 'zod';
import { InputError, NotFoundError, RegentError } from '../../errors/errors';
import type { Principal } from '../../people/types';
import { can, type Capability } from '../../policy/roles';
import type { ProposalService } from '../../proposals/service';
import { AuditSchema, PROPOSAL_STATUSES, type Proposal } from '../../proposals/types';

export interface ProposalRouteDeps {
  proposals: ProposalService;
  /** Ids of the twins a user owns (executives see only their own twins' proposals). */
  twinsOwnedBy(owner: string): Promise<string[]>;
  twinOwner(twinId: string): Promise<string | undefined>;
}

function principal(req: Request): Principal {
  const p = (req as Request & { principal?: Principal }).principal;
  if (!p) throw new RegentError('unauthenticated', 'an API key is required (Authorization: Bearer …)');
  return p;
}

function requireUser(req: Request, capability: Capability, attrs: Record<string, unknown> = {}): Extract<Principal, { kind: 'user' }> {
  const p = principal(req);
  if (p.kind !== 'user') throw new RegentError('forbidden', `a twin cannot ${capability.replace('.', ' ')}`);
  if (!can({ id: p.id, roles: p.appRoles }, capability, attrs)) throw new RegentError('forbidden', `${p.ref} lacks ${capability}`);
  return p;
}

const ListQuery = z
  .object({
    status: z.enum(PROPOSAL_STATUSES).optional(),
    audit: z.enum(['pending', 'passed', 'flagged']).optional(),
    limit: z.coerce.number().int().min(1).max(500).optional(),
    before: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();

/** What a proposal looks like over HTTP: DESIGN.md's {"id","status","decision"} and the rest. */
function view(p: Proposal) {
  return {
    id: p.id,
    status: p.status,
    decision: {
      outcome: p.decision.outcome,
      reasons: p.decision.reasons,
      policyVersion: p.decision.policyVersion,
      authority: p.decision.authority,
      approval: p.decision.approval && {
        approvers: p.decision.approval.approvers,
        quorum: p.decision.approval.quorum,
        expiresAt: p.decision.approval.expiresAt,
      },
    },
    twin: p.twin,
    action: p.action,
    args: p.args,
    argsHash: p.argsHash,
    rationale: p.rationale,
    idempotencyKey: p.idempotencyKey,
    approval: p.approval,
    expiresAt: p.expiresAt,
    attempts: p.attempts,
    result: p.result,
    error: p.error,
    audit: p.audit,
    createdAt: p.createdAt,
    updatedAt: p.updatedAt,
  };
}

export function createProposalRouter(deps: ProposalRouteDeps): Router {
  const r = Router();

  /** Who may see a proposal: its twin, its twin's owner, approvers, auditors, admins. */
  async function assertVisible(req: Request, p: Proposal): Promise<void> {
    const who = principal(req);
    if (who.kind === 'twin') {
      if (who.id !== p.twin) throw new NotFoundError(`proposal ${p.id} does not exist`);
      return;
    }
    const actor = { id: who.id, roles: who.appRoles };
    const owner = await deps.twinOwner(p.twin);
    if (can(actor, 'proposal.read', { owner }) || can(actor, 'journal.audit') || can(actor, 'journal.read')) return;
    throw new RegentError('forbidden', `${who.ref} may not read proposal ${p.id}`);
  }

  r.post('/v1/proposals', async (req, res) => {
    const who = principal(req);
    if (who.kind !== 'twin') throw new RegentError('forbidden', 'only a twin proposes actions, with its own API key');
    const { proposal, created } = await deps.proposals.create(who.id, req.body);
    if (!created) res.setHeader('Idempotent-Replayed', 'true');
    res.status(created ? 201 : 200).json(view(proposal));
  });

  r.get('/v1/proposals', async (req, res) => {
    const q = ListQuery.safeParse(req.query);
    if (!q.success) throw new InputError(`query ${q.error.issues[0]!.path.join('.')}: ${q.error.issues[0]!.message}`);
    const who = principal(req);
    let twins: string[] | undefined;
    if (who.kind === 'twin') twins = [who.id];
    else {
      const actor = { id: who.id, roles: who.appRoles };
      const seesAll = can(actor, 'proposal.decide') || can(actor, 'journal.audit') || can(actor, 'journal.read');
      if (!seesAll) {
        if (!can(actor, 'proposal.read', { owner: who.ref })) throw new RegentError('forbidden', `${who.ref} may not list proposals`);
        twins = await deps.twinsOwnedBy(who.ref);
      }
    }
    let items = await deps.proposals.list({ status: q.data.status, twins, limit: q.data.limit, before: q.data.before });
    if (q.data.audit) items = items.filter((p) => p.audit === q.data.audit);
    res.json({ proposals: items.map(view), nextCursor: items.length ? items[items.length - 1]!.createdAt : null });
  });

  r.get('/v1/proposals/:id', async (req, res) => {
    const p = await deps.proposals.get(String(req.params.id));
    await assertVisible(req, p);
    const [reviews, preview] = await Promise.all([
      deps.proposals.reviews(p.id),
      principal(req).kind === 'user' ? deps.proposals.preview(p) : null,
    ]);
    res.json({ ...view(p), reviews, preview });
  });

  r.post('/v1/proposals/:id/decisions', async (req, res) => {
    const who = principal(req);
    if (who.kind !== 'user') throw new RegentError('forbidden', 'a twin never decides on proposals');
    requireUser(req, 'proposal.decide');
    const p = await deps.proposals.review(String(req.params.id), { id: who.id, roles: who.roles }, req.body);
    res.json(view(p));
  });

  r.post('/v1/proposals/:id/cancel', async (req, res) => {
    const who = principal(req);
    const body = z
      .object({ reason: z.string().trim().min(1).max(2000) })
      .strict()
      .safeParse(req.body ?? {});
    if (!body.success) throw new InputError(`reason: ${body.error.issues[0]!.message}`);
    const p = await deps.proposals.get(String(req.params.id));
    if (who.kind === 'twin') {
      if (who.id !== p.twin) throw new NotFoundError(`proposal ${p.id} does not exist`);
    } else {
      const owner = await deps.twinOwner(p.twin);
      requireUser(req, 'twin.update', { owner });
    }
    res.json(view(await deps.proposals.cancel(p.id, who.ref, body.data.reason)));
  });

  r.post('/v1/proposals/:id/audit', async (req, res) => {
    const who = requireUser(req, 'journal.audit');
    const body = AuditSchema.safeParse(req.body);
    if (!body.success) throw new InputError(`${body.error.issues[0]!.path.join('.') || 'body'}: ${body.error.issues[0]!.message}`);
    res.json(view(await deps.proposals.audit(String(req.params.id), who.ref, body.data.verdict, body.data.comment)));
  });

  return r;
}
