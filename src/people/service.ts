import { isUniqueViolation } from '../db/errors';
import type { PrismaClient } from '../db/prisma';
import type { Sql, SqlTx } from '../db/sql';
import { ConflictError, InputError, NotFoundError } from '../errors/errors';
import { parseInput } from '../errors/input';
import type { JournalService } from '../journal/service';
import { ActorSchema } from '../journal/contract';
import type { Logger } from '../log/logger';
import { generateKey, parseKey, secretMatches } from './keys';
import { createPeopleStore } from './store';
import { appRoles, isId, NewUserSchema, TextSchema, slugOf, type ApiKeyInfo, type IssuedKey, type NewUser, type Principal, type User } from './types';

export interface PeopleServiceOptions {
  sql: Sql;
  /** For the management listings (Prisma Client); everything else goes through sql. */
  prisma: PrismaClient;
  journal: Pick<JournalService, 'append'>;
  log: Logger;
}

/** Why a bearer token was refused; only the journal and the log see the reason. */
export type RefusalReason = 'malformed' | 'unknown' | 'wrong_secret' | 'revoked' | 'disabled';

export type Identified = { ok: true; principal: Principal } | { ok: false; reason: RefusalReason; keyId?: string };

const LAST_USED_EVERY_MS = 60_000;

/** Checked before any write: a write whose journal entry would be refused must not happen. */
export function checkActor(actor: string): void {
  if (!ActorSchema.safeParse(actor).success)
    throw new InputError(`actor ${JSON.stringify(actor)} must look like user:<id>, twin:<id> or system`);
}

function checkLabel(label: string | null | undefined): string | null {
  if (label === undefined || label === null || label.trim() === '') return null;
  return parseInput(TextSchema(200), label, 'label');
}

const KEY_ID = /^[0-9a-f]{12}$/;

/**
 * Users, their roles, and the API keys of users and twins. Keys are shown once, when made, and
 * stored as a hash; every change is journaled with the actor who made it.
 */
export function createPeopleService(opts: PeopleServiceOptions) {
  const { journal, log } = opts;
  const store = createPeopleStore(opts.sql, opts.prisma);
  /** Keys whose last use this process is recording right now. */
  const touching = new Set<string>();

  /** Inserts a key in the caller's transaction; the caller journals it. */
  async function issueKeyIn(tx: SqlTx, principal: string, label: string | null): Promise<IssuedKey & { key: ApiKeyInfo }> {
    const k = generateKey();
    const key = await store.insertKey(tx, { id: k.id, principal, hash: k.hash, label });
    return { keyId: k.id, apiKey: k.token, key };
  }

  async function activeUser(ref: string): Promise<User> {
    const id = ref.startsWith('user:') ? ref.slice(5) : '';
    const user = isId(id) ? await store.getUser(id) : undefined;
    if (!user) throw new NotFoundError(`no user ${ref}`);
    if (user.disabledAt) throw new ConflictError(`user ${ref} is disabled`);
    return user;
  }

  async function identify(token: string): Promise<Identified> {
    const parsed = parseKey(token);
    if (!parsed) return { ok: false, reason: 'malformed' };
    const found = await store.lookupKey(parsed.id);
    if (!found) return { ok: false, reason: 'unknown', keyId: parsed.id };
    if (!secretMatches(parsed.secret, found.hash)) return { ok: false, reason: 'wrong_secret', keyId: parsed.id };
    // Said only to the holder of the real secret: revocation and disabling are not guessable from outside.
    if (found.revoked) return { ok: false, reason: 'revoked', keyId: found.id };
    let principal: Principal;
    if (found.user) {
      if (found.user.disabled) return { ok: false, reason: 'disabled', keyId: found.id };
      const id = found.principal.slice(5);
      principal = { kind: 'user', id, ref: `user:${id}`, roles: found.user.roles, appRoles: appRoles(found.user.roles), keyId: found.id };
    } else if (found.twin) {
      // A twin acts under its owner's authority: when the owner can no longer act, neither can the twin.
      if (!found.twin.ownerActive) return { ok: false, reason: 'disabled', keyId: found.id };
      const id = found.principal.slice(5);
      principal = { kind: 'twin', id, ref: `twin:${id}`, owner: found.twin.owner, keyId: found.id };
    } else {
      return { ok: false, reason: 'unknown', keyId: found.id };
    }
    // At most one write a minute per key, judged by the stored time; while this process is writing
    // it, a burst of requests with the same key does not add more UPDATEs.
    if ((!found.lastUsedAt || Date.now() - found.lastUsedAt.getTime() >= LAST_USED_EVERY_MS) && !touching.has(found.id)) {
      touching.add(found.id);
      await store
        .touchKey(found.id)
        .catch((err) => log.warn('could not record key use', { keyId: found.id, error: err }))
        .finally(() => touching.delete(found.id));
    }
    return { ok: true, principal };
  }

  return {
    /** Creates a user and their first key (returned once). */
    async addUser(input: NewUser, actor: string): Promise<{ user: User } & IssuedKey> {
      checkActor(actor);
      const u = parseInput(NewUserSchema, input, 'user');
      const id = u.id ?? slugOf(u.name);
      if (!id) throw new InputError(`user.name: "${u.name}" gives no usable id; give one with id`, { field: 'user.id' });
      let created: { user: User } & IssuedKey;
      try {
        created = await store.transaction(async (tx) => {
          const user = await store.insertUser(tx, { id, name: u.name, roles: u.roles });
          const { keyId, apiKey } = await issueKeyIn(tx, `user:${id}`, 'initial');
          return { user, keyId, apiKey };
        });
      } catch (err) {
        if (isUniqueViolation(err))
          throw new ConflictError(`a user with id "${id}" already exists${u.id ? '' : ' (give another with id)'}`);
        throw err;
      }
      await journal.append({
        kind: 'user.created',
        actor,
        subject: `user:${id}`,
        data: { name: u.name, roles: u.roles, keyId: created.keyId },
      });
      return created;
    },

    async getUser(id: string): Promise<User> {
      const user = isId(id) ? await store.getUser(id) : undefined;
      if (!user) throw new NotFoundError(`no user ${id}`);
      return user;
    },

    findUser: async (id: string): Promise<User | undefined> => (isId(id) ? store.getUser(id) : undefined),

    listUsers: (): Promise<User[]> => store.listUsers(),

    /** A new key for a user (`user:<id>`), returned once. */
    async createKey(principal: string, label: string | null | undefined, actor: string): Promise<IssuedKey & { key: ApiKeyInfo }> {
      checkActor(actor);
      const l = checkLabel(label);
      await activeUser(principal);
      const issued = await store.transaction((tx) => issueKeyIn(tx, principal, l));
      await journal.append({ kind: 'user.key_created', actor, subject: `key:${issued.keyId}`, data: { principal, label: l } });
      return issued;
    },

    /** Keys made inside another capability's transaction (a twin's key at its creation). */
    issueKeyIn,

    /** Revokes at once: the next request with the key is refused. Revoking twice changes nothing. */
    async revokeKey(id: string, actor: string): Promise<ApiKeyInfo> {
      checkActor(actor);
      if (!KEY_ID.test(id)) throw new NotFoundError(`no API key ${id}`);
      const revoked = await store.revokeKey(id);
      if (!revoked) {
        const existing = await store.getKey(id);
        if (!existing) throw new NotFoundError(`no API key ${id}`);
        return existing;
      }
      await journal.append({ kind: 'user.key_revoked', actor, subject: `key:${id}`, data: { principal: revoked.principal } });
      return revoked;
    },

    listKeys: (principal?: string): Promise<ApiKeyInfo[]> => store.listKeys(principal),

    /** The principal a bearer token stands for, or why it is refused. */
    identify,

    async authenticate(token: string): Promise<Principal | null> {
      const r = await identify(token);
      return r.ok ? r.principal : null;
    },

    /**
     * At first start (no user at all), creates `admin` with the admin role and returns its key,
     * once. Processes starting together against one PostgreSQL create exactly one.
     */
    async ensureFirstAdmin(): Promise<({ user: User } & IssuedKey) | null> {
      const created = await store.transaction(async (tx) => {
        await store.lockFirstStart(tx);
        if (await store.anyUser(tx)) return null;
        const user = await store.insertUser(tx, { id: 'admin', name: 'Administrator', roles: ['admin'] });
        const { keyId, apiKey } = await issueKeyIn(tx, 'user:admin', 'first start');
        return { user, keyId, apiKey };
      });
      if (created) {
        await journal.append({
          kind: 'user.created',
          actor: 'system',
          subject: 'user:admin',
          data: { name: created.user.name, roles: created.user.roles, keyId: created.keyId, firstStart: true },
        });
      }
      return created;
    },
  };
}

export type PeopleService = ReturnType<typeof createPeopleService>;
