import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import YAML from 'yaml';
import { benchPolicy } from '../policy/bench';
import { diffBundles } from '../policy/diff';
import { decide, type PolicyBundle } from '../policy/engine';
import { formatLoadError, loadBundleFromSources, loadPolicies } from '../policy/load';
import { authorityJsonSchemaText } from '../policy/schema';
import { parseEvalInput, runPolicyTests } from '../policy/testcases';
import type { DecisionRequest } from '../policy/types';
import { action, CliError, positiveInt, printJson, setup } from './io';

// Storage is loaded on first use, so commands that only read files start fast.
import type * as AppModule from '../app';
import type * as PolicyHistoryModule from '../policy/history';
const composition = (): typeof AppModule => require('../app');
const policyHistory = (): typeof PolicyHistoryModule => require('../policy/history');

function policiesDir(given: string | undefined): string {
  return given ? path.resolve(given) : setup('tool').config.policiesDir;
}

function loadOrFail(dir: string): PolicyBundle {
  const loaded = loadPolicies(dir);
  if (!loaded.ok)
    throw new CliError(
      `${formatLoadError(loaded.errors[0]!)}${loaded.errors.length > 1 ? ` (and ${loaded.errors.length - 1} more: run regent policy check)` : ''}`,
    );
  return loaded.bundle;
}

/** Reads an eval input (JSON or YAML) and checks its shape. */
function readInput(file: string): DecisionRequest {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`--input ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  let value: unknown;
  try {
    value = /\.ya?ml$/.test(file) ? YAML.parse(text) : JSON.parse(text);
  } catch (err) {
    throw new CliError(`--input ${file}: not valid ${/\.ya?ml$/.test(file) ? 'YAML' : 'JSON'}: ${(err as Error).message}`);
  }
  const parsed = parseEvalInput(value);
  if (!parsed.ok) throw new CliError(`--input ${file}: ${parsed.message}`);
  return parsed.input;
}

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('delegated-authority documents: check, evaluate, test, diff, versions');

  policy
    .command('check')
    .description('validate policies/authorities/*.yaml; every problem with file:line')
    .option('--policies <dir>', 'policies directory (default: REGENT_POLICIES_DIR or ./policies)')
    .option('--json', 'print as JSON')
    .action(
      action((o: { policies?: string; json?: boolean }) => {
        const loaded = loadPolicies(policiesDir(o.policies));
        if (o.json)
          printJson(
            loaded.ok
              ? {
                  ok: true,
                  version: loaded.bundle.version,
                  authorities: [...loaded.bundle.authorities.keys()].sort(),
                  files: loaded.bundle.files,
                }
              : loaded,
          );
        if (!loaded.ok) {
          if (!o.json) for (const e of loaded.errors) process.stderr.write(`${formatLoadError(e)}\n`);
          process.exitCode = 1;
          return;
        }
        if (!o.json)
          process.stdout.write(
            `OK: ${loaded.bundle.authorities.size} authorities in ${loaded.bundle.files.length} files, version ${loaded.bundle.version}\n`,
          );
      }),
    );

  policy
    .command('eval')
    .description('decide one request and print the Decision JSON')
    .option('--policies <dir>', 'policies directory (default: REGENT_POLICIES_DIR or ./policies)')
    .requiredOption('--input <file>', 'request JSON or YAML: {principal, action, resource, at, spent?, twinMode?}')
    .option('--json', 'print as JSON (the default; kept for symmetry)')
    .action(
      action((o: { policies?: string; input: string }) => {
        const request = readInput(o.input);
        printJson(decide(loadOrFail(policiesDir(o.policies)), request));
      }),
    );

  policy
    .command('test')
    .description('run policies/tests/*.yaml (input → expected outcome and reasons) and report rule coverage')
    .option('--policies <dir>', 'policies directory (default: REGENT_POLICIES_DIR or ./policies)')
    .option('--json', 'print as JSON')
    .action(
      action((o: { policies?: string; json?: boolean }) => {
        const run = runPolicyTests(policiesDir(o.policies));
        if (!run.ok) {
          if (o.json) printJson(run);
          for (const e of run.errors) process.stderr.write(`${formatLoadError(e)}\n`);
          process.exitCode = 1;
          return;
        }
        const r = run.report;
        if (o.json) {
          printJson({
            passed: r.passed,
            failed: r.failed,
            results: r.results.map(({ decision, ...rest }) => ({ ...rest, outcome: decision.outcome })),
            coverage: r.coverage,
          });
        } else {
          for (const c of r.results) {
            process.stdout.write(`${c.passed ? 'PASS' : 'FAIL'}  ${c.file}:${c.line}  ${c.name}\n`);
            for (const f of c.failures) process.stdout.write(`        ${f}\n`);
          }
          const uncovered = r.coverage.rules.filter((x) => !x.covered);
          process.stdout.write(`\n${r.passed} passed, ${r.failed} failed\nrule coverage: ${r.coverage.covered}/${r.coverage.total}\n`);
          for (const u of uncovered) process.stdout.write(`  not exercised: ${u.rule} (${u.source})\n`);
        }
        if (r.failed > 0) process.exitCode = 1;
      }),
    );

  policy
    .command('schema')
    .description('print the JSON Schema of authority documents (for editors)')
    .option('--out <file>', 'write it to a file instead')
    .action(
      action((o: { out?: string }) => {
        if (o.out) fs.writeFileSync(o.out, authorityJsonSchemaText());
        else process.stdout.write(authorityJsonSchemaText());
      }),
    );

  policy
    .command('diff')
    .description('shadow-evaluate a candidate: which recorded decisions would change from OLD to NEW')
    .argument('<old>', 'policies directory or recorded version (sha256:…)')
    .argument('<new>', 'policies directory or recorded version (sha256:…)')
    .option('--input <files...>', 'also evaluate these request files')
    .option('--no-journal', "don't read past requests from the journal (works without a database)")
    .option('--json', 'print as JSON')
    .action(
      action(async (oldArg: string, newArg: string, o: { input?: string[]; journal: boolean; json?: boolean }) => {
        const needsDb = o.journal || oldArg.startsWith('sha256:') || newArg.startsWith('sha256:');
        const requests: DecisionRequest[] = (o.input ?? []).map(readInput);
        let bundles: [PolicyBundle, PolicyBundle];
        const fromDir = (p: string) => loadOrFail(path.resolve(p));
        if (needsDb) {
          const { config, log } = setup('tool');
          const regent = await composition().openRegent(config, log, { command: 'regent policy diff' });
          try {
            const history = policyHistory().createPolicyHistory(regent.db);
            const fromVersion = async (v: string) => {
              const stored = await history.findVersion(v);
              if (!stored) throw new CliError(`no recorded policy version ${v} (see regent policy versions)`);
              const loaded = loadBundleFromSources(stored.sources);
              if (!loaded.ok) throw new CliError(`version ${v} no longer loads: ${formatLoadError(loaded.errors[0]!)}`);
              return loaded.bundle;
            };
            bundles = [
              oldArg.startsWith('sha256:') ? await fromVersion(oldArg) : fromDir(oldArg),
              newArg.startsWith('sha256:') ? await fromVersion(newArg) : fromDir(newArg),
            ];
            if (o.journal) {
              for (let after = 0; ;) {
                const page = await regent.journal.list({ afterSeq: after, limit: 1000, kind: 'policy.decided' });
                if (page.length === 0) break;
                for (const e of page) {
                  const parsed = parseEvalInput((e.data as { request?: unknown }).request);
                  if (parsed.ok) requests.push(parsed.input);
                }
                after = page[page.length - 1]!.seq;
              }
            }
          } finally {
            await regent.close();
          }
        } else {
          bundles = [fromDir(oldArg), fromDir(newArg)];
        }
        const diff = diffBundles(bundles[0], bundles[1], requests);
        if (o.json) {
          printJson(diff);
          return;
        }
        process.stdout.write(
          `${diff.from} → ${diff.to}: ${diff.changes.filter((c) => c.changed.length).length} of ${diff.total} decisions would change\n`,
        );
        for (const [k, n] of Object.entries(diff.outcomes)) process.stdout.write(`  ${k}: ${n}\n`);
        for (const c of diff.changes.filter((x) => x.changed.length)) {
          process.stdout.write(
            `  #${c.index} ${c.request.principal} ${c.request.action}: ${c.before.outcome} → ${c.after.outcome} (${c.changed.join(', ')})\n`,
          );
        }
      }),
    );

  policy
    .command('versions')
    .description('list the policy versions that have been in force, newest first')
    .option('--json', 'print as JSON')
    .action(
      action(async (o: { json?: boolean }) => {
        const { config, log } = setup('tool');
        const regent = await composition().openRegent(config, log, { command: 'regent policy versions' });
        try {
          const versions = await policyHistory().createPolicyHistory(regent.db).versions(1000);
          if (o.json) printJson(versions);
          else
            for (const v of versions)
              process.stdout.write(`${v.createdAt}  ${v.version}  ${v.summary.authorities.length} authorities  by ${v.loadedBy}\n`);
        } finally {
          await regent.close();
        }
      }),
    );

  policy
    .command('rollback')
    .description('put a recorded version back in force (rewrites policies/authorities from its record; journaled)')
    .argument('<version>', 'sha256:… from regent policy versions')
    .requiredOption('--actor <actor>', 'who rolls back, e.g. user:dana')
    .option('--json', 'print as JSON')
    .action(
      action(async (version: string, o: { actor: string; json?: boolean }) => {
        const { config, log } = setup('tool');
        const regent = await composition().openRegent(config, log, { command: 'regent policy rollback', policies: 'load' });
        try {
          const r = await regent.policy!.rollback(version, o.actor);
          if (o.json) printJson(r);
          else if (r.ok)
            process.stdout.write(r.changed ? `version ${r.version} is in force again\n` : `version ${r.version} was already in force\n`);
          if (!r.ok) throw new CliError(`rollback refused: ${formatLoadError(r.errors[0]!)}`);
        } finally {
          await regent.close();
        }
      }),
    );
}

export function registerPolicyBench(bench: Command): void {
  bench
    .command('policy')
    .description('time one decision in-process (validation, attributes, CASL check, capping): p50/p99 µs, ops/s')
    .option('--policies <dir>', 'policies directory (default: REGENT_POLICIES_DIR or ./policies)')
    .requiredOption('--input <file>', 'request JSON or YAML')
    .option('--iterations <n>', 'decisions to time', positiveInt('--iterations'), 100_000)
    .option('--json', 'print one JSON object')
    .action(
      action((o: { policies?: string; input: string; iterations: number; json?: boolean }) => {
        const request = readInput(o.input);
        const r = benchPolicy(loadOrFail(policiesDir(o.policies)), request, o.iterations);
        if (o.json) printJson(r);
        else process.stdout.write(`p50 ${r.p50_us} µs, p99 ${r.p99_us} µs, ${r.ops_per_s} decisions/s\n`);
      }),
    );
}
