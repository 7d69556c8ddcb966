import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * API keys: `rgt_<12 hex id>_<43 char base64url secret>`. The id finds the row; only SHA-256 of
 * the secret is stored, so a copy of the database lets nobody sign in.
 */
const KEY = /^rgt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export interface NewKey {
  id: string;
  /** The whole key, shown once. */
  token: string;
  /** Hex SHA-256 of the secret: what is stored. */
  hash: string;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function generateKey(): NewKey {
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, token: `rgt_${id}_${secret}`, hash: hashSecret(secret) };
}

export function parseKey(token: string): { id: string; secret: string } | null {
  const m = KEY.exec(token);
  return m ? { id: m[1]!, secret: m[2]! } : null;
}

/** Constant-time comparison of the secret's hash with the stored one. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const given = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(storedHash.trim(), 'hex');
  return stored.length === given.length && timingSafeEqual(given, stored);
}
