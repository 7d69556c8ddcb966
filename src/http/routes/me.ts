import express from 'express';
import { z } from 'zod';
import { CAPABILITIES, canSome, type Capability } from '../../policy/roles';
import type { ApiDeps, RouteGroup } from '../app';
import { actorOf } from '../auth';
import { bindModule, endpoint, implement, mountEndpoints, type ApiModule } from '../registry';

const ALL_CAPABILITIES = Object.keys(CAPABILITIES) as Capability[];

const MeSchema = z
  .object({
    kind: z.enum(['user', 'twin']),
    id: z.string(),
    ref: z.string().describe('user:<id> or twin:<id>: how the journal names the caller'),
    name: z.string().optional().describe('A person’s display name'),
    owner: z.string().optional().describe('For a twin: the executive it works for (user:<id>)'),
    roles: z.array(z.string()).describe('Regent roles and business roles (a twin has none)'),
    appRoles: z.array(z.string()).optional().describe('The Regent roles among them: executive, approver, auditor, admin'),
    keyId: z.string().describe('The id of the key this request was made with'),
    capabilities: z
      .array(z.enum(ALL_CAPABILITIES as [Capability, ...Capability[]]))
      .describe('What the caller may do (for some resource); a twin’s key has none of these'),
  })
  .meta({ id: 'Me' });

const endpoints = {
  me: endpoint({
    id: 'getMe',
    method: 'GET',
    path: '/v1/me',
    tag: 'People',
    summary: 'Who the key belongs to, and what it may do',
    description:
      'Any valid key may ask about itself, a twin’s included. The web console adapts its views to the answer; scripts use it to check a key.',
    // Everyone with a role may read the kill switch, so any signed-in person passes; twins too.
    access: { capabilities: ['killSwitch.read'], twin: true, scope: 'any valid key, a twin’s included' },
    responses: { 200: { description: 'The caller', schema: MeSchema } },
  }),
};

/** GET /v1/me (documented in SYSTEM_ENDPOINTS of ../openapi.ts). */
const meApi: ApiModule = {
  name: 'me',
  endpoints: Object.values(endpoints),
  bind: ({ people }: ApiDeps) => [
    implement(endpoints.me, async (_input, req) => {
      const p = req.principal;
      if (p.kind === 'twin') return { kind: 'twin', id: p.id, ref: p.ref, owner: p.owner, roles: [], keyId: p.keyId, capabilities: [] };
      const user = await people.getUser(p.id);
      const actor = actorOf(p);
      return {
        kind: 'user',
        id: p.id,
        ref: p.ref,
        name: user.name,
        roles: user.roles,
        appRoles: [...p.appRoles],
        keyId: p.keyId,
        capabilities: ALL_CAPABILITIES.filter((c) => canSome(actor, c)),
      };
    }),
  ],
};

/** The same, as a route group for servers that mount groups. */
export const meRoutes: RouteGroup = (deps) => {
  const r = express.Router();
  mountEndpoints(r, bindModule(meApi, deps));
  return r;
};
