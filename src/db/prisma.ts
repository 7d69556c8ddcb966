import type { PrismaClient } from '../generated/prisma/client';
import { outside } from './sql';

export type { PrismaClient };

/**
 * A management read through Prisma Client (listings people look at: users, keys, twins, policy
 * versions, objectives). Prisma costs several times a raw query per call, so hot paths stay on
 * the raw Sql handle. Never from inside a raw transaction: on PGlite it would wait for that very
 * transaction, so it fails loudly instead.
 */
export const managedRead = <T>(run: () => Promise<T>): Promise<T> => outside('a Prisma Client read', run);
