/**
 * C2SP signed notes (https://c2sp.org/signed-note) with Ed25519, and C2SP tlog-checkpoint
 * bodies (https://c2sp.org/tlog-checkpoint). node:crypto only.
 *
 *   key ID          = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)[:4]
 *   verifier key    = <name>+<8 hex key ID>+<base64(0x01 ‖ public key)>
 *   private key     = PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x01 ‖ 32-byte seed)>   (Go's
 *                     golang.org/x/mod/sumdb/note format, so keys move between tools)
 *   signature line  = "— " <name> " " base64(key ID ‖ 64-byte signature) "\n"
 *   note            = text (ending "\n") ‖ "\n" ‖ signature lines
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, KeyObject } from 'node:crypto';

const ALG_ED25519 = 0x01;
const EM_DASH_PREFIX = '\u2014 ';
// Generous next to the spec's "at least 16"; bounds the work a hostile note can cause.
const MAX_SIGNATURES = 100;

// DER wrappers that turn raw Ed25519 keys into KeyObjects (RFC 8410 SPKI / PKCS#8).
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface SigningKey {
  name: string;
  /** Big-endian uint32 key ID as 4 bytes. */
  keyId: Buffer;
  privateKey: KeyObject;
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Buffer;
}

export interface VerifierKey {
  name: string;
  keyId: Buffer;
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Buffer;
  keyObject: KeyObject;
}

export class NoteKeyError extends Error {
  override name = 'NoteKeyError';
}

export class NoteFormatError extends Error {
  override name = 'NoteFormatError';
}

/** C2SP: key names are non-empty and contain no Unicode spaces and no "+". */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+]/u.test(name) && !hasControlChars(name);
}

function hasControlChars(s: string): boolean {
  return /[\u0000-\u0009\u000b-\u001f]/.test(s);
}

/** Decodes standard base64 (RFC 4648 section 4) strictly: Buffer.from silently skips junk. */
export function decodeBase64Strict(s: string): Buffer | null {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
  const b = Buffer.from(s, 'base64');
  // Re-encoding catches non-zero padding bits, i.e. a second spelling of the same bytes.
  return b.toString('base64') === s ? b : null;
}

export function computeKeyId(name: string, publicKey: Buffer): Buffer {
  return createHash('sha256')
    .update(name, 'utf8')
    .update(Buffer.from([0x0a, ALG_ED25519]))
    .update(publicKey)
    .digest()
    .subarray(0, 4);
}

function publicKeyObject(raw: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

function rawPublicKey(pub: KeyObject): Buffer {
  const der = pub.export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - 32));
}

function rawSeed(priv: KeyObject): Buffer {
  const der = priv.export({ format: 'der', type: 'pkcs8' });
  return Buffer.from(der.subarray(der.length - 32));
}

function signingKeyFrom(name: string, privateKey: KeyObject): SigningKey {
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  return { name, keyId: computeKeyId(name, publicKey), privateKey, publicKey };
}

export function generateSigningKey(name: string): SigningKey {
  if (!isValidKeyName(name)) throw new NoteKeyError(`invalid key name ${JSON.stringify(name)}: it must be non-empty, without spaces or "+"`);
  const { privateKey } = generateKeyPairSync('ed25519');
  return signingKeyFrom(name, privateKey);
}

/** Go note format: PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 ‖ seed)>. Keep it secret. */
export function signingKeyToString(key: SigningKey): string {
  const seed = rawSeed(key.privateKey);
  return `PRIVATE+KEY+${key.name}+${key.keyId.toString('hex')}+${Buffer.concat([Buffer.from([ALG_ED25519]), seed]).toString('base64')}`;
}

/**
 * Splits at the first `count - 1` plus signs: names cannot contain "+", but base64 can, so the
 * last part keeps its own (as Go's note package does).
 */
function splitPlus(s: string, count: number): string[] | null {
  const out: string[] = [];
  let rest = s;
  for (let i = 0; i < count - 1; i++) {
    const p = rest.indexOf('+');
    if (p < 0) return null;
    out.push(rest.slice(0, p));
    rest = rest.slice(p + 1);
  }
  out.push(rest);
  return out;
}

/** Parses the form written by signingKeyToString (or Go's note.GenerateKey). */
export function parseSigningKey(text: string): SigningKey {
  const parts = splitPlus(text.trim(), 5);
  if (parts === null || parts[0] !== 'PRIVATE' || parts[1] !== 'KEY') {
    throw new NoteKeyError('signing key must look like PRIVATE+KEY+<name>+<8 hex key id>+<base64 key>');
  }
  const [, , name, hexId, b64] = parts as [string, string, string, string, string];
  if (!isValidKeyName(name)) throw new NoteKeyError(`signing key has an invalid name ${JSON.stringify(name)}`);
  if (!/^[0-9a-f]{8}$/.test(hexId)) throw new NoteKeyError('signing key id must be 8 lowercase hex digits');
  const raw = decodeBase64Strict(b64);
  if (raw === null) throw new NoteKeyError('signing key material is not valid base64');
  if (raw.length !== 33) throw new NoteKeyError(`signing key material must be 33 bytes, got ${raw.length}`);
  if (raw[0] !== ALG_ED25519) throw new NoteKeyError(`signing key algorithm byte is 0x${(raw[0] ?? 0).toString(16).padStart(2, '0')}, expected 0x01 (Ed25519)`);
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw.subarray(1)]), format: 'der', type: 'pkcs8' });
  const key = signingKeyFrom(name, privateKey);
  if (key.keyId.toString('hex') !== hexId) {
    throw new NoteKeyError(`signing key id ${hexId} does not match the key (computed ${key.keyId.toString('hex')})`);
  }
  return key;
}

/** The verifier key text (C2SP vkey) for a signing key: safe to publish. */
export function vkeyOf(key: SigningKey | VerifierKey): string {
  return `${key.name}+${key.keyId.toString('hex')}+${Buffer.concat([Buffer.from([ALG_ED25519]), key.publicKey]).toString('base64')}`;
}

export function parseVerifierKey(text: string): VerifierKey {
  const parts = splitPlus(text.trim(), 3);
  if (parts === null) {
    throw new NoteKeyError('verifier key must have 3 "+"-separated parts: <name>+<8 hex key id>+<base64 key>');
  }
  const [name, hexId, b64] = parts as [string, string, string];
  if (!isValidKeyName(name)) throw new NoteKeyError(`verifier key has an invalid name ${JSON.stringify(name)}`);
  if (!/^[0-9a-f]{8}$/.test(hexId)) throw new NoteKeyError(`verifier key id ${JSON.stringify(hexId)} is not 8 lowercase hex digits`);
  const raw = decodeBase64Strict(b64);
  if (raw === null) throw new NoteKeyError('verifier key material is not valid base64');
  if (raw.length === 0) throw new NoteKeyError('verifier key material is empty');
  if (raw[0] !== ALG_ED25519) {
    throw new NoteKeyError(`verifier key algorithm byte is 0x${(raw[0] ?? 0).toString(16).padStart(2, '0')}, expected 0x01 (Ed25519)`);
  }
  if (raw.length !== 33) throw new NoteKeyError(`Ed25519 verifier key must be 1 + 32 bytes, got ${raw.length}`);
  const publicKey = Buffer.from(raw.subarray(1));
  const keyId = computeKeyId(name, publicKey);
  if (keyId.toString('hex') !== hexId) {
    throw new NoteKeyError(`verifier key id ${hexId} does not match the key (computed ${keyId.toString('hex')})`);
  }
  let keyObject: KeyObject;
  try {
    keyObject = publicKeyObject(publicKey);
  } catch (err) {
    throw new NoteKeyError(`verifier key is not a valid Ed25519 public key: ${(err as Error).message}`);
  }
  return { name, keyId, publicKey, keyObject };
}

function checkNoteText(text: string): void {
  if (text.length === 0 || !text.endsWith('\n')) throw new NoteFormatError('note text must end with a newline');
  if (hasControlChars(text)) throw new NoteFormatError('note text must not contain control characters other than newline');
}

/** Signs `text` (which must end in "\n") and returns the complete note. */
export function signNote(text: string, key: SigningKey): string {
  checkNoteText(text);
  const sig = sign(null, Buffer.from(text, 'utf8'), key.privateKey);
  return `${text}\n${EM_DASH_PREFIX}${key.name} ${Buffer.concat([key.keyId, sig]).toString('base64')}\n`;
}

export type OpenedNote =
  | { text: string; verified: true }
  | { text: string | null; verified: false; reason: string };

interface SignatureLine {
  name: string;
  keyId: Buffer;
  sig: Buffer;
}

/**
 * Splits and checks a note, then verifies the signature made by `key` (matched by name AND key
 * ID, as the spec requires: a signature that shares only one of them is someone else's and is
 * ignored). Never throws for bad input; `reason` says what is wrong.
 */
export function openNote(note: string | Buffer, key: VerifierKey): OpenedNote {
  let noteText: string;
  if (typeof note === 'string') {
    noteText = note;
  } else {
    try {
      // Fatal decoding: the spec requires valid UTF-8, and lenient decoding would hide bad bytes.
      noteText = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(note);
    } catch {
      return { text: null, verified: false, reason: 'note is not valid UTF-8' };
    }
  }
  if (noteText.includes('\r')) return { text: null, verified: false, reason: 'note contains a carriage return (CRLF line endings?)' };
  if (hasControlChars(noteText)) return { text: null, verified: false, reason: 'note contains control characters other than newline' };
  // The text is separated from the signatures by the LAST blank line; the text may contain others.
  const split = noteText.lastIndexOf('\n\n');
  if (split < 0) return { text: null, verified: false, reason: 'note has no blank line between text and signatures' };
  const text = noteText.slice(0, split + 1);
  const sigBlock = noteText.slice(split + 2);
  if (sigBlock.length === 0) return { text, verified: false, reason: 'note has no signature lines' };
  if (!sigBlock.endsWith('\n')) return { text, verified: false, reason: 'note does not end with a newline' };
  const lines = sigBlock.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) return { text, verified: false, reason: `note has more than ${MAX_SIGNATURES} signatures` };

  const parsed: SignatureLine[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const sl = parseSignatureLine(line);
    if (typeof sl === 'string') return { text, verified: false, reason: `signature line ${i + 1} is malformed: ${sl}` };
    parsed.push(sl);
  }

  let sawOurs = false;
  const message = Buffer.from(text, 'utf8');
  for (const sl of parsed) {
    if (sl.name !== key.name || !sl.keyId.equals(key.keyId)) continue; // someone else's signature
    sawOurs = true;
    if (sl.sig.length !== 64) return { text, verified: false, reason: `signature by ${key.name} has ${sl.sig.length} bytes, expected 64` };
    if (!verify(null, message, key.keyObject, sl.sig)) {
      return { text, verified: false, reason: `signature by ${key.name}+${key.keyId.toString('hex')} does not verify` };
    }
  }
  if (!sawOurs) {
    const others = parsed.map((s) => `${s.name}+${s.keyId.toString('hex')}`).join(', ');
    return {
      text,
      verified: false,
      reason: `note has no signature by ${key.name}+${key.keyId.toString('hex')} (signed by: ${others})`,
    };
  }
  return { text, verified: true };
}

function parseSignatureLine(line: string): SignatureLine | string {
  if (!line.startsWith(EM_DASH_PREFIX)) return 'it does not start with "— "';
  const rest = line.slice(EM_DASH_PREFIX.length);
  const sp = rest.indexOf(' ');
  if (sp < 0) return 'expected "— <key name> <base64 signature>"';
  const name = rest.slice(0, sp);
  const b64 = rest.slice(sp + 1);
  if (!isValidKeyName(name)) return `invalid key name ${JSON.stringify(name)}`;
  const raw = decodeBase64Strict(b64);
  if (raw === null) return 'signature is not valid base64';
  if (raw.length < 5) return 'signature is shorter than a key ID plus one byte';
  return { name, keyId: Buffer.from(raw.subarray(0, 4)), sig: Buffer.from(raw.subarray(4)) };
}

// ---------------------------------------------------------------------------------------------
// tlog-checkpoint

export interface Checkpoint {
  origin: string;
  size: number;
  /** 32-byte RFC 6962 root hash. */
  root: Buffer;
}

export function formatCheckpoint(cp: Checkpoint): string {
  if (cp.origin.length === 0 || cp.origin.includes('\n')) throw new NoteFormatError('checkpoint origin must be a non-empty single line');
  if (!Number.isSafeInteger(cp.size) || cp.size < 0) throw new NoteFormatError(`checkpoint size must be a non-negative integer, got ${cp.size}`);
  if (cp.root.length !== 32) throw new NoteFormatError(`checkpoint root must be 32 bytes, got ${cp.root.length}`);
  return `${cp.origin}\n${cp.size}\n${cp.root.toString('base64')}\n`;
}

/** Strict parse of a checkpoint note text (not the whole note). Extension lines are ignored. */
export function parseCheckpoint(text: string): Checkpoint & { extensions: string[] } {
  if (!text.endsWith('\n')) throw new NoteFormatError('checkpoint text must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw new NoteFormatError(`checkpoint needs at least 3 lines (origin, size, root), got ${lines.length}`);
  const [origin, sizeStr, rootStr, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin.length === 0) throw new NoteFormatError('checkpoint origin line is empty');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeStr)) {
    throw new NoteFormatError(`checkpoint size ${JSON.stringify(sizeStr)} is not a decimal number without leading zeros`);
  }
  const size = Number(sizeStr);
  if (!Number.isSafeInteger(size)) throw new NoteFormatError(`checkpoint size ${sizeStr} is too large`);
  const root = decodeBase64Strict(rootStr);
  if (root === null) throw new NoteFormatError(`checkpoint root ${JSON.stringify(rootStr)} is not valid base64`);
  if (root.length !== 32) throw new NoteFormatError(`checkpoint root must be 32 bytes, got ${root.length}`);
  if (extensions.some((l) => l.length === 0)) throw new NoteFormatError('checkpoint extension lines must be non-empty');
  return { origin, size, root, extensions };
}

/** Signs a checkpoint body: the note an exporter writes to checkpoints/<size>.note. */
export function signCheckpoint(cp: Checkpoint, key: SigningKey): string {
  return signNote(formatCheckpoint(cp), key);
}

/** Opens a checkpoint note with `key` and parses its body. Never throws for bad input. */
export function openCheckpoint(
  note: string | Buffer,
  key: VerifierKey,
): { ok: true; checkpoint: Checkpoint & { extensions: string[] } } | { ok: false; reason: string } {
  const opened = openNote(note, key);
  if (!opened.verified) return { ok: false, reason: opened.reason };
  try {
    return { ok: true, checkpoint: parseCheckpoint(opened.text) };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}
