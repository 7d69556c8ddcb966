import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  computeKeyId,
  formatCheckpoint,
  generateSigningKey,
  openCheckpoint,
  openNote,
  parseCheckpoint,
  parseSigningKey,
  parseVerifierKey,
  signCheckpoint,
  signingKeyToString,
  signNote,
  vkeyOf,
} from './note';

const VECTOR = path.resolve(__dirname, '../../test/fixtures/journal-vector/export');
const vectorKeyText = readFileSync(path.join(VECTOR, 'journal.vkey'), 'utf8');
const vectorNote = (n: number): string => readFileSync(path.join(VECTOR, 'checkpoints', `${n}.note`), 'utf8');

describe('verifier keys', () => {
  it('parses the vector key and recomputes its key ID from name and public key', () => {
    const key = parseVerifierKey(vectorKeyText);
    expect(key.name).toBe('regent.example/journal');
    expect(key.keyId.toString('hex')).toBe('2720bbae');
    const expectedId = createHash('sha256')
      .update('regent.example/journal\n\x01', 'latin1')
      .update(key.publicKey)
      .digest()
      .subarray(0, 4);
    expect(key.keyId.equals(expectedId)).toBe(true);
    expect(vkeyOf(key)).toBe(vectorKeyText.trim());
  });

  it('keeps a "+" inside the base64 key material (only the first two "+" separate parts)', () => {
    for (let i = 0; i < 50; i++) {
      const k = generateSigningKey('example.com/log');
      const v = vkeyOf(k);
      expect(parseVerifierKey(v).publicKey.equals(k.publicKey)).toBe(true);
    }
  });

  it('refuses a key with the wrong number of parts', () => {
    expect(() => parseVerifierKey('regent.example/journal+2720bbae')).toThrow(/3 "\+"-separated parts/);
  });

  it('refuses key material that is not base64', () => {
    const [name, id] = vectorKeyText.trim().split('+') as [string, string];
    expect(() => parseVerifierKey(`${name}+${id}+not*base64!`)).toThrow(/not valid base64/);
  });

  it('refuses a key for another algorithm than Ed25519', () => {
    const k = parseVerifierKey(vectorKeyText);
    const raw = Buffer.concat([Buffer.from([0x02]), k.publicKey]).toString('base64');
    expect(() => parseVerifierKey(`${k.name}+${k.keyId.toString('hex')}+${raw}`)).toThrow(/algorithm byte is 0x02/);
  });

  it('refuses a key whose key ID does not match its name and public key', () => {
    const k = parseVerifierKey(vectorKeyText);
    const raw = Buffer.concat([Buffer.from([0x01]), k.publicKey]).toString('base64');
    expect(() => parseVerifierKey(`${k.name}+deadbeef+${raw}`)).toThrow(/key id deadbeef does not match/);
    expect(() => parseVerifierKey(`other.example/log+${k.keyId.toString('hex')}+${raw}`)).toThrow(/does not match/);
  });

  it('refuses a key of the wrong length and an invalid name', () => {
    const short = Buffer.concat([Buffer.from([0x01]), randomBytes(31)]);
    expect(() => parseVerifierKey(`a+${computeKeyId('a', short.subarray(1)).toString('hex')}+${short.toString('base64')}`)).toThrow(/1 \+ 32 bytes/);
    expect(() => parseVerifierKey(`bad name+00000000+AQ==`)).toThrow(/invalid name/);
  });
});

describe('signing keys', () => {
  it('round-trips through the Go note private key format and keeps signing the same way', () => {
    const key = generateSigningKey('regent.test/journal');
    const text = signingKeyToString(key);
    expect(text).toMatch(/^PRIVATE\+KEY\+regent\.test\/journal\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/);
    const back = parseSigningKey(text + '\n');
    expect(back.publicKey.equals(key.publicKey)).toBe(true);
    expect(back.keyId.equals(key.keyId)).toBe(true);
    // Ed25519 is deterministic: the same key signs the same text identically.
    expect(signNote('hello\n', back)).toBe(signNote('hello\n', key));
  });

  it('refuses a private key whose ID does not match, or that is not one', () => {
    const key = generateSigningKey('regent.test/journal');
    const parts = signingKeyToString(key).split('+');
    parts[3] = '00000000';
    expect(() => parseSigningKey(parts.join('+'))).toThrow(/does not match/);
    expect(() => parseSigningKey(vectorKeyText)).toThrow(/PRIVATE\+KEY/);
  });

  it('refuses to create a key with a name a note could not carry', () => {
    expect(() => generateSigningKey('has space')).toThrow(/invalid key name/);
    expect(() => generateSigningKey('a+b')).toThrow(/invalid key name/);
    expect(() => generateSigningKey('')).toThrow(/invalid key name/);
  });
});

describe('signed notes', () => {
  it.each([5, 9])('verifies the vector checkpoint %d.note with the vector key', (n) => {
    const opened = openNote(vectorNote(n), parseVerifierKey(vectorKeyText));
    expect(opened).toEqual({ text: expect.stringMatching(new RegExp(`^regent\\.example/journal\\n${n}\\n`)), verified: true });
  });

  it('signs and verifies a round trip, including text with blank lines inside', () => {
    const key = generateSigningKey('example.com/notes');
    const text = 'first line\n\nthird line after a blank one\n';
    const note = signNote(text, key);
    expect(note.startsWith(text + '\n\u2014 example.com/notes ')).toBe(true);
    expect(openNote(note, parseVerifierKey(vkeyOf(key)))).toEqual({ text, verified: true });
    expect(openNote(Buffer.from(note, 'utf8'), parseVerifierKey(vkeyOf(key)))).toEqual({ text, verified: true });
  });

  it('refuses a note whose text was changed after signing', () => {
    const key = parseVerifierKey(vectorKeyText);
    const tampered = vectorNote(5).replace('\n5\n', '\n6\n');
    const opened = openNote(tampered, key);
    expect(opened.verified).toBe(false);
    expect(opened).toMatchObject({ reason: expect.stringMatching(/does not verify/) });
  });

  it('refuses a note whose signature bytes were changed', () => {
    const key = parseVerifierKey(vectorKeyText);
    const note = vectorNote(5);
    const sigStart = note.lastIndexOf(' ') + 1;
    const sig = Buffer.from(note.slice(sigStart, -1), 'base64');
    sig[20] = (sig[20] as number) ^ 1;
    const opened = openNote(note.slice(0, sigStart) + sig.toString('base64') + '\n', key);
    expect(opened).toMatchObject({ verified: false, reason: expect.stringMatching(/does not verify/) });
  });

  it('refuses a note signed by another key with the same name', () => {
    const real = generateSigningKey('regent.example/journal');
    const impostor = generateSigningKey('regent.example/journal');
    const note = signNote('regent.example/journal\n1\n' + Buffer.alloc(32).toString('base64') + '\n', impostor);
    const opened = openNote(note, parseVerifierKey(vkeyOf(real)));
    expect(opened).toMatchObject({ verified: false, reason: expect.stringMatching(/no signature by regent\.example\/journal\+/) });
  });

  it('ignores signatures from unknown keys as long as the known key signed', () => {
    const ours = generateSigningKey('log.example/a');
    const witness = generateSigningKey('witness.example/w');
    const text = 'log.example/a\n3\n' + Buffer.alloc(32, 7).toString('base64') + '\n';
    const signedByBoth = signNote(text, witness) + signNote(text, ours).slice(text.length + 1);
    expect(openNote(signedByBoth, parseVerifierKey(vkeyOf(ours)))).toEqual({ text, verified: true });
  });

  it('refuses a note without the blank line before the signatures', () => {
    const note = vectorNote(5).replace('\n\n', '\n');
    expect(openNote(note, parseVerifierKey(vectorKeyText))).toMatchObject({ verified: false, reason: expect.stringMatching(/no blank line/) });
  });

  it('refuses a note with a blank line but no signature lines', () => {
    expect(openNote('a\nb\n\n', parseVerifierKey(vectorKeyText))).toMatchObject({ verified: false, reason: 'note has no signature lines' });
  });

  it('refuses a note whose last signature line lacks its newline', () => {
    expect(openNote(vectorNote(5).slice(0, -1), parseVerifierKey(vectorKeyText))).toMatchObject({
      verified: false,
      reason: expect.stringMatching(/does not end with a newline/),
    });
  });

  it('refuses malformed signature lines', () => {
    const key = parseVerifierKey(vectorKeyText);
    const text = vectorNote(5).slice(0, vectorNote(5).lastIndexOf('\n\n') + 2);
    const sig = vectorNote(5).slice(vectorNote(5).lastIndexOf(' ') + 1);
    for (const [line, why] of [
      [`- regent.example/journal ${sig}`, /does not start with/],
      [`\u2014 regent.example/journal`, /expected "— <key name> <base64 signature>"/],
      [`\u2014 regent.example/journal not*base64\n`, /not valid base64/],
      [`\u2014 regent.example/journal AAAA\n`, /shorter than a key ID/],
      [`\u2014  ${sig}`, /invalid key name/],
    ] as const) {
      const note = text + (line.endsWith('\n') ? line : line.endsWith(sig) ? line : line + '\n');
      expect(openNote(note, key)).toMatchObject({ verified: false, reason: expect.stringMatching(why) });
    }
  });

  it('refuses notes with carriage returns, control characters or invalid UTF-8', () => {
    const key = parseVerifierKey(vectorKeyText);
    expect(openNote(vectorNote(5).replace(/\n/g, '\r\n'), key)).toMatchObject({ verified: false, reason: expect.stringMatching(/carriage return/) });
    expect(openNote('a\u0007\n\n' + vectorNote(5).split('\n\n')[1], key)).toMatchObject({ verified: false, reason: expect.stringMatching(/control characters/) });
    const bad = Buffer.concat([Buffer.from([0xff]), Buffer.from(vectorNote(5))]);
    expect(openNote(bad, key)).toMatchObject({ verified: false, reason: 'note is not valid UTF-8' });
  });

  it('refuses to sign text that does not end in a newline or holds control characters', () => {
    const key = generateSigningKey('a.example/b');
    expect(() => signNote('no newline', key)).toThrow(/must end with a newline/);
    expect(() => signNote('tab\there\n', key)).toThrow(/control characters/);
  });
});

describe('checkpoints', () => {
  const root = createHash('sha256').update('x').digest();

  it('formats the three C2SP lines and parses them back', () => {
    const text = formatCheckpoint({ origin: 'example.com/log', size: 42, root });
    expect(text).toBe(`example.com/log\n42\n${root.toString('base64')}\n`);
    const cp = parseCheckpoint(text);
    expect(cp).toEqual({ origin: 'example.com/log', size: 42, root, extensions: [] });
  });

  it('accepts and ignores extension lines after the root', () => {
    const cp = parseCheckpoint(`example.com/log\n0\n${root.toString('base64')}\nextra one\nextra two\n`);
    expect(cp.size).toBe(0);
    expect(cp.extensions).toEqual(['extra one', 'extra two']);
  });

  it.each([
    ['an empty origin', `\n1\n${Buffer.alloc(32).toString('base64')}\n`, /origin line is empty/],
    ['a size with a leading zero', `o\n01\n${Buffer.alloc(32).toString('base64')}\n`, /without leading zeros/],
    ['a negative size', `o\n-1\n${Buffer.alloc(32).toString('base64')}\n`, /without leading zeros/],
    ['a size with a plus sign', `o\n+1\n${Buffer.alloc(32).toString('base64')}\n`, /without leading zeros/],
    ['a 31-byte root', `o\n1\n${Buffer.alloc(31).toString('base64')}\n`, /32 bytes, got 31/],
    ['a root that is not base64', `o\n1\n${'*'.repeat(44)}\n`, /not valid base64/],
    ['a root in base64url', `o\n1\n${Buffer.alloc(32, 0xfb).toString('base64url')}=\n`, /not valid base64/],
    ['a root with non-zero padding bits', `o\n1\n${Buffer.alloc(32).toString('base64').replace('A=', 'B=')}\n`, /not valid base64/],
    ['only two lines', `o\n1\n`, /at least 3 lines/],
    ['no final newline', `o\n1\n${Buffer.alloc(32).toString('base64')}`, /must end with a newline/],
    ['an empty extension line', `o\n1\n${Buffer.alloc(32).toString('base64')}\n\n`, /extension lines must be non-empty/],
  ])('refuses a checkpoint with %s', (_what, text, why) => {
    expect(() => parseCheckpoint(text)).toThrow(why);
  });

  it('signs a checkpoint and opens it with the matching verifier key only', () => {
    const key = generateSigningKey('example.com/log');
    const note = signCheckpoint({ origin: 'example.com/log', size: 7, root }, key);
    const opened = openCheckpoint(note, parseVerifierKey(vkeyOf(key)));
    expect(opened).toEqual({ ok: true, checkpoint: { origin: 'example.com/log', size: 7, root, extensions: [] } });
    const other = generateSigningKey('example.com/log');
    expect(openCheckpoint(note, parseVerifierKey(vkeyOf(other)))).toMatchObject({ ok: false });
  });

  it('opens the vector checkpoints to sizes 5 and 9', () => {
    const key = parseVerifierKey(vectorKeyText);
    expect(openCheckpoint(vectorNote(5), key)).toMatchObject({ ok: true, checkpoint: { origin: 'regent.example/journal', size: 5 } });
    expect(openCheckpoint(vectorNote(9), key)).toMatchObject({ ok: true, checkpoint: { origin: 'regent.example/journal', size: 9 } });
  });
});
