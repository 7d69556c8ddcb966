import type { Request } from 'express';
import { z } from 'zod';
import { ForbiddenError, NotFoundError } from '../../errors/errors';
import { CancelObjectiveSchema, CreateObjectiveSchema, ListObjectivesQuery, ObjectiveDetailSchema, ObjectiveSchema, PlaybookViewSchema } from '../../objectives/types';
import { can, CAPABILITIES, type Capability } from '../../policy/roles';
import type { ApiDeps } from '../app';
import { actorOf, check } from '../auth';
import { endpoint, implement, reply, type ApiModule } from '../registry';

const TwinParams = z.object({ id: z.string().describe('The twin id') }).strict();
const ObjectiveParams = z.object({ id: z.string().describe('The objective id (a UUID)') }).strict();
const ALL_CAPABILITIES = Object.keys(CAPABILITIES) as Capability[];

const endpoints = {
  assign: endpoint({
    id: 'assignObjective',
    method: 'POST',
    path: '/v1/twins/:id/objectives',
    tag: 'Objectives',
    summary: 'Give a twin an objective: a playbook with params, or free text for a language model',
    description:
      'By the twin’s owner. A playbook objective runs with no model; free text needs REGENT_MODEL (without one it is refused naming the playbooks). Constraints: deadline, stepBudget, spendCeiling (in the authority’s currency). The run starts at once; every request it makes goes through policy. Refusals are journaled (objective.refused).',
    access: { capabilities: ['objective.assign'], scope: 'executives: their own twins only' },
    params: TwinParams,
    body: CreateObjectiveSchema,
    bodyCheckedBy: 'service',
    responses: { 201: { description: 'Queued; the run starts at once', schema: ObjectiveSchema } },
    errors: { 404: 'No such twin', 409: 'The twin cannot act now (its authority is expired or revoked)' },
  }),
  list: endpoint({
    id: 'listObjectives',
    method: 'GET',
    path: '/v1/twins/:id/objectives',
    tag: 'Objectives',
    summary: 'A twin’s objectives, newest first',
    access: { capabilities: ['objective.assign', 'twin.read'], scope: 'executives: their own twins only' },
    params: TwinParams,
    query: ListObjectivesQuery,
    responses: { 200: { description: 'Objectives', schema: z.object({ objectives: z.array(ObjectiveSchema), nextCursor: z.string().nullable() }) } },
    errors: { 404: 'No such twin' },
  }),
  get: endpoint({
    id: 'getObjective',
    method: 'GET',
    path: '/v1/objectives/:id',
    tag: 'Objectives',
    summary: 'An objective: status, summary, its steps and the proposals they became',
    access: {
      capabilities: ['objective.assign', 'twin.read', 'journal.read', 'journal.audit'],
      twin: true,
      scope: 'executives: their own twins’ objectives; a twin: its own',
    },
    params: ObjectiveParams,
    responses: { 200: { description: 'The objective', schema: ObjectiveDetailSchema } },
    errors: { 404: 'No such objective' },
  }),
  cancel: endpoint({
    id: 'cancelObjective',
    method: 'POST',
    path: '/v1/objectives/:id/cancel',
    tag: 'Objectives',
    summary: 'Stop an objective; its requests that have not run are withdrawn',
    access: { capabilities: ['objective.assign', 'twin.update'], scope: 'the twin’s owner, or an admin' },
    params: ObjectiveParams,
    body: CancelObjectiveSchema,
    bodyOptional: true,
    responses: { 200: { description: 'The objective, cancelled', schema: ObjectiveSchema } },
    errors: { 404: 'No such objective', 409: 'It already finished' },
  }),
  playbooks: endpoint({
    id: 'listPlaybooks',
    method: 'GET',
    path: '/v1/playbooks',
    tag: 'Objectives',
    summary: 'The playbooks an objective can name, with their params as JSON Schema (for forms)',
    access: { capabilities: ALL_CAPABILITIES, scope: 'anyone signed in' },
    responses: {
      200: {
        description: 'Playbooks, and whether free-text objectives can be planned (a model is configured)',
        schema: z.object({ playbooks: z.array(PlaybookViewSchema), freeText: z.boolean() }),
      },
    },
  }),
};

/** Objectives and playbooks: executives for their own twins; admins may look and cancel. */
export const objectiveApi: ApiModule = {
  name: 'objectives',
  endpoints: Object.values(endpoints),
  available: (deps) => deps.objectives !== undefined,
  bind(deps: ApiDeps) {
    const objectives = deps.objectives!;
    const { twins } = deps;
    const ownerOf = async (id: string) => ({ owner: (await twins.get(id)).owner });

    /** Who may see an objective: its twin, the twin's owner, admins, auditors. */
    function assertVisible(req: Request, o: { id: string; twin: string; owner: string }): void {
      const p = req.principal;
      if (p.kind === 'twin') {
        if (p.id !== o.twin) throw new NotFoundError(`objective ${o.id} does not exist`);
        return;
      }
      const actor = actorOf(p);
      const attrs = { owner: o.owner };
      if (can(actor, 'objective.assign', attrs) || can(actor, 'twin.read', attrs) || can(actor, 'journal.read') || can(actor, 'journal.audit')) return;
      throw new ForbiddenError(`${p.ref} may not see objective ${o.id} (it belongs to a twin of ${o.owner})`, { capability: 'objective.assign' });
    }

    return [
      implement(endpoints.assign, async ({ params, body }, req) => {
        check(req, 'objective.assign', await ownerOf(params.id));
        const o = await objectives.create(params.id, body, req.principal.ref);
        return reply(201, o, { Location: `/v1/objectives/${o.id}` });
      }),
      implement(endpoints.list, async ({ params, query }, req) => {
        const attrs = await ownerOf(params.id);
        const p = req.principal;
        if (p.kind !== 'user' || !(can(actorOf(p), 'objective.assign', attrs) || can(actorOf(p), 'twin.read', attrs))) check(req, 'objective.assign', attrs);
        const list = await objectives.list(params.id, query);
        return { objectives: list, nextCursor: list.length === (query.limit ?? 50) ? list[list.length - 1]!.createdAt : null };
      }),
      implement(endpoints.get, async ({ params }, req) => {
        const o = await objectives.get(params.id);
        assertVisible(req, o);
        return objectives.detail(o.id);
      }),
      implement(endpoints.cancel, async ({ params, body }, req) => {
        const o = await objectives.get(params.id);
        const actor = actorOf(req.principal as Extract<typeof req.principal, { kind: 'user' }>);
        if (!can(actor, 'objective.assign', { owner: o.owner })) check(req, 'twin.update', { owner: o.owner });
        return objectives.cancel(o.id, req.principal.ref, body.reason);
      }),
      implement(endpoints.playbooks, async () => ({ playbooks: objectives.playbooks(), freeText: objectives.hasModel() })),
    ];
  },
};

