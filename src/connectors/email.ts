/**
 * The email connector: messages over SMTP through nodemailer. Recipients, their domains and the
 * data class are the attributes the policy decides on. SMTP has no idempotency of its own, so the
 * key goes into a header (`X-Regent-Idempotency-Key`, and a Message-ID derived from it) and every
 * send is recorded in `connector_calls`: the same key is never sent twice.
 */
import { createHash } from 'node:crypto';
import nodemailer from 'nodemailer';
import type { Transporter } from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer';
import type { Sql } from '../db/sql';
import { InputError } from '../errors/errors';
import { checkInFor, runOnce } from './calls';
import { parseInput } from './input';
import { MessageInput, messageAttributes, messageJsonSchema, type Message } from './message';
import type { EmailConnectorDoc } from './schema';
import { scrubber } from './secrets';
import { operationAnnotations, type Connector, type ExecutionResult, type Operation, type Simulation } from './types';

export const IDEMPOTENCY_HEADER = 'X-Regent-Idempotency-Key';
const DEFAULT_TIMEOUT_MS = 30_000;
const PENDING_KEY = '(the idempotency key)';

export interface SmtpCredentials {
  user: string;
  pass: string;
}

/** The message nodemailer sends (or renders, to simulate). */
function compose(doc: EmailConnectorDoc, m: Message, key: string | undefined): Mail.Options {
  const domain = doc.from.replace(/^.*@/, '').replace(/>.*$/, '');
  return {
    from: doc.from,
    to: m.to,
    ...(m.cc?.length ? { cc: m.cc } : {}),
    subject: m.subject,
    text: m.body,
    // The same key gives the same Message-ID, so receiving systems can drop a duplicate too.
    ...(key !== undefined ? { messageId: `<${createHash('sha256').update(key).digest('hex').slice(0, 32)}@${domain}>` } : {}),
    headers: { [IDEMPOTENCY_HEADER]: key ?? PENDING_KEY, 'X-Regent-Data-Class': m.dataClass },
  };
}

/**
 * Whether the message surely was not accepted, so sending again cannot deliver it twice: the
 * server answered with a temporary (4xx) refusal, or no connection was made.
 */
function notDelivered(err: { code?: string; command?: string; responseCode?: number }): boolean {
  if (typeof err.responseCode === 'number') return err.responseCode >= 400 && err.responseCode < 500;
  // nodemailer names the command that failed; CONN means the connection was never established.
  return err.command === 'CONN' || err.code === 'ECONNECTION' || err.code === 'EDNS';
}

export function createEmailConnector(doc: EmailConnectorDoc, credentials: SmtpCredentials | undefined, deps: { sql: Sql }): Connector {
  const { sql } = deps;
  const scrub = scrubber([credentials?.pass, credentials?.user]);
  const timeout = doc.smtp.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // Made on first send and kept in this closure: the transport holds the credentials.
  let transport: Transporter | undefined;
  const smtp = () =>
    (transport ??= nodemailer.createTransport({
      host: doc.smtp.host,
      port: doc.smtp.port,
      secure: doc.smtp.secure ?? false,
      ...(credentials ? { auth: { user: credentials.user, pass: credentials.pass } } : {}),
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout,
      // A message is text from an action request: it may never make Regent read a file or URL.
      disableFileAccess: true,
      disableUrlAccess: true,
    }));

  const operations = new Map<string, Operation>();
  for (const op of doc.operations) {
    operations.set(op.action, {
      action: op.action,
      input: MessageInput,
      inputJsonSchema: messageJsonSchema,
      idempotent: false,
      description: op.description ?? `Sends an email from ${doc.from} over SMTP.`,
      annotations: operationAnnotations(op.annotations, false),
      attributes: messageAttributes,
    });
  }

  function prepare(action: string, input: Record<string, unknown>) {
    const op = operations.get(action);
    if (!op) return { ok: false as const, error: `${doc.id} has no operation ${action}` };
    const parsed = parseInput(op, input);
    return parsed.ok ? { ok: true as const, message: parsed.input as Message } : parsed;
  }

  return {
    id: doc.id,
    type: 'email',
    operations,

    async simulate(action, input): Promise<Simulation> {
      const p = prepare(action, input);
      if (!p.ok) throw new InputError(p.error);
      // nodemailer's stream transport renders the exact MIME message without any network.
      const info = await nodemailer
        .createTransport({ streamTransport: true, buffer: true, newline: 'unix' })
        .sendMail(compose(doc, p.message, undefined));
      const m = p.message;
      return {
        summary: `Email "${m.subject}" from ${doc.from} to ${[...m.to, ...(m.cc ?? [])].join(', ')} (${m.dataClass})`,
        details: {
          connector: doc.id,
          action,
          from: doc.from,
          to: m.to,
          cc: m.cc ?? [],
          subject: m.subject,
          dataClass: m.dataClass,
          raw: info.message.toString('utf8'),
        },
      };
    },

    async execute(action, input, idempotencyKey, ctx): Promise<ExecutionResult> {
      const p = prepare(action, input);
      if (!p.ok) return { ok: false, retryable: false, error: p.error };
      const checkIn = `the mail server ${doc.smtp.host}:${doc.smtp.port} (header ${IDEMPOTENCY_HEADER})`;
      const call = { idempotencyKey, connector: doc.id, action, idempotent: false, checkIn, ...(ctx?.executor ? { executor: ctx.executor } : {}) };
      return runOnce(sql, call, async () => {
        try {
          const info = await smtp().sendMail(compose(doc, p.message, idempotencyKey));
          return {
            ok: true,
            result: {
              messageId: info.messageId,
              accepted: (info.accepted ?? []).map(String),
              rejected: (info.rejected ?? []).map(String),
              response: scrub(String(info.response ?? '')),
            },
          };
        } catch (err) {
          const e = err as Error & { code?: string; command?: string; responseCode?: number };
          const retryable = notDelivered(e);
          const said = `${doc.id}: ${scrub(e.message)}`;
          // Cut off after the message may have been handed over (the session lost after DATA):
          // the mail may have gone out, and sending again could send it twice.
          if (!retryable && !e.responseCode) {
            const where = checkInFor(call);
            return {
              ok: false,
              retryable: false,
              inDoubt: { sentAt: null, sentBy: null, lastHeard: said, checkIn: where },
              error: `${said}; outcome unknown: check ${where}`,
            };
          }
          return { ok: false, retryable, error: said };
        }
      });
    },

    async close() {
      transport?.close();
      transport = undefined;
    },
  };
}
