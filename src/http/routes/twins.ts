import { z } from 'zod';
import { IdSchema } from '../../people/types';
import { ModeSchema, NewTwinSchema } from '../../twins/types';
import type { ApiDeps } from '../app';
import { check } from '../auth';
import { endpoint, implement, type ApiModule } from '../registry';
import { IssuedKeyFields, KillSwitchStateSchema, TwinSchema } from '../schemas';

const ModeBody = z.object({ mode: ModeSchema }).strict();
const KillSwitchBody = z
  .object({ engaged: z.boolean(), twin: IdSchema.optional().describe('One twin; leave out for the global switch (admins)') })
  .strict();
const TwinParams = z.object({ id: z.string().describe('The twin id') }).strict();

const OWN = 'executives: their own twins only';

const endpoints = {
  create: endpoint({
    id: 'createTwin',
    method: 'POST',
    path: '/v1/twins',
    tag: 'Twins',
    summary: 'Register a twin; its own API key comes back once',
    description: 'The authority must delegate to twin:<id>, and its delegator must be the owner.',
    access: { capabilities: ['twin.create'], scope: `${OWN} (owner must be the caller)` },
    body: NewTwinSchema,
    responses: { 201: { description: 'The twin and its key', schema: TwinSchema.extend(IssuedKeyFields) } },
    errors: { 409: 'A twin with that id exists' },
  }),
  list: endpoint({
    id: 'listTwins',
    method: 'GET',
    path: '/v1/twins',
    tag: 'Twins',
    summary: 'The twins the caller may see',
    access: { capabilities: ['twin.read'], scope: OWN },
    responses: { 200: { description: 'Twins', schema: z.object({ twins: z.array(TwinSchema) }) } },
  }),
  get: endpoint({
    id: 'getTwin',
    method: 'GET',
    path: '/v1/twins/:id',
    tag: 'Twins',
    summary: 'One twin',
    access: { capabilities: ['twin.read'], scope: OWN },
    params: TwinParams,
    responses: { 200: { description: 'The twin', schema: TwinSchema } },
    errors: { 404: 'No such twin' },
  }),
  setMode: endpoint({
    id: 'setTwinMode',
    method: 'PUT',
    path: '/v1/twins/:id/mode',
    tag: 'Twins',
    summary: "Change a twin's mode (journaled with from and to)",
    access: { capabilities: ['twin.setMode'], scope: OWN },
    params: TwinParams,
    body: ModeBody,
    responses: { 200: { description: 'The twin', schema: TwinSchema } },
    errors: { 404: 'No such twin' },
  }),
  killSwitch: endpoint({
    id: 'setKillSwitch',
    method: 'POST',
    path: '/v1/kill-switch',
    tag: 'Twins',
    summary: 'Engage or release the kill switch, for all twins or one',
    description: 'Stops execution at once (also of approved work). Every press is journaled, also one that changes nothing.',
    access: { capabilities: ['killSwitch.engageTwin'], scope: 'executives: their own twins; the global switch: admins' },
    body: KillSwitchBody,
    responses: {
      200: {
        description: 'What was pressed, and the state now',
        schema: z.object({ engaged: z.boolean(), twin: z.string().optional(), previous: z.boolean(), state: KillSwitchStateSchema }),
      },
    },
    errors: { 404: 'No such twin' },
  }),
  killSwitchState: endpoint({
    id: 'getKillSwitch',
    method: 'GET',
    path: '/v1/kill-switch',
    tag: 'Twins',
    summary: 'Whether execution is halted (globally, and which twins)',
    access: { capabilities: ['killSwitch.read'] },
    responses: { 200: { description: 'The state', schema: KillSwitchStateSchema } },
  }),
};

/** Twins, their modes and the kill switches: executives for their own twins, admins for all. */
export const twinApi: ApiModule = {
  name: 'twins',
  endpoints: Object.values(endpoints),
  bind({ twins }: ApiDeps) {
    const ownerOf = async (id: string) => ({ owner: (await twins.get(id)).owner });
    return [
      implement(endpoints.create, async ({ body }, req) => {
        check(req, 'twin.create', { owner: body.owner });
        const { twin, keyId, apiKey } = await twins.create(body, req.principal.ref);
        return { ...twin, keyId, apiKey };
      }),
      implement(endpoints.list, async (_input, req) => ({ twins: await twins.list(req.principal) })),
      implement(endpoints.get, async ({ params }, req) => {
        check(req, 'twin.read', await ownerOf(params.id));
        return twins.get(params.id);
      }),
      implement(endpoints.setMode, async ({ params, body }, req) => {
        check(req, 'twin.setMode', await ownerOf(params.id));
        return twins.setMode(params.id, body.mode, req.principal.ref);
      }),
      implement(endpoints.killSwitch, async ({ body }, req) => {
        if (body.twin !== undefined) check(req, 'killSwitch.engageTwin', await ownerOf(body.twin));
        else check(req, 'killSwitch.engageGlobal');
        const changed = await twins.setKillSwitch(body, req.principal.ref);
        return { ...changed, state: await twins.killSwitch(req.principal) };
      }),
      implement(endpoints.killSwitchState, async (_input, req) => twins.killSwitch(req.principal)),
    ];
  },
};
