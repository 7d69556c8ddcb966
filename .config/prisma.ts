// Prisma CLI configuration (Prisma 7 reads `.config/prisma.ts`; paths are relative to this file). Regent applies the SQL migrations
// itself at start; this file lets people with Prisma's schema engine use `prisma migrate status`,
// `prisma migrate deploy` and `prisma studio` against the same database and files.
import 'dotenv/config';
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: '../prisma/schema.prisma',
  migrations: { path: '../prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/regent' },
});
