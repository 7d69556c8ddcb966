/** What the jobs of the proposal service share: how a decision places a proposal, and the rules they all apply. */
import { createHash } from 'node:crypto';
import type { Connector, Operation } from '../connectors/types';
import { ConflictError } from '../errors/errors';
import { canonicalize } from '../journal/jcs';
import type { Decision, DecisionRequest, Mode } from '../policy/types';
import type { ProposalDeps, ProposalOptions } from './service';
import type { NewProposal } from './store';
import { TRANSITIONS, type ApprovalState, type Proposal, type ProposalStatus } from './types';

/** The status a policy outcome puts a new proposal in. */
export const OUTCOME_STATUS = { deny: 'denied', propose: 'proposed', approve: 'pending_approval', execute: 'approved' } as const;

/** SHA-256 of the canonical args: what an approval is bound to. */
export function payloadHash(args: unknown): string {
  return createHash('sha256').update(canonicalize(args)).digest('hex');
}

/** Refuses (409) a move that TRANSITIONS does not allow. */
export function assertTransition(p: Proposal, to: ProposalStatus): void {
  if (!TRANSITIONS[p.status].includes(to)) {
    throw new ConflictError(`proposal ${p.id} is ${p.status}; it cannot become ${to}`, { status: p.status });
  }
}

function approvalState(d: Decision): ApprovalState | null {
  if (!d.approval) return null;
  return {
    approvers: d.approval.approvers,
    quorum: d.approval.quorum,
    expiresAt: d.approval.expiresAt,
    escalateTo: d.approval.escalateTo ?? [],
    approvedBy: [],
    escalated: false,
  };
}

/** The decision request of a twin's action. */
export function request(
  twin: { id: string; authority: string; mode: Mode },
  action: string,
  attributes: Record<string, unknown>,
): DecisionRequest {
  return {
    principal: `twin:${twin.id}`,
    action,
    resource: attributes,
    at: new Date().toISOString(),
    twinMode: twin.mode,
    authority: twin.authority,
  };
}

/** What the jobs of the proposal service (intake, review, executor, sweeper) are given. */
export interface ProposalContext {
  deps: ProposalDeps;
  opts: ProposalOptions;
  /** This process's executor id: who claims work. */
  executor: string;
  resolve(action: string): { connector: Connector; operation: Operation } | undefined;
  attributesOf(action: string, args: Record<string, unknown>): Record<string, unknown>;
  placement(d: Decision, twinMode: Mode, now: number): Pick<NewProposal, 'status' | 'approval' | 'expiresAt' | 'audit'>;
}

export function createContext(deps: ProposalDeps, opts: ProposalOptions, executor: string): ProposalContext {
  function resolve(action: string): { connector: Connector; operation: Operation } | undefined {
    return deps.connectors().resolve(action);
  }

  /** The status, expiry and audit flag a fresh decision leads to. */
  function placement(d: Decision, twinMode: Mode, now: number): Pick<NewProposal, 'status' | 'approval' | 'expiresAt' | 'audit'> {
    const status = OUTCOME_STATUS[d.outcome];
    const approval = approvalState(d);
    const expiresAt =
      status === 'pending_approval'
        ? approval!.expiresAt
        : status === 'approved'
          ? new Date(now + opts.executionWindowMs).toISOString()
          : null;
    // Execute mode runs first and is looked at afterwards: queue it for post-hoc audit.
    const audit = status === 'approved' && twinMode === 'execute' ? 'pending' : null;
    return { status, approval, expiresAt, audit };
  }

  function attributesOf(action: string, args: Record<string, unknown>): Record<string, unknown> {
    const r = resolve(action);
    return r ? r.operation.attributes(args) : {};
  }

  return { deps, opts, executor, resolve, attributesOf, placement };
}
