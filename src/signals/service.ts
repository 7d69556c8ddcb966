/**
 * Signals: events from other systems (a digital twin predicting a failure, a CRM flagging a churn
 * risk). Each is validated, deduplicated by its id, journaled, and matched against the standing
 * rules, which turn it into playbook objectives for twins. All of that commits in one transaction:
 * a refused signal leaves nothing behind but its journal entry, and a repeat of an id gets the
 * first answer back without starting anything again.
 */
import { createHash } from 'node:crypto';
import type { Sql, SqlTx } from '../db/sql';
import { ConflictError, InputError, RegentError } from '../errors/errors';
import { firstIssueAt, parseInput } from '../errors/input';
import { canonicalize } from '../journal/jcs';
import type { JournalService } from '../journal/service';
import type { AppendInput } from '../journal/contract';
import type { Logger } from '../log/logger';
import { addDuration, parseDuration } from '../policy/time';
import type { ObjectiveService, PreparedObjective } from '../objectives/service';
import { matches, render, renderText } from '../objectives/template';
import type { RuleCatalog } from './rules';
import { cloudEventToSignal, type Refusal } from './sources/decode';
import { SignalBodySchema, type SignalResult, type SignalRule } from './types';

export interface SignalDeps {
  sql: Sql;
  journal: Pick<JournalService, 'appendWithin' | 'append'>;
  objectives: Pick<ObjectiveService, 'prepare' | 'insertPrepared' | 'kick'>;
  rules: RuleCatalog;
  log: Logger;
  policyVersion: () => string | null;
}

interface SignalRow {
  id: string;
  content_hash: string;
  result: SignalResult;
}

const where = (r: SignalRule) => `${r.file}:${r.line}`;

/** A signal from a broker: the source it came through (journaled as `via` on a refusal) and where a refused message is copied. */
export interface ReceiveOptions {
  via?: string;
  deadLetter?: string | null;
}


export function createSignalService(deps: SignalDeps) {
  const { sql, journal, log } = deps;

  /** Why nothing answers a type; says so when the rule files on disk were refused (the last good set is in force). */
  function noRule(type: string): string {
    const errors = deps.rules.errors();
    const refused = errors.length ? `; the rule files were refused, so the last good rules are in force: ${errors[0]!.file}:${errors[0]!.line}: ${errors[0]!.message}` : '';
    return `no standing rule answers signals of type ${type} (policies/signals)${refused}`;
  }

  async function find(id: string, tx: Pick<Sql, 'query'> = sql): Promise<SignalRow | undefined> {
    const rows = await tx.query<SignalRow>('SELECT id, content_hash, result FROM signals WHERE id = $1', [id]);
    return rows[0];
  }

  async function refuseWith(actor: string, body: unknown, err: RegentError, via?: ReceiveOptions): Promise<never> {
    const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
    const text = (v: unknown) => (typeof v === 'string' ? v.slice(0, 200) : null);
    const append = journal.append({
      kind: 'signal.refused',
      actor,
      subject: null,
      data: {
        id: text(b.id),
        type: text(b.type),
        source: text(b.source),
        reason: err.message,
        ...(via?.via ? { via: via.via, deadLetter: via.deadLetter ?? null } : {}),
      },
      policyVersion: deps.policyVersion(),
    });
    // From a broker the message is acknowledged only once its refusal is journaled.
    if (via?.via) await append;
    else await append.catch((e) => log.error('could not journal a refused signal', { error: e }));
    log.warn('signal refused', { id: text(b.id), type: text(b.type), reason: err.message, errorId: err.id });
    throw err;
  }

  return {
    /**
     * Receives a signal from `actor` (who holds signal.submit). `created` is false for a repeat
     * of an id already received with the same content, which returns the first result.
     */
    async receive(body: unknown, actor: string, opts: ReceiveOptions = {}): Promise<{ created: boolean; result: SignalResult }> {
      const refuse = (a: string, b: unknown, err: RegentError) => refuseWith(a, b, err, opts);
      let input: ReturnType<typeof SignalBodySchema.parse>;
      try {
        input = parseInput(SignalBodySchema, body, 'body');
      } catch (err) {
        return refuse(actor, body, err as RegentError);
      }
      const contentHash = createHash('sha256')
        .update(canonicalize({ type: input.type, source: input.source, occurredAt: input.occurredAt ?? null, payload: input.payload }))
        .digest('hex');
      const duplicate = (row: SignalRow) => {
        if (row.content_hash.trim() !== contentHash)
          throw new ConflictError(`signal ${input.id} was already received with different content; a new event needs a new id`);
        return { created: false, result: row.result };
      };
      const seen = await find(input.id);
      if (seen) {
        try {
          return duplicate(seen);
        } catch (err) {
          return refuse(actor, body, err as RegentError);
        }
      }

      const receivedAt = new Date();
      const scope = {
        payload: input.payload,
        signal: { id: input.id, type: input.type, source: input.source, occurredAt: input.occurredAt ?? null, receivedAt: receivedAt.toISOString() },
      };
      const rules = deps.rules.forType(input.type);
      const prepared: { rule: SignalRule; objective: PreparedObjective }[] = [];
      const skipped: SignalResult['skipped'] = [];
      try {
        for (const rule of rules) {
          const r = rule.doc;
          if (rule.payloadSchema) {
            const valid = rule.payloadSchema.safeParse(input.payload);
            if (!valid.success) {
              const issue = firstIssueAt(valid.error, 'payload');
              throw new InputError(`${issue.message} (signal rule ${r.id}, ${where(rule)}, expects it for ${input.type})`, { field: issue.field });
            }
          }
          if (!matches(r.when, scope)) {
            skipped.push({ rule: r.id, reason: `conditions not met: ${JSON.stringify(r.when)}` });
            continue;
          }
          const params = render(r.params, scope) as Record<string, unknown>;
          const deadline = r.constraints.deadlineAfter ? addDuration(receivedAt.getTime(), parseDuration(r.constraints.deadlineAfter)!) : undefined;
          const constraints = {
            ...(r.constraints.stepBudget !== undefined ? { stepBudget: r.constraints.stepBudget } : {}),
            ...(r.constraints.spendCeiling ? { spendCeiling: r.constraints.spendCeiling } : {}),
            ...(deadline !== undefined ? { deadline: new Date(deadline).toISOString() } : {}),
          };
          try {
            const objective = await deps.objectives.prepare(
              r.twin,
              { text: renderText(r.text, scope).slice(0, 8000), playbook: r.playbook, params, constraints },
              actor,
              { signal: input.id },
            );
            prepared.push({ rule, objective });
          } catch (err) {
            if (!(err instanceof RegentError)) throw err;
            // The payload did not fit the playbook: the sender's to fix (400). Anything else is
            // the installation's (a rule naming a twin that does not exist): 409.
            const message = `signal rule ${r.id} (${where(rule)}): ${err.message}`;
            throw err.code === 'bad_input' ? new InputError(message, err.details) : new ConflictError(message);
          }
        }
      } catch (err) {
        if (err instanceof RegentError) return refuse(actor, body, err);
        throw err;
      }

      const result = await sql.transaction(async (tx: SqlTx) => {
        const objectives: SignalResult['objectives'] = prepared.map((p) => ({
          id: p.objective.record.id,
          twin: p.objective.record.twin,
          playbook: p.rule.doc.playbook,
          rule: p.rule.doc.id,
          status: 'queued',
        }));
        const result: SignalResult = {
          id: input.id,
          type: input.type,
          source: input.source,
          receivedAt: receivedAt.toISOString(),
          objectives,
          skipped,
          note: rules.length === 0 ? noRule(input.type) : null,
        };
        const inserted = await tx.query(
          `INSERT INTO signals (id, type, source, payload, content_hash, occurred_at, received_by, received_at, result)
           VALUES ($1, $2, $3, $4::jsonb, $5, $6::timestamptz, $7, $8::timestamptz, $9::jsonb) ON CONFLICT (id) DO NOTHING RETURNING id`,
          [input.id, input.type, input.source, JSON.stringify(input.payload), contentHash, input.occurredAt ?? null, actor, receivedAt.toISOString(), JSON.stringify(result)],
        );
        // Received concurrently by another request: that one's result is the answer.
        if (inserted.length === 0) return undefined;
        const entries: AppendInput[] = [
          {
            kind: 'signal.received',
            actor,
            subject: `signal:${input.id}`,
            data: {
              type: input.type,
              source: input.source,
              occurredAt: input.occurredAt ?? null,
              contentHash,
              payload: input.payload,
              objectives: objectives.map((o) => ({ id: o.id, twin: o.twin, rule: o.rule, playbook: o.playbook })),
              skipped,
              rules: rules.map((r) => r.doc.id),
            },
            policyVersion: deps.policyVersion(),
          },
        ];
        await journal.appendWithin(tx, entries);
        for (const p of prepared) await deps.objectives.insertPrepared(tx, p.objective);
        return result;
      });
      if (!result) {
        const row = await find(input.id);
        if (!row) throw new Error(`signal ${input.id} vanished after a conflict`);
        try {
          return duplicate(row);
        } catch (err) {
          return refuse(actor, body, err as RegentError);
        }
      }
      log.info('signal received', { id: input.id, type: input.type, source: input.source, objectives: result.objectives.map((o) => o.id) });
      if (result.objectives.length) deps.objectives.kick();
      return { created: true, result };
    },

    /** A structured CloudEvent (POST /v1/signals as application/cloudevents+json): mapped, then received like any signal. */
    async receiveCloudEvent(ce: unknown, actor: string): Promise<{ created: boolean; result: SignalResult }> {
      const r =
        ce && typeof ce === 'object' && !Array.isArray(ce)
          ? cloudEventToSignal(ce as Record<string, unknown>, 'structured')
          : ({ ok: false, reason: 'a structured CloudEvent is a JSON object' } as const);
      if (!r.ok) return refuseWith(actor, ce, new InputError(r.reason));
      return this.receive(r.body, actor);
    },

    /**
     * Journals a broker message that could not be read as a signal (`signal.refused` with the
     * reason, its size and a short excerpt); resolves once journaled, so the caller may then ack it.
     */
    async refuseMessage(actor: string, via: string, r: Refusal, deadLetter: string | null): Promise<void> {
      await journal.append({
        kind: 'signal.refused',
        actor,
        subject: null,
        data: { id: r.id, type: r.type, source: r.source, reason: r.reason, via, bytes: r.bytes, excerpt: r.excerpt, deadLetter },
        policyVersion: deps.policyVersion(),
      });
      log.warn('signal message refused', { source: via, id: r.id, type: r.type, bytes: r.bytes, reason: r.reason });
    },

    async get(id: string): Promise<SignalResult | undefined> {
      return (await find(id))?.result;
    },
  };
}

export type SignalService = ReturnType<typeof createSignalService>;
