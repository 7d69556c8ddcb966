import { z } from 'zod';
import { NewUserSchema, TextSchema } from '../../people/types';
import type { ApiDeps } from '../app';
import { endpoint, implement, type ApiModule } from '../registry';
import { ApiKeyInfoSchema, IssuedKeyFields, UserSchema } from '../schemas';

const NewKeyBody = z.object({ label: TextSchema(200).optional().describe('What the key is for, e.g. "laptop"') }).strict();
const UserParams = z.object({ id: z.string().describe('The user id') }).strict();
const KeyParams = z.object({ id: z.string().describe('The key id (the 12 hex digits after rgt_)') }).strict();

const endpoints = {
  create: endpoint({
    id: 'createUser',
    method: 'POST',
    path: '/v1/users',
    tag: 'People',
    summary: 'Add a user, with their first API key',
    description: 'Roles: at least one of executive, approver, auditor, admin; others are business roles that approval tiers name (role:cfo). The key is in this response only.',
    access: { capabilities: ['user.manage'] },
    body: NewUserSchema,
    responses: { 201: { description: 'The user and their key', schema: UserSchema.extend(IssuedKeyFields) } },
    errors: { 409: 'A user with that id exists' },
  }),
  list: endpoint({
    id: 'listUsers',
    method: 'GET',
    path: '/v1/users',
    tag: 'People',
    summary: 'Users with their keys (never the secrets), including each key’s last use',
    access: { capabilities: ['user.manage'] },
    responses: {
      200: { description: 'Every user', schema: z.object({ users: z.array(UserSchema.extend({ keys: z.array(ApiKeyInfoSchema) })) }) },
    },
  }),
  createKey: endpoint({
    id: 'createUserKey',
    method: 'POST',
    path: '/v1/users/:id/keys',
    tag: 'People',
    summary: 'Another API key for a user',
    access: { capabilities: ['user.manage'] },
    params: UserParams,
    body: NewKeyBody,
    bodyOptional: true,
    responses: { 201: { description: 'The key, shown once', schema: ApiKeyInfoSchema.extend(IssuedKeyFields) } },
    errors: { 404: 'No such user', 409: 'The user is disabled' },
  }),
  revokeKey: endpoint({
    id: 'revokeKey',
    method: 'DELETE',
    path: '/v1/keys/:id',
    tag: 'People',
    summary: 'Revoke an API key (at once; revoking twice changes nothing)',
    access: { capabilities: ['user.manage'] },
    params: KeyParams,
    responses: { 200: { description: 'The key as it is now', schema: ApiKeyInfoSchema } },
    errors: { 404: 'No such key' },
  }),
};

/** Admins manage people and their keys. Keys are in a response once, when made. */
export const userApi: ApiModule = {
  name: 'users',
  endpoints: Object.values(endpoints),
  bind: ({ people }: ApiDeps) => [
    implement(endpoints.create, async ({ body }, req) => {
      const { user, keyId, apiKey } = await people.addUser(body, req.principal.ref);
      return { ...user, keyId, apiKey };
    }),
    implement(endpoints.list, async () => {
      const [users, keys] = await Promise.all([people.listUsers(), people.listKeys()]);
      return { users: users.map((u) => ({ ...u, keys: keys.filter((k) => k.principal === `user:${u.id}`) })) };
    }),
    implement(endpoints.createKey, async ({ params, body }, req) => {
      const { keyId, apiKey, key } = await people.createKey(`user:${params.id}`, body.label, req.principal.ref);
      return { ...key, keyId, apiKey };
    }),
    implement(endpoints.revokeKey, async ({ params }, req) => people.revokeKey(params.id, req.principal.ref)),
  ],
};
