import type { PrismaClient } from '../db/prisma';
import { managedRead } from '../db/prisma';
import type { Sql, SqlTx } from '../db/sql';
import type { ApiKeyModel, UserModel } from '../generated/prisma/models';
import { leftJoinTwinOwnerSql } from '../twins/store';
import type { ApiKeyInfo, User } from './types';

/** A key as listed: never the hash (what authenticates it). */
type KeyRow = Omit<ApiKeyModel, 'hash'>;

/** What authentication needs about a key, read in one query. */
export interface KeyLookup {
  id: string;
  principal: string;
  hash: string;
  lastUsedAt: Date | null;
  revoked: boolean;
  /** For `user:` keys: the user, if they exist. */
  user: { roles: string[]; disabled: boolean } | null;
  /** For `twin:` keys: the twin's owner and whether that owner may still act. */
  twin: { owner: string; ownerActive: boolean } | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

// Raw SQL and Prisma Client rows alike have the generated models' shape (the raw columns are
// aliased to the field names), so one function per table maps them to the domain types.
const toUser = (r: UserModel): User => ({
  id: r.id,
  name: r.name,
  roles: r.roles ?? [],
  createdAt: r.createdAt.toISOString(),
  disabledAt: iso(r.disabledAt),
});

const toKey = (r: KeyRow): ApiKeyInfo => ({
  id: r.id,
  principal: r.principal,
  label: r.label,
  createdAt: r.createdAt.toISOString(),
  lastUsedAt: iso(r.lastUsedAt),
  revokedAt: iso(r.revokedAt),
});

const USER_COLUMNS = 'id, name, roles, created_at AS "createdAt", disabled_at AS "disabledAt"';
// Never the hash: listing keys must not hand out what authenticates them.
const KEY_COLUMNS = 'id, principal, label, created_at AS "createdAt", last_used_at AS "lastUsedAt", revoked_at AS "revokedAt"';
const KEY_SELECT = { id: true, principal: true, label: true, createdAt: true, lastUsedAt: true, revokedAt: true } as const;

export function createPeopleStore(sql: Sql, prisma: PrismaClient) {
  return {
    transaction: sql.transaction.bind(sql),

    // Writes inside the caller's raw transaction (atomic with its journal append): raw SQL, never Prisma.
    async insertUser(tx: SqlTx, u: { id: string; name: string; roles: string[] }): Promise<User> {
      const [row] = await tx.query<UserModel>(`INSERT INTO users (id, name, roles) VALUES ($1, $2, $3::text[]) RETURNING ${USER_COLUMNS}`, [
        u.id,
        u.name,
        u.roles,
      ]);
      return toUser(row!);
    },

    async getUser(id: string): Promise<User | undefined> {
      const [row] = await sql.query<UserModel>(`SELECT ${USER_COLUMNS} FROM users WHERE id = $1`, [id]);
      return row && toUser(row);
    },

    /** Management listing (admin): Prisma Client. */
    async listUsers(): Promise<User[]> {
      return (await managedRead(() => prisma.user.findMany({ orderBy: { id: 'asc' } }))).map(toUser);
    },

    /** Serializes first-start checks across processes sharing one PostgreSQL (no-op cost on PGlite). */
    async lockFirstStart(tx: SqlTx): Promise<void> {
      await tx.query(`SELECT pg_advisory_xact_lock(hashtext('regent.first-admin'))`);
    },

    async anyUser(tx: SqlTx): Promise<boolean> {
      return (await tx.query('SELECT 1 FROM users LIMIT 1')).length > 0;
    },

    async insertKey(tx: SqlTx, k: { id: string; principal: string; hash: string; label: string | null }): Promise<ApiKeyInfo> {
      const [row] = await tx.query<KeyRow>(
        `INSERT INTO api_keys (id, principal, hash, label) VALUES ($1, $2, $3, $4) RETURNING ${KEY_COLUMNS}`,
        [k.id, k.principal, k.hash, k.label],
      );
      return toKey(row!);
    },

    async getKey(id: string): Promise<ApiKeyInfo | undefined> {
      const [row] = await sql.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = $1`, [id]);
      return row && toKey(row);
    },

    /** Management listing (admin, `regent users`): Prisma Client. */
    async listKeys(principal?: string): Promise<ApiKeyInfo[]> {
      const rows = await managedRead(() =>
        principal
          ? prisma.apiKey.findMany({ select: KEY_SELECT, where: { principal }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] })
          : prisma.apiKey.findMany({ select: KEY_SELECT, orderBy: [{ principal: 'asc' }, { createdAt: 'asc' }, { id: 'asc' }] }),
      );
      return rows.map(toKey);
    },

    /** Revokes a key not yet revoked; undefined when there was none to revoke. */
    async revokeKey(id: string): Promise<ApiKeyInfo | undefined> {
      const [row] = await sql.query<KeyRow>(
        `UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING ${KEY_COLUMNS}`,
        [id],
      );
      return row && toKey(row);
    },

    /**
     * The key with its principal's state, in one indexed query per request. The joins go through
     * primary keys (the `user:`/`twin:` prefix is stripped), so their cost does not grow with the tables.
     * A twin's owner comes from the join the twins store exports (one round trip per request).
     * Raw SQL: it runs on every authenticated request, where Prisma Client's overhead would show.
     */
    async lookupKey(id: string): Promise<KeyLookup | undefined> {
      const [r] = await sql.query<{
        id: string;
        principal: string;
        hash: string;
        last_used_at: Date | null;
        revoked_at: Date | null;
        user_id: string | null;
        user_roles: string[] | null;
        user_disabled_at: Date | null;
        twin_id: string | null;
        twin_owner: string | null;
        owner_id: string | null;
        owner_disabled_at: Date | null;
      }>(
        `SELECT k.id, k.principal, k.hash, k.last_used_at, k.revoked_at,
                u.id AS user_id, u.roles AS user_roles, u.disabled_at AS user_disabled_at,
                t.id AS twin_id, t.owner AS twin_owner, o.id AS owner_id, o.disabled_at AS owner_disabled_at
           FROM api_keys k
           LEFT JOIN users u ON u.id = CASE WHEN k.principal LIKE 'user:%' THEN substr(k.principal, 6) END
           ${leftJoinTwinOwnerSql(`CASE WHEN k.principal LIKE 'twin:%' THEN substr(k.principal, 6) END`, 't')}
           LEFT JOIN users o ON o.id = CASE WHEN t.owner LIKE 'user:%' THEN substr(t.owner, 6) END
          WHERE k.id = $1`,
        [id],
      );
      if (!r) return undefined;
      return {
        id: r.id,
        principal: r.principal,
        hash: r.hash,
        lastUsedAt: r.last_used_at,
        revoked: r.revoked_at !== null,
        user: r.user_id ? { roles: r.user_roles ?? [], disabled: r.user_disabled_at !== null } : null,
        twin: r.twin_id ? { owner: r.twin_owner!, ownerActive: r.owner_id !== null && r.owner_disabled_at === null } : null,
      };
    },

    /** Records use, at most once a minute per key: sign-ins must not turn every request into a write. */
    // Raw SQL: on the per-request path, like lookupKey.
    async touchKey(id: string): Promise<void> {
      await sql.query(
        `UPDATE api_keys SET last_used_at = now() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`,
        [id],
      );
    },
  };
}

export type PeopleStore = ReturnType<typeof createPeopleStore>;
