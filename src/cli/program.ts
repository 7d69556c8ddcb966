import { Command, CommanderError } from 'commander';
import { VERSION } from '../version';
import { registerBench } from './bench';
import { registerConnectors } from './connectors';
import { registerDb } from './db';
import { registerJournal } from './journal';
import { registerKnowledge } from './knowledge';
import { registerObjectives } from './objectives';
import { registerPolicy } from './policy';
import { registerProposals } from './proposals';
import { registerServe } from './serve';
import { registerUsers } from './users';

export function buildProgram(): Command {
  const program = new Command('regent')
    .description('Regent: the governed control plane for executive work twins')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerServe(program);
  registerJournal(program);
  registerPolicy(program);
  registerProposals(program);
  registerDb(program);
  registerBench(program);
  registerUsers(program);
  registerObjectives(program);
  registerConnectors(program);
  registerKnowledge(program);
  return program;
}

/** Runs `regent` on `argv` (as process.argv: node, script, args…), leaving the exit code in process.exitCode. */
export async function runCli(argv: readonly string[]): Promise<void> {
  try {
    await buildProgram().parseAsync([...argv]);
  } catch (err: unknown) {
    if (err instanceof CommanderError) {
      // Commander already printed its message (or the help) on stderr/stdout.
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`regent: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
