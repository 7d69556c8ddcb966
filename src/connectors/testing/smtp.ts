/** A local SMTP server (the smtp-server package) standing in for a mail relay in tests. */
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerAddress } from 'smtp-server';

export interface ReceivedMail {
  from: string;
  recipients: string[];
  raw: string;
  /** Header lines of the raw message, by lower-case name (first occurrence). */
  headers: Record<string, string>;
  user: string | undefined;
}

export interface SmtpOptions {
  /** Credentials the server accepts; without them, no authentication is offered or needed. */
  auth?: { user: string; pass: string };
  /** An SMTP reply code to refuse RCPT TO with, e.g. 451 (try later) or 550 (never). */
  refuseRecipients?: number;
}

export interface SmtpReceiver {
  port: number;
  messages: ReceivedMail[];
  /** Failed login attempts, with what the client sent. */
  failedLogins: { user: string; pass: string }[];
  close(): Promise<void>;
}

function parseHeaders(raw: string): Record<string, string> {
  const head = raw.split(/\r?\n\r?\n/)[0] ?? '';
  const out: Record<string, string> = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i).toLowerCase()] ??= line.slice(i + 1).trim();
  }
  return out;
}

export async function startSmtpReceiver(opts: SmtpOptions = {}): Promise<SmtpReceiver> {
  const messages: ReceivedMail[] = [];
  const failedLogins: { user: string; pass: string }[] = [];
  const server = new SMTPServer({
    logger: false,
    disabledCommands: opts.auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    authOptional: !opts.auth,
    allowInsecureAuth: true, // loopback only; TLS is not what these tests are about
    onAuth(auth, _session, cb) {
      if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) return cb(null, { user: auth.username });
      failedLogins.push({ user: auth.username ?? '', pass: auth.password ?? '' });
      return cb(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onRcptTo(_address: SMTPServerAddress, _session, cb) {
      if (opts.refuseRecipients)
        return cb(
          Object.assign(new Error(opts.refuseRecipients < 500 ? 'Try again later' : 'No such user'), {
            responseCode: opts.refuseRecipients,
          }),
        );
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        messages.push({
          from,
          recipients: session.envelope.rcptTo.map((r) => r.address),
          raw,
          headers: parseHeaders(raw),
          user: session.user as string | undefined,
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = (server as unknown as { server: { address(): AddressInfo } }).server.address();
  return {
    port,
    messages,
    failedLogins,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
