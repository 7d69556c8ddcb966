import path from 'node:path';
import type { Command } from 'commander';
import type { Regent } from '../app';
import { action, CliError, printJson, setup } from './io';

// Loaded on first use, so `regent --help` and light commands start fast.
import type * as AppModule from '../app';
import type * as PlaybooksModule from '../objectives/playbooks';
import type * as RolesModule from '../policy/roles';
const composition = (): typeof AppModule => require('../app');
const playbooksModule = (): typeof PlaybooksModule => require('../objectives/playbooks');
const rolesModule = (): typeof RolesModule => require('../policy/roles');

/** `--param a=1 --param b=x` → [["a","1"],["b","x"]] */
const collect = (v: string, prev: [string, string][]): [string, string][] => {
  const eq = v.indexOf('=');
  if (eq < 1) throw new CliError(`--param ${v}: write name=value, e.g. --param discountPct=12`, 2);
  return [...prev, [v.slice(0, eq), v.slice(eq + 1)]];
};

/** A param's text as the playbook declares its type: "12" is a number for a number param, a string for a string one. */
function typed(p: PlaybooksModule.Playbook, name: string, text: string): unknown {
  const type = p.doc.params.properties?.[name]?.type;
  if (type === 'number' || type === 'integer') {
    const n = Number(text);
    if (text.trim() === '' || Number.isNaN(n)) throw new CliError(`--param ${name}=${text}: ${name} is a number`, 2);
    return n;
  }
  if (type === 'boolean') {
    if (text !== 'true' && text !== 'false') throw new CliError(`--param ${name}=${text}: ${name} is true or false`, 2);
    return text === 'true';
  }
  if (type === 'array' || type === 'object') {
    try {
      return JSON.parse(text);
    } catch {
      throw new CliError(`--param ${name}: ${name} is ${type === 'array' ? 'a list' : 'an object'}; write it as JSON`, 2);
    }
  }
  return text;
}

/** Opens the configured database with the policies loaded (objectives need the authorities and connectors). */
async function withObjectives<T>(command: string, fn: (r: Regent, objectives: NonNullable<Regent['objectives']>) => Promise<T>): Promise<T> {
  const { config, log } = setup('tool');
  const regent = await composition().openRegent(config, log, { command, policies: 'load' });
  try {
    if (!regent.objectives) throw new CliError('no valid policy bundle is in force; run regent policy check');
    return await fn(regent, regent.objectives);
  } finally {
    await regent.close();
  }
}

function loadPlaybooksOrFail(dir: string): PlaybooksModule.Playbook[] {
  const r = playbooksModule().loadPlaybooks(dir);
  if (!r.ok) {
    const e = r.errors[0]!;
    throw new CliError(`${e.file}:${e.line}: ${e.message}${r.errors.length > 1 ? ` (and ${r.errors.length - 1} more)` : ''}`);
  }
  return [...r.playbooks.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
}

export function registerObjectives(program: Command): void {
  const playbooks = program.command('playbooks').description('procedures twins follow without a language model (policies/playbooks)');
  playbooks
    .command('list')
    .description('the playbooks, with their params and steps; refuses (exit 1) with file:line when a file is invalid')
    .option('--policies <dir>', 'policies directory (default: REGENT_POLICIES_DIR or ./policies)')
    .option('--json', 'print as JSON (the same form GET /v1/playbooks serves)')
    .action(
      action(async (o: { policies?: string; json?: boolean }) => {
        const dir = o.policies ? path.resolve(o.policies) : setup('tool').config.policiesDir;
        const list = loadPlaybooksOrFail(dir);
        if (o.json) return printJson(list.map(playbooksModule().playbookView));
        if (!list.length) return void process.stdout.write(`no playbooks in ${path.join(dir, 'playbooks')}\n`);
        for (const p of list) {
          const view = playbooksModule().playbookView(p);
          const props = (view.params.properties ?? {}) as Record<string, { type: string; default?: unknown }>;
          const required = new Set((view.params.required as string[] | undefined) ?? []);
          const params = Object.entries(props).map(([k, v]) => `${k}${required.has(k) ? '' : '?'}: ${v.type}${v.default !== undefined ? ` = ${JSON.stringify(v.default)}` : ''}`);
          process.stdout.write(`${p.id}  ${p.title}  (${p.file})\n  ${p.description}\n  params: ${params.join(', ')}\n`);
          for (const s of p.doc.steps) process.stdout.write(`  - ${s.id}: ${s.action}${s.when ? `  when ${JSON.stringify(s.when)}` : ''}\n`);
        }
      }),
    );

  const objectives = program.command('objectives').description("twins' objectives and their runs (opens the database directly)");

  objectives
    .command('list')
    .description("a twin's objectives, newest first")
    .requiredOption('--twin <id>', 'the twin')
    .option('--status <status>', 'only this status (queued, running, waiting_for_approval, completed, failed, cancelled)')
    .option('--json', 'print as JSON')
    .action(
      action(async (o: { twin: string; status?: string; json?: boolean }) => {
        const list = await withObjectives('regent objectives list', (_r, s) => s.list(o.twin, o.status ? { status: o.status } : {}));
        if (o.json) return printJson(list);
        if (!list.length) return void process.stdout.write(`no objectives for ${o.twin}\n`);
        for (const x of list) process.stdout.write(`${x.id}  ${x.status}  ${x.playbook ?? 'free text'}  ${x.createdAt}  ${x.text.split('\n')[0]!.slice(0, 80)}\n`);
      }),
    );

  objectives
    .command('show')
    .description('one objective: its status, summary, steps and the proposals they became')
    .argument('<id>', 'the objective id')
    .option('--json', 'print as JSON (as GET /v1/objectives/:id)')
    .action(
      action(async (id: string, o: { json?: boolean }) => {
        const d = await withObjectives('regent objectives show', (_r, s) => s.detail(id));
        if (o.json) return printJson(d);
        process.stdout.write(`${d.id}  ${d.status}  twin ${d.twin}  ${d.playbook ? `playbook ${d.playbook}` : 'free text'}\n${d.text}\n`);
        if (d.summary) process.stdout.write(`summary: ${d.summary}\n`);
        process.stdout.write(`steps: ${d.stepsUsed}/${d.stepBudget}${d.deadline ? `  deadline ${d.deadline}` : ''}\n`);
        for (const s of d.steps) process.stdout.write(`  - ${s.key}: ${s.action} → ${s.status}${s.proposalId ? ` (proposal ${s.proposalId})` : ''}${s.reasons.length ? ` — ${s.reasons.join('; ')}` : ''}\n`);
      }),
    );

  objectives
    .command('assign')
    .description("give a twin a playbook objective as its owner; a running server's runner carries it out")
    .requiredOption('--twin <id>', 'the twin')
    .requiredOption('--playbook <id>', 'the playbook (see regent playbooks list)')
    .requiredOption('--actor <user:id>', "who assigns it, journaled: the twin's owner")
    .option('--text <text>', 'what the twin should achieve (default: the playbook title)')
    .option('--param <name=value>', 'a playbook parameter (repeatable)', collect, [])
    .option('--step-budget <n>', 'action requests the run may make at most')
    .option('--deadline <time>', 'RFC 3339 time after which the run stops')
    .option('--json', 'print the objective as JSON')
    .action(
      action(async (o: { twin: string; playbook: string; actor: string; text?: string; param: [string, string][]; stepBudget?: string; deadline?: string; json?: boolean }) => {
        if (!/^user:[a-z0-9][a-z0-9._@-]{0,63}$/.test(o.actor)) throw new CliError('--actor must be user:<id>, the twin’s owner', 2);
        // The params are checked against the playbook's files first: a typo fails fast, before storage opens.
        const files = playbooksModule().loadPlaybooks(setup('tool').config.policiesDir);
        const local = files.ok ? files.playbooks.get(o.playbook) : undefined;
        if (local) playbooksModule().resolveParams(local, Object.fromEntries(o.param.map(([k, v]) => [k, typed(local, k, v)])));
        const created = await withObjectives('regent objectives assign', async (r, s) => {
          const twin = await r.twins.get(o.twin);
          const user = await r.people.findUser(o.actor.slice(5));
          if (!user || user.disabledAt) throw new CliError(`${o.actor} is not an active user`);
          const roles = rolesModule().ROLES.filter((x) => user.roles.includes(x));
          if (!rolesModule().can({ id: user.id, roles }, 'objective.assign', { owner: twin.owner }))
            throw new CliError(`${o.actor} may not assign objectives to ${twin.id} (it belongs to ${twin.owner})`);
          // An unknown playbook is refused by the service, naming the ones there are.
          const playbook = s.playbook(o.playbook);
          const params = Object.fromEntries(o.param.map(([k, v]) => [k, playbook ? typed(playbook, k, v) : v]));
          const constraints = {
            ...(o.stepBudget !== undefined ? { stepBudget: Number(o.stepBudget) } : {}),
            ...(o.deadline !== undefined ? { deadline: o.deadline } : {}),
          };
          return s.create(
            o.twin,
            { text: o.text ?? playbook?.title ?? o.playbook, playbook: o.playbook, params, ...(Object.keys(constraints).length ? { constraints } : {}) },
            o.actor,
          );
        });
        if (o.json) return printJson(created);
        process.stdout.write(`objective ${created.id} queued for ${created.twin}; the server's runner carries it out (regent objectives show ${created.id})\n`);
      }),
    );
}
