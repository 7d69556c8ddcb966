/**
 * A tool call is an ordinary action request: the operation's schema, policy, journal,
 * idempotency, kill switch, modes, running totals and in-doubt handling are the pipeline's
 * (ProposalService.create), never re-implemented here. This module turns a `tools/call` into that
 * request, holds it open while a person may still approve it, and shapes the answer as DESIGN.md
 * fixes it.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../log/logger';
import type { JournalService } from '../journal/service';
import { canonicalize } from '../journal/jcs';
import { RegentError } from '../errors/errors';
import type { ProposalService } from '../proposals/service';
import type { Proposal, ProposalStatus } from '../proposals/types';
import type { McpClient } from './session';

/** Statuses that may still change without anyone but Regent or an approver acting: a call waits on these. */
const WAITS_ON: ReadonlySet<ProposalStatus> = new Set(['pending_approval', 'approved', 'executing']);
/** Statuses whose tool result is an error (DESIGN.md). */
const ERROR_STATUSES: ReadonlySet<ProposalStatus> = new Set(['denied', 'rejected', 'failed', 'expired', 'cancelled']);

export interface CallResult {
  [k: string]: unknown;
  content: { type: 'text'; text: string }[];
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
}

/** A refusal before any proposal existed (bad arguments, a conflict, storage down): an isError result naming why. */
export function refusal(text: string): CallResult {
  return { content: [{ type: 'text', text }], structuredContent: { proposal: null, status: 'refused', reason: text }, isError: true };
}

function reasonsText(p: Proposal): string {
  return p.decision.reasons.map((r) => r.message).join('; ');
}

/** The answer for a proposal as it stands: DESIGN.md's structuredContent, and a line a model can read. */
export function proposalResult(p: Proposal, note?: string): CallResult {
  const structured: Record<string, unknown> = {
    proposal: p.id,
    status: p.status,
    decision: { outcome: p.decision.outcome, reasons: p.decision.reasons },
  };
  if (p.result) structured.result = p.result;
  if (p.error) structured.error = p.error;
  let text: string;
  switch (p.status) {
    case 'executed':
      text = `Executed (proposal ${p.id}).${p.result ? ` Result: ${JSON.stringify(p.result)}` : ''}`;
      break;
    case 'pending_approval': {
      const a = p.approval;
      structured.approval = a && { approvers: a.approvers, quorum: a.quorum, approvedBy: a.approvedBy, expiresAt: a.expiresAt };
      text =
        `Pending approval (proposal ${p.id}): ${a ? `${a.quorum > 1 ? `${a.quorum} of ` : ''}${a.approvers.join(', ')} must approve before ${a.expiresAt}` : 'a person must approve'}. ` +
        `Nothing has run. Ask ${'regent_proposal_status'} with this proposal id later. Why: ${reasonsText(p)}`;
      break;
    }
    case 'proposed':
      text = `Proposed (proposal ${p.id}): recorded for a person to act on; nothing runs in propose mode. ${reasonsText(p)}`;
      break;
    case 'approved':
    case 'executing':
      text = `${p.status === 'approved' ? 'Approved' : 'Executing'} (proposal ${p.id}): it runs shortly; ask regent_proposal_status for the outcome.`;
      break;
    case 'in_doubt':
      text = `In doubt (proposal ${p.id}): the call to the business system was cut off and Regent cannot know whether it took effect; a person settles it. Do not repeat it.`;
      break;
    case 'denied':
      text = `Denied (proposal ${p.id}): ${reasonsText(p)}`;
      break;
    case 'rejected':
      text = `Rejected by an approver (proposal ${p.id}).${p.error ? ` ${p.error}` : ''}`;
      break;
    case 'failed':
      text = `Failed (proposal ${p.id}): ${p.error ?? 'the business system refused it'}`;
      break;
    case 'expired':
      text = `Expired (proposal ${p.id}): no one approved it in time; nothing ran.`;
      break;
    case 'cancelled':
      text = `Cancelled (proposal ${p.id}); nothing ran.${p.error ? ` ${p.error}` : ''}`;
      break;
  }
  if (note) text = `${text} ${note}`;
  return { content: [{ type: 'text', text }], structuredContent: structured, ...(ERROR_STATUSES.has(p.status) ? { isError: true } : {}) };
}

export interface CallDeps {
  proposals: Pick<ProposalService, 'create' | 'get' | 'byIdempotencyKey'>;
  journal: Pick<JournalService, 'append'>;
  log: Logger;
  /** How long a call waits for its proposal to settle before answering pending_approval. */
  holdMs: number;
  /** How often a held call looks at its proposal (any process may settle it). */
  pollMs: number;
  /** Identical calls (same twin, tool, arguments) without an idempotency key within this window are one request. */
  retryWindowMs: number;
  /** Progress between polls: sent at most this often while a call is held (they keep the stream alive too). */
  progressEveryMs: number;
  /**
   * Where this process is the only one that makes proposals (the embedded database): the derived
   * keys made since `since`, read once, after which this process's own record of the keys it
   * made is complete and a call needs no lookup of the window before. Left out (PostgreSQL, many
   * processes): each call without a key looks the window before up in the database.
   */
  derivedKeysSince?: (since: Date) => Promise<{ key: string; createdAt: number }[]>;
}

/** At most this many derived keys are remembered; past it the record is incomplete for two windows and lookups resume. */
const MAX_REMEMBERED = 200_000;

export interface CallRequest {
  twin: string;
  tool: string;
  action: string;
  args: Record<string, unknown>;
  meta: Record<string, unknown> | undefined;
  client: McpClient;
  progress?: (progress: number, message: string) => Promise<void>;
  signal: AbortSignal;
}

const KEY_META = 'regent/idempotencyKey';
/** How the idempotency keys derived for calls without one begin. */
export const DERIVED_KEY_PREFIX = 'mcp:';
const RATIONALE_META = 'regent/rationale';

/**
 * The idempotency key of a call without one: the twin, action and arguments, and the window of
 * time it falls in. A client that retries a call (after a timeout, a dropped stream) sends the
 * same tool and arguments again, and gets the same proposal; the window before is looked at too,
 * so a retry across a window's edge is still the same request.
 */
export function derivedKeys(twin: string, action: string, args: Record<string, unknown>, windowMs: number, now: number): { current: string; previous: string } {
  const digest = createHash('sha256').update(`${twin}\u0000${action}\u0000${canonicalize(args)}`).digest('hex').slice(0, 40);
  const w = Math.floor(now / windowMs);
  return { current: `${DERIVED_KEY_PREFIX}${digest}:${w}`, previous: `${DERIVED_KEY_PREFIX}${digest}:${w - 1}` };
}

export function createCallHandler(deps: CallDeps) {
  const { proposals, log } = deps;
  const W = deps.retryWindowMs;

  /**
   * The derived keys of calls this process made, with when. Where it is complete (see
   * derivedKeysSince) a call without a key finds a retry of the window before here.
   */
  const remembered = new Map<string, number>();
  let seeded: Promise<boolean> | undefined;
  let incompleteUntil = 0;
  function rememberedIsComplete(now: number): Promise<boolean> {
    if (!deps.derivedKeysSince || now < incompleteUntil) return Promise.resolve(false);
    seeded ??= deps.derivedKeysSince(new Date(now - 2 * W)).then(
      (rows) => {
        for (const r of rows) if (!remembered.has(r.key)) remembered.set(r.key, r.createdAt);
        return true;
      },
      (err) => {
        log.warn('could not read the recent MCP call keys; looking each up instead', { error: err });
        seeded = undefined;
        return false;
      },
    );
    return seeded;
  }
  function remember(key: string, createdAt: number, now: number) {
    remembered.set(key, createdAt);
    if (remembered.size <= MAX_REMEMBERED) return;
    for (const [k, at] of remembered) if (now - at >= 2 * W) remembered.delete(k);
    if (remembered.size > MAX_REMEMBERED) {
      // Too many to keep: forget them all, and look up again until the forgotten are out of reach.
      remembered.clear();
      incompleteUntil = now + 2 * W;
    }
  }

  /** The key of a call that brought none: the window's, or the window before's where that call was made within the retry window. */
  async function derivedKey(req: CallRequest, now: number): Promise<string> {
    const keys = derivedKeys(req.twin, req.action, req.args, W, now);
    const complete = await rememberedIsComplete(now);
    const at = remembered.get(keys.previous);
    if (at !== undefined) return now - at < W ? keys.previous : keys.current;
    if (complete) return keys.current;
    const earlier = await proposals.byIdempotencyKey(req.twin, keys.previous).catch(() => undefined);
    return earlier && now - Date.parse(earlier.createdAt) < W ? keys.previous : keys.current;
  }

  const sleep = (ms: number, signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });

  /** Waits while the proposal may still settle by itself or by an approver, up to the hold. */
  async function hold(p: Proposal, req: CallRequest, started: number): Promise<{ proposal: Proposal; left: boolean }> {
    const deadline = started + deps.holdMs;
    let current = p;
    let sent = 0;
    let lastProgressAt = 0;
    while (WAITS_ON.has(current.status) && Date.now() < deadline) {
      if (req.signal.aborted) return { proposal: current, left: true };
      if (req.progress && Date.now() - lastProgressAt >= deps.progressEveryMs) {
        lastProgressAt = Date.now();
        const what = current.status === 'pending_approval' ? 'waiting for approval' : `${current.status}`;
        await req.progress(++sent, `proposal ${current.id}: ${what}`).catch(() => undefined);
      }
      await sleep(Math.min(deps.pollMs, Math.max(0, deadline - Date.now())), req.signal);
      if (req.signal.aborted) return { proposal: current, left: true };
      try {
        current = await proposals.get(current.id);
      } catch (err) {
        // Storage hiccup while waiting: stop waiting, answer with what is known; the proposal stands.
        log.warn('could not look at a held MCP call’s proposal; answering with what is known', { proposal: current.id, error: err });
        break;
      }
    }
    return { proposal: current, left: false };
  }

  return {
    async call(req: CallRequest): Promise<CallResult> {
      const started = Date.now();
      const given = req.meta?.[KEY_META];
      if (given !== undefined && (typeof given !== 'string' || given.length === 0 || given.length > 200)) {
        const text = `_meta["${KEY_META}"] must be a string of 1 to 200 characters`;
        await deps.journal
          .append({ kind: 'proposal.refused', actor: `twin:${req.twin}`, data: { reason: text, action: req.action } })
          .catch((err) => log.error('could not journal a refused MCP call', { error: err }));
        return refusal(text);
      }
      const rationaleGiven = req.meta?.[RATIONALE_META];
      const rationale =
        typeof rationaleGiven === 'string' && rationaleGiven.trim().length > 0
          ? rationaleGiven.slice(0, 4000)
          : `Requested over MCP by ${req.client.name} ${req.client.version} (tool ${req.tool}).`;
      const derived = given === undefined;
      const key = derived ? await derivedKey(req, started) : (given as string);
      const context = { via: 'mcp', mcp: { client: { name: req.client.name, version: req.client.version }, protocol: req.client.protocol, tool: req.tool } };
      let created: { proposal: Proposal; created: boolean };
      try {
        created = await proposals.create(req.twin, { action: req.action, args: req.args, rationale, idempotencyKey: key }, { context });
      } catch (err) {
        // The pipeline journaled the refusal (bad args, conflict, a twin that is gone, storage down).
        if (err instanceof RegentError) return refusal(err.code === 'unavailable' ? `Not done: ${err.message}` : err.message);
        log.error('an MCP tool call failed unexpectedly', { error: err, action: req.action });
        return refusal('Not done: Regent could not record the request (an internal error; it is in the log).');
      }
      if (derived && created.created) remember(key, Date.parse(created.proposal.createdAt), started);
      const { proposal, left } = await hold(created.proposal, req, started);
      if (left) {
        await deps.journal
          .append({
            kind: 'mcp.call_left',
            actor: `twin:${req.twin}`,
            subject: `proposal:${proposal.id}`,
            data: { tool: req.tool, client: req.client, status: proposal.status, heldMs: Date.now() - started },
          })
          .catch((err) => log.error('could not journal an MCP client leaving a held call', { error: err }));
        log.info('MCP client left while its call was held; the proposal stands', { proposal: proposal.id, status: proposal.status });
      }
      return proposalResult(proposal, created.created ? undefined : 'This call was made before (same idempotency key); this is that request.');
    },

    /** regent_proposal_status: a twin's own proposals only. */
    async status(twin: string, id: unknown): Promise<CallResult> {
      if (typeof id !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) {
        return refusal('proposal: must be the proposal id (a UUID) a tool call answered with');
      }
      let p: Proposal;
      try {
        p = await proposals.get(id);
      } catch (err) {
        if (err instanceof RegentError && err.code === 'not_found') return refusal(`proposal ${id} does not exist`);
        if (err instanceof RegentError) return refusal(`Not available: ${err.message}`);
        throw err;
      }
      // Another twin's proposal is not this twin's to see: answered exactly like one that does not exist.
      if (p.twin !== twin) return refusal(`proposal ${id} does not exist`);
      return proposalResult(p);
    },
  };
}

export type CallHandler = ReturnType<typeof createCallHandler>;
