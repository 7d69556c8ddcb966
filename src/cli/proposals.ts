import type { Command } from 'commander';
import { action, CliError, printJson, setup } from './io';

// Loaded on first use, so `regent --help` and light commands start fast.
import type * as AppModule from '../app';
import type * as RolesModule from '../policy/roles';
const composition = (): typeof AppModule => require('../app');
const rolesModule = (): typeof RolesModule => require('../policy/roles');

const OUTCOMES = ['executed', 'not_executed'] as const;

export function registerProposals(program: Command): void {
  const proposals = program.command('proposals').description('governed action requests (the same rules as /v1/proposals)');
  proposals
    .command('reconcile')
    .description(
      'settle an action in doubt (a call cut off after it was sent): it took effect (executed, the amount stays spent) or it did not (not_executed, the amount is released); journaled, once only',
    )
    .argument('<id>', 'the proposal id')
    .requiredOption('--outcome <outcome>', 'executed | not_executed')
    .requiredOption('--evidence <text>', 'how you know, e.g. "CRM shows discount request 9f… applied at 10:02"')
    .requiredOption('--actor <user:id>', "who settles it, journaled: the twin's owner or an admin")
    .option('--json', 'print the settled proposal as JSON')
    .action(
      action(async (id: string, o: { outcome: string; evidence: string; actor: string; json?: boolean }) => {
        if (!(OUTCOMES as readonly string[]).includes(o.outcome)) throw new CliError(`--outcome must be executed or not_executed, not ${JSON.stringify(o.outcome)}`, 2);
        if (!o.evidence.trim()) throw new CliError('--evidence is required: say how you know', 2);
        if (!/^user:[a-z0-9][a-z0-9._@-]{0,63}$/.test(o.actor)) throw new CliError("--actor must be user:<id>, the twin's owner or an admin", 2);
        const { config, log } = setup('tool');
        const regent = await composition().openRegent(config, log, {
          command: 'regent proposals reconcile',
          policies: 'load',
          connectors: false, // settling calls no system: the operator needs no connector's secret
        });
        try {
          if (!regent.proposals) throw new CliError('no valid policy bundle is in force; run regent policy check');
          const p = await regent.proposals.get(id).catch(() => undefined);
          if (!p) throw new CliError(`proposal ${id} does not exist`);
          const user = await regent.people.findUser(o.actor.slice(5));
          if (!user || user.disabledAt) throw new CliError(`${o.actor} is not an active user`);
          const owner = (await regent.twins.get(p.twin).catch(() => undefined))?.owner ?? null;
          const roles = rolesModule().ROLES.filter((x) => user.roles.includes(x));
          if (!rolesModule().can({ id: user.id, roles }, 'proposal.reconcile', { owner }))
            throw new CliError(`${o.actor} may not reconcile ${p.id}: only the owner of ${p.twin} (${owner ?? 'unknown'}) or an admin`);
          const settled = await regent.proposals.reconcile(p.id, o.actor, { outcome: o.outcome, evidence: o.evidence });
          if (o.json) return printJson(settled);
          process.stdout.write(
            `proposal ${settled.id} reconciled by ${o.actor}: ${o.outcome === 'executed' ? 'it took effect (status executed; the amount stays spent)' : 'it did not take effect (status failed; the amount is released)'}\n`,
          );
        } finally {
          await regent.close();
        }
      }),
    );
}
