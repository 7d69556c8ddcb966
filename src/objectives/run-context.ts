/** What the jobs of the objective runner (the scheduler, a turn, the guards of `act`) share. */
import type { AppendInput } from '../journal/contract';
import type { RunnerDeps, RunnerOptions } from './runner';
import type { ObjectiveStatus } from './types';

/** What the runner gives a turn and the guards: its dependencies, options and identity. */
export interface RunContext {
  deps: RunnerDeps;
  opts: RunnerOptions;
  /** This process's runner id: who claims runs and holds their leases. */
  runner: string;
  policyVersion(): string | null;
}

/** Why a turn was interrupted: the objective was cancelled, the process stops, or another runner took over. */
export class Interrupted extends Error {
  constructor(
    readonly why: 'cancelled' | 'stopping' | 'lost',
    message: string,
  ) {
    super(message);
    this.name = 'Interrupted';
  }
}

export const subject = (id: string) => `objective:${id}`;

export function transitionEntry(o: { id: string; twin: string }, from: ObjectiveStatus, to: ObjectiveStatus, actor: string, reason: string, policyVersion: string | null): AppendInput<'objective.transitioned'> {
  return { kind: 'objective.transitioned', actor, subject: subject(o.id), data: { twin: o.twin, from, to, reason }, policyVersion };
}
