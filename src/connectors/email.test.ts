import { createHash } from 'node:crypto';
import type { Database } from '../db/database';
import { createTestDatabase, type TestDatabase } from '../../test/support/databases';
import { loadConnectorsFromSources } from './load';
import { startSmtpReceiver, type SmtpOptions, type SmtpReceiver } from './testing/smtp';
import type { Connector } from './types';

const USER = 'twin-mailer';
const PASS = 'smtp-pass-77c2e1';

let tdb: TestDatabase;
let db: Database;
let smtp: SmtpReceiver | undefined;
let connector: Connector | undefined;
let keyN = 0;
const newKey = () => `mail-${process.pid}-${Date.now()}-${++keyN}`;

beforeAll(async () => {
  tdb = await createTestDatabase('embedded');
  db = await tdb.open();
});
afterAll(async () => {
  await db?.close();
  await tdb?.drop();
});
afterEach(async () => {
  await connector?.close?.();
  await smtp?.close();
  connector = undefined;
  smtp = undefined;
});

async function setup(opts: SmtpOptions = { auth: { user: USER, pass: PASS } }, port?: number): Promise<Connector> {
  if (port === undefined) smtp = await startSmtpReceiver(opts);
  const text = `
kind: Connector
id: email
type: email
smtp: { host: 127.0.0.1, port: ${port ?? smtp!.port}, secure: false, auth: { userEnv: SMTP_USER, passEnv: SMTP_PASS }, timeoutMs: 2000 }
from: "Vic's twin <vic-twin@regent.example>"
operations:
  - action: email.send
`;
  const loaded = loadConnectorsFromSources(
    [{ file: 'policies/connectors/email.yaml', text }],
    { SMTP_USER: USER, SMTP_PASS: PASS },
    { sql: db.sql },
  );
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  connector = loaded.registry.connectors.get('email')!;
  return connector;
}

const message = {
  to: ['buyer@acme.example', 'ops@Acme.example'],
  cc: ['cfo@globex.example'],
  subject: 'Your renewal',
  body: 'Dear buyer,\nyour renewal discount is confirmed.\n',
  dataClass: 'internal',
};

describe('the email connector', () => {
  test('sends a message once per idempotency key, to every recipient, with the key in its headers', async () => {
    const c = await setup();
    const key = newKey();
    const first = await c.execute('email.send', message, key);
    const second = await c.execute('email.send', message, key);
    expect(first).toMatchObject({
      ok: true,
      result: { accepted: ['buyer@acme.example', 'ops@acme.example', 'cfo@globex.example'], rejected: [] },
    });
    expect(second).toEqual(first);
    expect(smtp!.messages).toHaveLength(1);
    const [mail] = smtp!.messages;
    expect(mail!.user).toBe(USER);
    expect(mail!.from).toBe('vic-twin@regent.example');
    expect(mail!.recipients).toEqual(['buyer@acme.example', 'ops@acme.example', 'cfo@globex.example']);
    expect(mail!.headers['x-regent-idempotency-key']).toBe(key);
    expect(mail!.headers['x-regent-data-class']).toBe('internal');
    expect(mail!.headers['message-id']).toBe(`<${createHash('sha256').update(key).digest('hex').slice(0, 32)}@regent.example>`);
    expect(mail!.headers.subject).toBe('Your renewal');
    expect(mail!.headers.cc).toBe('cfo@globex.example');
    expect(mail!.raw).toContain('your renewal discount is confirmed.');
  });

  test('the policy sees recipients, their domains, the data class and the first domain as counterparty', async () => {
    const op = (await setup()).operations.get('email.send')!;
    expect(op.attributes(op.input.parse(message))).toEqual({
      recipients: ['buyer@acme.example', 'ops@acme.example', 'cfo@globex.example'],
      recipientDomains: ['acme.example', 'globex.example'],
      dataClass: 'internal',
      counterparty: 'acme.example',
    });
    expect(op.idempotent).toBe(false);
  });

  test('simulate renders the message without sending anything', async () => {
    const c = await setup();
    const sim = await c.simulate('email.send', message);
    expect(sim.summary).toBe(
      'Email "Your renewal" from Vic\'s twin <vic-twin@regent.example> to buyer@acme.example, ops@Acme.example, cfo@globex.example (internal)',
    );
    expect(sim.details.raw).toEqual(expect.stringContaining('Subject: Your renewal'));
    expect(sim.details.raw).toEqual(expect.stringContaining('To: buyer@acme.example, ops@acme.example'));
    expect(smtp!.messages).toHaveLength(0);
  });

  test('a message with a bad address or no data class is refused before anything is sent', async () => {
    const c = await setup();
    const r = await c.execute('email.send', { ...message, to: ['not-an-address'], dataClass: undefined }, newKey());
    expect(r).toMatchObject({ ok: false, retryable: false, error: expect.stringMatching(/to\[0\].*not an email address.*dataClass/s) });
    await expect(c.simulate('email.send', { ...message, subject: 'two\nlines' })).rejects.toThrow(/subject: a subject is one line/);
    expect(smtp!.messages).toHaveLength(0);
  });

  test('after a crash mid-send the message is not sent again; the outcome is reported as unknown', async () => {
    const c = await setup();
    const key = newKey();
    await db.sql.query(
      `INSERT INTO connector_calls (idempotency_key, connector, action, status) VALUES ($1, 'email', 'email.send', 'started')`,
      [key],
    );
    const r = await c.execute('email.send', message, key);
    expect(r).toMatchObject({
      ok: false,
      retryable: false,
      error: expect.stringMatching(/^outcome unknown after a crash.*X-Regent-Idempotency-Key/),
      inDoubt: { checkIn: expect.stringContaining(`(header X-Regent-Idempotency-Key) for idempotency key ${key}`) },
    });
    expect(smtp!.messages).toHaveLength(0);
  });

  test('a temporary refusal (4xx) is retryable and a later attempt with the same key sends it', async () => {
    smtp = await startSmtpReceiver({ auth: { user: USER, pass: PASS }, refuseRecipients: 451 });
    const port = smtp.port;
    const c = await setup(undefined, port);
    const key = newKey();
    expect(await c.execute('email.send', message, key)).toMatchObject({ ok: false, retryable: true });
    await smtp.close();
    await c.close?.();
    smtp = await startSmtpReceiver({ auth: { user: USER, pass: PASS } });
    const again = await setup(undefined, smtp.port);
    expect(await again.execute('email.send', message, key)).toMatchObject({ ok: true });
    expect(smtp.messages).toHaveLength(1);
  });

  test('a permanent refusal (5xx) is not retryable', async () => {
    smtp = await startSmtpReceiver({ auth: { user: USER, pass: PASS }, refuseRecipients: 550 });
    const c = await setup(undefined, smtp.port);
    expect(await c.execute('email.send', message, newKey())).toMatchObject({
      ok: false,
      retryable: false,
      error: expect.stringContaining('550'),
    });
  });

  test('an unreachable mail server is retryable: nothing was sent', async () => {
    const probe = await startSmtpReceiver();
    const port = probe.port;
    await probe.close();
    const c = await setup(undefined, port);
    expect(await c.execute('email.send', message, newKey())).toMatchObject({ ok: false, retryable: true });
  });
});
