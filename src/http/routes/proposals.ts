import type { Request } from 'express';
import { z } from 'zod';
import { NotFoundError, RegentError } from '../../errors/errors';
import { can } from '../../policy/roles';
import { AuditSchema, CreateProposalSchema, PROPOSAL_STATUSES, ReconcileSchema, ReviewSchema, type Proposal } from '../../proposals/types';
import type { ApiDeps } from '../app';
import { check } from '../auth';
import { endpoint, implement, reply, type ApiModule } from '../registry';
import { ProposalViewSchema, ReviewSchemaOut } from '../schemas';

const ListQuery = z
  .object({
    status: z.enum(PROPOSAL_STATUSES).optional(),
    audit: z.enum(['pending', 'passed', 'flagged']).optional().describe('Post-hoc audit state of execute-mode actions'),
    limit: z.coerce.number().int().min(1).max(500).optional().describe('At most this many (default 100)'),
    before: z.iso.datetime({ offset: true }).optional().describe("A previous page's nextCursor: proposals created before it"),
  })
  .strict();

const ProposalParams = z.object({ id: z.string().describe('The proposal id (a UUID)') }).strict();
const CancelBody = z.object({ reason: z.string().trim().min(1).max(2000) }).strict();

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What a proposal looks like over HTTP: DESIGN.md's {"id","status","decision"} and the rest. */
function view(p: Proposal, owner: string | null = null) {
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
    owner,
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
    context: p.context,
    inDoubt: p.inDoubt,
    reconciliation: p.reconciliation,
    createdAt: p.createdAt,
    updatedAt: p.updatedAt,
  };
}

const VISIBLE = 'a twin: its own proposals; executives: their own twins’ proposals';

const endpoints = {
  create: endpoint({
    id: 'createProposal',
    method: 'POST',
    path: '/v1/proposals',
    tag: 'Proposals',
    summary: 'A twin requests an action',
    description:
      'Policy decides at once (deny, propose, approve or execute, capped by the twin’s mode). The same idempotencyKey again returns the same proposal (200, header Idempotent-Replayed); reusing it for a different request is a conflict. Every refused request is journaled (proposal.refused).',
    access: { capabilities: [], twin: true },
    body: CreateProposalSchema,
    bodyCheckedBy: 'service',
    responses: {
      201: { description: 'Recorded, with the decision', schema: ProposalViewSchema },
      200: { description: 'The proposal made earlier with this idempotency key', schema: ProposalViewSchema },
    },
    errors: { 409: 'The idempotency key was used for a different request', 503: 'Storage or policy unavailable: nothing was done' },
  }),
  list: endpoint({
    id: 'listProposals',
    method: 'GET',
    path: '/v1/proposals',
    tag: 'Proposals',
    summary: 'Proposals, newest first (the approver inbox with status=pending_approval)',
    access: { capabilities: ['proposal.read', 'journal.read'], twin: true, scope: VISIBLE },
    query: ListQuery,
    responses: {
      200: {
        description: 'A page of proposals; pass nextCursor as before for the next',
        schema: z.object({ proposals: z.array(ProposalViewSchema), nextCursor: z.string().nullable() }),
      },
    },
  }),
  get: endpoint({
    id: 'getProposal',
    method: 'GET',
    path: '/v1/proposals/:id',
    tag: 'Proposals',
    summary: 'One proposal, with its reviews and (for people) the connector’s preview of the effect',
    access: { capabilities: ['proposal.read', 'journal.read'], twin: true, scope: VISIBLE },
    params: ProposalParams,
    responses: {
      200: {
        description: 'The proposal',
        schema: ProposalViewSchema.extend({
          reviews: z.array(ReviewSchemaOut),
          preview: z.object({ summary: z.string(), details: z.record(z.string(), z.unknown()) }).nullable(),
        }),
      },
    },
    errors: { 404: 'No such proposal (or not one the caller may see)' },
  }),
  decide: endpoint({
    id: 'decideProposal',
    method: 'POST',
    path: '/v1/proposals/:id/decisions',
    tag: 'Proposals',
    summary: 'Approve, reject (with a reason), edit (new args, decided again) or comment',
    description:
      'Who may approve is policy: the approval tier names roles or people; the twin’s owner only where named; quorum counts distinct people.',
    access: { capabilities: ['proposal.decide'] },
    params: ProposalParams,
    body: ReviewSchema,
    bodyCheckedBy: 'service',
    responses: { 200: { description: 'The proposal after the decision', schema: ProposalViewSchema } },
    errors: {
      403: 'Not a person the approval tier names (an executive decides only where named), or beyond their own authority',
      404: 'No such proposal',
      409: 'Not pending approval, expired, or already approved by this person',
    },
  }),
  cancel: endpoint({
    id: 'cancelProposal',
    method: 'POST',
    path: '/v1/proposals/:id/cancel',
    tag: 'Proposals',
    summary: 'Withdraw a proposal that has not run',
    access: { capabilities: ['twin.update'], twin: true, scope: 'a twin: its own; executives: their own twins’' },
    params: ProposalParams,
    body: CancelBody,
    responses: { 200: { description: 'The cancelled proposal', schema: ProposalViewSchema } },
    errors: { 404: 'No such proposal', 409: 'It already ran or ended' },
  }),
  reconcile: endpoint({
    id: 'reconcileProposal',
    method: 'POST',
    path: '/v1/proposals/:id/reconcile',
    tag: 'Proposals',
    summary: 'Settle an action in doubt: it took effect (executed) or it did not (not_executed), with evidence',
    description:
      'A call to a business system was cut off and the operation is not idempotent, so Regent cannot know whether it took effect; its amount stays reserved until a person settles it. executed commits the reservation, not_executed releases it (the proposal becomes failed). Journaled with the person and the evidence; once only.',
    access: { capabilities: ['proposal.reconcile'], scope: 'executives: their own twins’; admins: any; never a twin' },
    params: ProposalParams,
    body: ReconcileSchema,
    bodyCheckedBy: 'service',
    responses: { 200: { description: 'The settled proposal', schema: ProposalViewSchema } },
    errors: {
      403: 'Not the twin’s owner or an admin (a twin never reconciles)',
      404: 'No such proposal',
      409: 'Not in doubt, or already reconciled',
    },
  }),
  audit: endpoint({
    id: 'auditProposal',
    method: 'POST',
    path: '/v1/proposals/:id/audit',
    tag: 'Proposals',
    summary: 'Post-hoc audit of an execute-mode action: passed or flagged',
    access: { capabilities: ['journal.audit'] },
    params: ProposalParams,
    body: AuditSchema,
    responses: { 200: { description: 'The audited proposal', schema: ProposalViewSchema } },
    errors: { 404: 'No such proposal', 409: 'Not awaiting audit' },
  }),
};

/** The governed action pipeline over HTTP; served where the server runs it (with policies). */
export const proposalApi: ApiModule = {
  name: 'proposals',
  endpoints: Object.values(endpoints),
  available: (deps) => deps.proposals !== undefined,
  bind(deps: ApiDeps) {
    const proposals = deps.proposals!;
    const twins = deps.twins;
    const twinOwner = async (id: string) => (await twins.get(id).catch(() => undefined))?.owner ?? null;
    /** The views of `items`, each with its twin's owner (the twins read in one statement). */
    async function views(items: Proposal[]) {
      const owners = await twins.getManyForAction([...new Set(items.map((p) => p.twin))]);
      return items.map((p) => view(p, owners.get(p.twin)?.owner ?? null));
    }

    async function load(id: string): Promise<Proposal> {
      if (!UUID.test(id)) throw new NotFoundError(`proposal ${id} does not exist`);
      return proposals.get(id);
    }

    /** Who may see a proposal: its twin, its twin's owner (`owner`), approvers, auditors, admins. */
    function assertVisible(req: Request, p: Proposal, owner: string | null): void {
      const who = req.principal;
      if (who.kind === 'twin') {
        if (who.id !== p.twin) throw new NotFoundError(`proposal ${p.id} does not exist`);
        return;
      }
      const actor = { id: who.id, roles: who.appRoles };
      if (can(actor, 'proposal.read', { owner }) || can(actor, 'journal.audit') || can(actor, 'journal.read')) return;
      throw new RegentError('forbidden', `${who.ref} may not read proposal ${p.id} (not a proposal of their own twins)`, {
        capability: 'proposal.read',
      });
    }

    return [
      implement(endpoints.create, async ({ body }, req, res) => {
        const who = req.principal;
        const { proposal, created } = await proposals.create(who.id, body);
        if (!created) res.setHeader('Idempotent-Replayed', 'true');
        // A twin's key carries its owner (read when the key was checked): no second lookup.
        return reply(created ? 201 : 200, view(proposal, who.kind === 'twin' ? who.owner : await twinOwner(proposal.twin)));
      }),

      implement(endpoints.list, async ({ query }, req) => {
        const who = req.principal;
        let ids: string[] | undefined;
        if (who.kind === 'twin') ids = [who.id];
        else {
          const actor = { id: who.id, roles: who.appRoles };
          const seesAll = can(actor, 'proposal.decide') || can(actor, 'journal.audit') || can(actor, 'journal.read');
          if (!seesAll) ids = (await twins.ownedBy(who.ref)).map((t) => t.id);
        }
        let items = await proposals.list({ status: query.status, twins: ids, limit: query.limit, before: query.before });
        if (query.audit) items = items.filter((p) => p.audit === query.audit);
        return { proposals: await views(items), nextCursor: items.length ? items[items.length - 1]!.createdAt : null };
      }),

      implement(endpoints.get, async ({ params }, req) => {
        const p = await load(params.id);
        const owner = await twinOwner(p.twin);
        assertVisible(req, p, owner);
        const [reviews, preview] = await Promise.all([proposals.reviews(p.id), req.principal.kind === 'user' ? proposals.preview(p) : null]);
        return { ...view(p, owner), reviews, preview };
      }),

      implement(endpoints.decide, async ({ params, body }, req) => {
        const p = await load(params.id);
        const owner = await twinOwner(p.twin);
        // Approvers decide any proposal; an executive their own twins' (where a tier names them).
        const who = check(req, 'proposal.decide', { owner });
        return view(await proposals.review(p.id, { id: who.id, roles: who.roles }, body), owner);
      }),

      implement(endpoints.cancel, async ({ params, body }, req) => {
        const who = req.principal;
        const p = await load(params.id);
        const owner = await twinOwner(p.twin);
        if (who.kind === 'twin') {
          if (who.id !== p.twin) throw new NotFoundError(`proposal ${p.id} does not exist`);
        } else {
          check(req, 'twin.update', { owner });
        }
        return view(await proposals.cancel(p.id, who.ref, body.reason), owner);
      }),

      implement(endpoints.reconcile, async ({ params, body }, req) => {
        const p = await load(params.id);
        const owner = await twinOwner(p.twin);
        const who = check(req, 'proposal.reconcile', { owner });
        return view(await proposals.reconcile(p.id, `user:${who.id}`, body), owner);
      }),

      implement(endpoints.audit, async ({ params, body }, req) => {
        const who = check(req, 'journal.audit');
        const p = await load(params.id);
        return view(await proposals.audit(p.id, who.ref, body.verdict, body.comment), await twinOwner(p.twin));
      }),
    ];
  },
};
