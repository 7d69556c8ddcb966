import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { generateSigningKey, parseSigningKey, signingKeyToString, signNote, vkeyOf, type SigningKey } from './note';

/** Signs checkpoints. The private key never leaves this object: only `vkey` is shown. */
export interface Signer {
  /** The checkpoint origin, which is also the key's name. */
  readonly origin: string;
  /** C2SP verifier key `<name>+<hex id>+<base64>`. */
  readonly vkey: string;
  sign(text: string): string;
  /**
   * A 32-byte secret for `purpose` derived from the private key (HMAC-SHA256 over it), so that
   * every process holding the journal key derives the same one and nothing else can. Used to
   * sign tokens Regent hands out and reads back (MCP session ids); the key itself stays here.
   */
  deriveSecret(purpose: string): Buffer;
}

export class SigningKeyError extends Error {
  override readonly name = 'SigningKeyError';
}

export function signerFromKeyText(text: string): Signer {
  let key: ReturnType<typeof parseSigningKey>;
  try {
    key = parseSigningKey(text.trim());
  } catch (err) {
    throw new SigningKeyError(`REGENT_SIGNING_KEY: ${(err as Error).message}`);
  }
  return signerOfKey(key);
}

/** The Signer of a parsed key. */
export function signerOfKey(key: SigningKey): Signer {
  const der = key.privateKey.export({ format: 'der', type: 'pkcs8' });
  return {
    origin: key.name,
    vkey: vkeyOf(key),
    sign: (t) => signNote(t, key),
    deriveSecret: (purpose) => createHmac('sha256', der).update(`regent/${purpose}`).digest(),
  };
}

/**
 * The journal's signing key: REGENT_SIGNING_KEY when set, else `<dataDir>/keys/journal.key`,
 * created (mode 0600) on first start with the configured origin as its name.
 */
export function loadOrCreateSigner(opts: { keyText?: string; dataDir: string; origin: string }): Signer & { created: boolean; file?: string } {
  if (opts.keyText) return { ...signerFromKeyText(opts.keyText), created: false };
  const dir = path.join(opts.dataDir, 'keys');
  const file = path.join(dir, 'journal.key');
  let created = false;
  if (!fs.existsSync(file)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const key = generateSigningKey(opts.origin);
    // Written whole under a name of its own, then linked into place: link() creates the name only
    // if it is absent, so processes racing on one data directory end with one key, and none reads
    // a half-written file.
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    fs.writeFileSync(tmp, signingKeyToString(key) + '\n', { flag: 'wx', mode: 0o600 });
    try {
      fs.linkSync(tmp, file);
      created = true;
    } catch (err) {
      // Another process created it first: use theirs.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    if (created) fs.writeFileSync(path.join(dir, 'journal.vkey'), vkeyOf(key) + '\n', { mode: 0o644 });
  }
  let signer: Signer;
  try {
    signer = signerFromKeyText(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new SigningKeyError(`${file}: ${(err as Error).message.replace(/^REGENT_SIGNING_KEY: /, '')}`);
  }
  return { ...signer, created, file };
}
