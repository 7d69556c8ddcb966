import type { Command } from 'commander';
import { action, printJson, setup } from './io';

// Loaded on first use, so `regent --help` and light commands start fast.
import type * as databaseModule from '../db/database';
const storage = (): typeof databaseModule => require('../db/database');

export function registerDb(program: Command): void {
  const db = program.command('db').description('database migrations');

  db.command('migrate')
    .description('apply pending migrations from prisma/migrations (the server also does this at start)')
    .option('--json', 'print as JSON')
    .action(
      action(async (o: { json?: boolean }) => {
        const { config } = setup('tool');
        const database = await storage().openDatabase(config.database, config.dataDir, { command: 'regent db migrate' });
        try {
          const applied = await database.migrate();
          const status = await database.migrationStatus();
          if (o.json) printJson({ database: database.kind, location: database.location, ...status, appliedNow: applied });
          else
            process.stdout.write(applied.length ? `applied ${applied.join(', ')}\n` : `up to date (${status.applied.length} migrations)\n`);
        } finally {
          await database.close();
        }
      }),
    );

  db.command('status')
    .description('list applied and pending migrations')
    .option('--json', 'print as JSON')
    .action(
      action(async (o: { json?: boolean }) => {
        const { config } = setup('tool');
        const database = await storage().openDatabase(config.database, config.dataDir, { command: 'regent db status' });
        try {
          const status = await database.migrationStatus();
          if (o.json) printJson({ database: database.kind, location: database.location, ...status });
          else {
            process.stdout.write(`database ${database.kind} (${database.location})\n`);
            for (const m of status.applied) process.stdout.write(`  applied  ${m}\n`);
            for (const m of status.pending) process.stdout.write(`  pending  ${m}\n`);
            for (const p of status.problems) process.stdout.write(`  PROBLEM  ${p}\n`);
          }
          if (status.problems.length) process.exitCode = 1;
        } finally {
          await database.close();
        }
      }),
    );
}
