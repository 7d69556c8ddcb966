import { Router } from 'express';
import { z } from 'zod';
import { parseInput } from '../../errors/input';
import { NewUserSchema, TextSchema } from '../../people/types';
import { authorize } from '../auth';
import type { ApiDeps } from '../app';

const NewKeyBody = z.object({ label: TextSchema(200).optional() }).strict();

/** Admins manage people and their keys. Keys are in a response once, when made. */
export function userRoutes({ people }: ApiDeps): Router {
  const r = Router();

  r.post('/v1/users', authorize('user.manage'), async (req, res) => {
    const body = parseInput(NewUserSchema, req.body, 'body');
    const { user, keyId, apiKey } = await people.addUser(body, req.principal.ref);
    res.status(201).json({ ...user, keyId, apiKey });
  });

  r.get('/v1/users', authorize('user.manage'), async (_req, res) => {
    const [users, keys] = await Promise.all([people.listUsers(), people.listKeys()]);
    res.json({ users: users.map((u) => ({ ...u, keys: keys.filter((k) => k.principal === `user:${u.id}`) })) });
  });

  r.post('/v1/users/:id/keys', authorize('user.manage'), async (req, res) => {
    const body = parseInput(NewKeyBody, req.body ?? {}, 'body');
    const { keyId, apiKey, key } = await people.createKey(`user:${req.params.id}`, body.label, req.principal.ref);
    res.status(201).json({ ...key, keyId, apiKey });
  });

  r.delete('/v1/keys/:id', authorize('user.manage'), async (req, res) => {
    res.json(await people.revokeKey(String(req.params.id), req.principal.ref));
  });

  return r;
}
