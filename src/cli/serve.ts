import type { Command } from 'commander';
import { VERSION } from '../version';
import { action, setup } from './io';

// Loaded on first use, so `regent --help` and light commands start fast.
import type * as appModule from '../app';
const composition = (): typeof appModule => require('../app');
import type * as httpAppModule from '../http/app';
const httpApp = (): typeof httpAppModule => require('../http/app');
import type * as httpServerModule from '../http/server';
const httpServer = (): typeof httpServerModule => require('../http/server');

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the Regent server (HTTP API, console, journal checkpoints)')
    .action(
      action(async () => {
        const { config, log } = setup('serve');
        const regent = await composition().openRegent(config, log, { command: 'regent serve', policies: 'watch', warm: true, signalSources: true });
        let server: Awaited<ReturnType<typeof httpServerModule.listen>>;
        let firstAdmin: Awaited<ReturnType<typeof regent.people.ensureFirstAdmin>>;
        try {
          // Before listening: nobody could sign in anyway until there is a first user.
          firstAdmin = await regent.people.ensureFirstAdmin();
          const app = httpApp().createHttpApp(httpApp().httpDepsOf(regent));
          server = await httpServer().listen(app, config.host, config.port, log);
        } catch (err) {
          await regent.close();
          throw err;
        }
        await regent.journal.append({
          kind: 'system.started',
          actor: 'system',
          data: { version: VERSION, database: regent.db.kind, pid: process.pid },
        });
        // The executor and the expiry/escalation timer run in every process (claims are safe to race).
        regent.proposals?.start();
        // Objective runs too: each process claims due runs under a lease, so several can share them.
        regent.objectives?.start();
        regent.notifier?.start();
        // Passages past retention: purged now (whatever a previous run left due) and on a timer.
        regent.knowledge.start();
        // Broker subscriptions last: a message is taken only when everything it needs runs.
        regent.signalSources?.start();
        log.info('regent started', { url: server.url, database: regent.db.kind, location: regent.db.location, version: VERSION });
        process.stdout.write(
          `Regent ${VERSION} is listening on ${server.url} (database: ${regent.db.kind}, ${regent.db.location})\n` +
            `Journal verifier key: ${regent.journal.vkey}\n` +
            `Policies: ${regent.policy?.version() ?? 'NONE VALID — every action is refused (run npx regent policy check)'} from ${config.policiesDir}\n`,
        );
        if (firstAdmin) {
          log.info('first start: created the admin user', { user: firstAdmin.user.id, keyId: firstAdmin.keyId });
          process.stdout.write(`Sign in at ${server.url} with API key ${firstAdmin.apiKey}, shown once\n`);
        }

        let stopping = false;
        const stop = async (signal: string) => {
          if (stopping) return;
          stopping = true;
          log.info('shutting down', { signal });
          // The hard deadline: whatever happens, the process is gone within the timeout.
          const deadline = setTimeout(() => {
            log.error('shutdown did not finish in time; exiting', { timeoutMs: config.shutdownTimeoutMs });
            process.exit(1);
          }, config.shutdownTimeoutMs);
          deadline.unref();
          try {
            // The server first, then the runner and the executor; system.stopped is journaled after them.
            await regent.close({ server, signal });
            log.info('stopped cleanly');
            process.exit(0);
          } catch (err) {
            log.error('shutdown failed', { error: err });
            process.exit(1);
          }
        };
        process.once('SIGTERM', () => void stop('SIGTERM'));
        process.once('SIGINT', () => void stop('SIGINT'));
      }),
    );
}
