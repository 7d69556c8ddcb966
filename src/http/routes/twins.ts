import { Router } from 'express';
import { z } from 'zod';
import { parseInput } from '../../errors/input';
import { IdSchema } from '../../people/types';
import { ModeSchema, NewTwinSchema } from '../../twins/types';
import { authorize, check, checkSome } from '../auth';
import type { ApiDeps } from '../app';

const ModeBody = z.object({ mode: ModeSchema }).strict();
const KillSwitchBody = z.object({ engaged: z.boolean(), twin: IdSchema.optional() }).strict();

/** Twins, their modes and the kill switches: executives for their own twins, admins for all. */
export function twinRoutes({ twins }: ApiDeps): Router {
  const r = Router();
  const ownerOf = async (id: string) => ({ owner: (await twins.get(id)).owner });

  r.post('/v1/twins', async (req, res) => {
    checkSome(req, 'twin.create');
    const body = parseInput(NewTwinSchema, req.body, 'body');
    check(req, 'twin.create', { owner: body.owner });
    const { twin, keyId, apiKey } = await twins.create(body, req.principal.ref);
    res.status(201).json({ ...twin, keyId, apiKey });
  });

  r.get('/v1/twins', async (req, res) => {
    checkSome(req, 'twin.read');
    res.json({ twins: await twins.list(req.principal) });
  });

  r.get(
    '/v1/twins/:id',
    authorize('twin.read', (req) => ownerOf(String(req.params.id))),
    async (req, res) => {
      res.json(await twins.get(String(req.params.id)));
    },
  );

  r.put(
    '/v1/twins/:id/mode',
    authorize('twin.setMode', (req) => ownerOf(String(req.params.id))),
    async (req, res) => {
      const { mode } = parseInput(ModeBody, req.body, 'body');
      res.json(await twins.setMode(String(req.params.id), mode, req.principal.ref));
    },
  );

  r.post('/v1/kill-switch', async (req, res) => {
    checkSome(req, 'killSwitch.engageTwin');
    const body = parseInput(KillSwitchBody, req.body, 'body');
    if (body.twin !== undefined) check(req, 'killSwitch.engageTwin', await ownerOf(body.twin));
    else check(req, 'killSwitch.engageGlobal');
    const changed = await twins.setKillSwitch(body, req.principal.ref);
    res.json({ ...changed, state: await twins.killSwitch(req.principal) });
  });

  r.get('/v1/kill-switch', authorize('killSwitch.read'), async (req, res) => {
    res.json(await twins.killSwitch(req.principal));
  });

  return r;
}
