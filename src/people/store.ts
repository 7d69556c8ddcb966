import type { Sql, SqlTx } from '../db/sql';
import { leftJoinTwinOwnerSql } from '../twins/store';
import type { ApiKeyInfo, User } from './types';

interface UserRow {
  id: string;
  name: string;
  roles: string[];
  created_at: Date;
  disabled_at: Date | null;
}

interface KeyRow {
  id: string;
  principal: string;
  label: string | null;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

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

const toUser = (r: UserRow): User => ({
  id: r.id,
  name: r.name,
  roles: r.roles ?? [],
  createdAt: r.created_at.toISOString(),
  disabledAt: iso(r.disabled_at),
});

const toKey = (r: KeyRow): ApiKeyInfo => ({
  id: r.id,
  principal: r.principal,
  label: r.label,
  createdAt: r.created_at.toISOString(),
  lastUsedAt: iso(r.last_used_at),
  revokedAt: iso(r.revoked_at),
});

const USER_COLUMNS = 'id, name, roles, created_at, disabled_at';
// Never the hash: listing keys must not hand out what authenticates them.
const KEY_COLUMNS = 'id, principal, label, created_at, last_used_at, revoked_at';

export function createPeopleStore(sql: Sql) {
  return {
    transaction: sql.transaction.bind(sql),

    async insertUser(tx: SqlTx, u: { id: string; name: string; roles: string[] }): Promise<User> {
      const [row] = await tx.query<UserRow>(`INSERT INTO users (id, name, roles) VALUES ($1, $2, $3::text[]) RETURNING ${USER_COLUMNS}`, [
        u.id,
        u.name,
        u.roles,
      ]);
      return toUser(row!);
    },

    async getUser(id: string): Promise<User | undefined> {
      const [row] = await sql.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE id = $1`, [id]);
      return row && toUser(row);
    },

    async listUsers(): Promise<User[]> {
      return (await sql.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users ORDER BY id`)).map(toUser);
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

    async listKeys(principal?: string): Promise<ApiKeyInfo[]> {
      const rows = principal
        ? await sql.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE principal = $1 ORDER BY created_at, id`, [principal])
        : await sql.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys ORDER BY principal, created_at, id`);
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
    async touchKey(id: string): Promise<void> {
      await sql.query(
        `UPDATE api_keys SET last_used_at = now() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`,
        [id],
      );
    },
  };
}

export type PeopleStore = ReturnType<typeof createPeopleStore>;
