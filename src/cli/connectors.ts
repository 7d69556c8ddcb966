import type { Command } from 'commander';
import { action, CliError, printJson, setup } from './io';

// Loaded on first use, so `regent --help` and light commands start fast.
import type * as AppModule from '../app';
import type * as PinsModule from '../connectors/pins';
import type * as RolesModule from '../policy/roles';
const composition = (): typeof AppModule => require('../app');
const pinsModule = (): typeof PinsModule => require('../connectors/pins');
const rolesModule = (): typeof RolesModule => require('../policy/roles');

const short = (h: string) => `${h.slice(0, 12)}…`;

export function registerConnectors(program: Command): void {
  const connectors = program.command('connectors').description('connectors: MCP servers’ pinned tools (opens the database directly)');

  connectors
    .command('pins')
    .description('what each operation of an MCP connector is pinned to, and the upstream changes waiting to be accepted')
    .argument('<id>', 'the connector id, e.g. memory')
    .option('--json', 'print the pins as JSON (with the schemas and descriptions)')
    .action(
      action(async (id: string, o: { json?: boolean }) => {
        const { config, log } = setup('tool');
        const regent = await composition().openRegent(config, log, { command: 'regent connectors pins' });
        try {
          const pins = [...(await pinsModule().readPins(regent.db.sql, id)).values()].sort((a, b) => a.action.localeCompare(b.action));
          if (!pins.length) throw new CliError(`no MCP connector ${id} has pinned tools here (it pins them when Regent first reaches its server)`);
          if (o.json) return printJson({ connector: id, pins });
          for (const p of pins) {
            const c = p.changed;
            const state = !c ? 'ok' : 'missing' in c ? `SUSPENDED: the server no longer offers ${p.tool}` : `SUSPENDED: changed (schema ${short(p.schemaSha256)} → ${short(c.schemaSha256)}, description ${short(p.descriptionSha256)} → ${short(c.descriptionSha256)})`;
            process.stdout.write(`${p.action}  tool ${p.tool}  pinned ${p.pinnedAt} by ${p.pinnedBy}  ${state}\n`);
          }
        } finally {
          await regent.close();
        }
      }),
    );

  connectors
    .command('accept')
    .description('accept the upstream tool changes of an MCP connector (review them with regent connectors pins ID --json): pins them, and its suspended operations run again; journaled connector.accepted')
    .argument('<id>', 'the connector id, e.g. memory')
    .requiredOption('--actor <user:id>', 'the admin who accepts, journaled')
    .option('--json', 'print what was accepted as JSON')
    .action(
      action(async (id: string, o: { actor: string; json?: boolean }) => {
        if (!/^user:[a-z0-9][a-z0-9._@-]{0,63}$/.test(o.actor)) throw new CliError('--actor must be user:<id>, an admin', 2);
        const { config, log } = setup('tool');
        const regent = await composition().openRegent(config, log, { command: 'regent connectors accept' });
        try {
          const user = await regent.people.findUser(o.actor.slice(5));
          if (!user || user.disabledAt) throw new CliError(`${o.actor} is not an active user`);
          const roles = rolesModule().ROLES.filter((x) => user.roles.includes(x));
          if (!rolesModule().can({ id: user.id, roles }, 'connector.manage')) throw new CliError(`${o.actor} may not accept connector changes: only an admin`);
          const pins = pinsModule();
          if (!(await pins.pinnedConnectors(regent.db.sql)).includes(id))
            throw new CliError(`no MCP connector ${id} has pinned tools here (it pins them when Regent first reaches its server)`);
          const r = await pins.acceptChanges(regent.db.sql, regent.journal, id, o.actor);
          if (o.json) return printJson({ connector: id, ...r });
          if (!r.accepted.length && !r.missing.length) process.stdout.write(`connector ${id}: nothing to accept (no upstream tool changed)\n`);
          for (const a of r.accepted)
            process.stdout.write(`${a.action}: accepted tool ${a.tool} (schema ${short(a.old.schemaSha256)} → ${short(a.new.schemaSha256)}, description ${short(a.old.descriptionSha256)} → ${short(a.new.descriptionSha256)})\n`);
          for (const m of r.missing) process.stdout.write(`${m}: its tool is gone from the server; nothing to accept, it stays suspended\n`);
          if (r.accepted.length) process.stdout.write('running servers follow within seconds\n');
        } finally {
          await regent.close();
        }
      }),
    );
}
