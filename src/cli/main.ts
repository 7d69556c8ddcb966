#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import dotenv from 'dotenv';
import { VERSION } from '../version';
import { registerBench } from './bench';
import { registerDb } from './db';
import { registerJournal } from './journal';
import { registerObjectives } from './objectives';
import { registerPolicy } from './policy';
import { registerProposals } from './proposals';
import { registerServe } from './serve';
import { registerUsers } from './users';

// A .env file in the working directory is read, as the README says; the real environment wins.
dotenv.config({ quiet: true });

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
  return program;
}

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    if (err instanceof CommanderError) {
      // Commander already printed its message (or the help) on stderr/stdout.
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`regent: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
