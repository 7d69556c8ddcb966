/**
 * Fast path for the verifier: recognises an entries.jsonl line that is already in canonical form
 * and builds its canonical body (exactly `canonicalBody(JSON.parse(line))`, see hash.ts) straight
 * from slices of the line's UTF-8 bytes, without JSON.parse and without allocating per value.
 *
 * The contract is one-sided: the scanner accepts a line ONLY when JSON.parse + checkEntryShape +
 * canonicalBody would accept it too and produce byte-identical output. Anything unusual is
 * refused ("not on the fast path") and the caller falls back to that slow path, which then either
 * accepts the line or reports exactly what it always reported. Refusals are therefore always
 * safe; only an acceptance needs to be right, and fastline.test.ts checks that against the slow
 * path on many thousands of generated lines.
 *
 * Accepted shape:
 * - no insignificant whitespace anywhere, nothing after the closing brace;
 * - the top-level object has exactly the nine contract fields, each once, in any order;
 * - strings hold valid UTF-8 and no raw control characters. Outside object keys they may hold
 *   backslash escapes, but only the ones JCS itself writes (\" \\ \b \f \n \r \t and lowercase
 *   \u00xx for the other C0 controls), so the escaped text is already canonical; object keys may
 *   hold no escapes at all (their order is checked on the raw bytes);
 * - numbers are in ECMAScript Number::toString form (which is what JCS writes), `seq` a positive
 *   safe integer;
 * - every object inside `data` has its keys in strictly increasing UTF-16 order (so no duplicates),
 *   nesting at most MAX_DEPTH deep;
 * - ts, kind, actor, subject, policyVersion, leaf and chain have the formats checkEntryShape
 *   (contract.ts) demands (leaf and chain: 64 characters, which the caller compares with
 *   recomputed hashes).
 */

/** Nesting limit for `data` on the fast path (deeper data still verifies, on the slow path). */
const MAX_DEPTH = 64;

const Q = 0x22; // "
const BS = 0x5c; // \
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const MINUS = 0x2d;
const DOT = 0x2e;
const D0 = 0x30;
const D9 = 0x39;

// Field ids, and the bit each one sets in the `seen` mask.
const F_SEQ = 0;
const F_TS = 1;
const F_KIND = 2;
const F_ACTOR = 3;
const F_SUBJECT = 4;
const F_DATA = 5;
const F_POLICY = 6;
const F_LEAF = 7;
const F_CHAIN = 8;
const ALL_FIELDS = 0x1ff;

/** An ASCII text as little-endian 32-bit words, zero padded (what DataView reads and writes). */
function wordsOf(text: string): Int32Array {
  const words = new Int32Array((text.length + 3) >> 2);
  for (let i = 0; i < text.length; i++) words[i >> 2] = (words[i >> 2] as number) | (text.charCodeAt(i) << (8 * (i & 3)));
  return words;
}

/** A constant piece of the canonical body. */
interface Piece {
  words: Int32Array;
  length: number;
}
function piece(text: string): Piece {
  return { words: wordsOf(text), length: text.length };
}

/*
 * Per-byte work dominates the scan, and a table lookup is several times cheaper here than a
 * chain of range comparisons (measured on Node 20), so the hot loops classify bytes by table.
 */
/** Byte classes inside a string token: 0 plain ASCII, else one of the following. */
const S_QUOTE = 1;
const S_BACKSLASH = 2;
const S_CONTROL = 3;
const S_HIGH = 4;
const STRING_CLASS = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  STRING_CLASS[c] = c === Q ? S_QUOTE : c === BS ? S_BACKSLASH : c < 0x20 ? S_CONTROL : c >= 0x80 ? S_HIGH : 0;
}
/** 1 for lowercase hex digits. */
const HEX_LOWER = new Uint8Array(256);
for (const c of '0123456789abcdef') HEX_LOWER[c.charCodeAt(0)] = 1;

/**
 * `"<name>":` for each field in Regent's export order, as little-endian words with masks for the
 * last partial word, so that a key in the expected place is recognised in a few word compares.
 */
const EXPORT_ORDER = [F_SEQ, F_TS, F_KIND, F_ACTOR, F_SUBJECT, F_DATA, F_POLICY, F_LEAF, F_CHAIN];
/**
 * The field names by field id. This file states the entry layout itself (no import, nothing
 * looked up per line); fastline.test.ts checks it against contract.ts: these names in export
 * order are ENTRY_FIELDS, and BODY_ORDER is CANONICAL_BODY_FIELDS.
 */
const FIELD_NAMES = ['seq', 'ts', 'kind', 'actor', 'subject', 'data', 'policyVersion', 'leaf', 'chain'];
/** The order scan() writes the canonical body in (its K_* pieces below follow it). */
const BODY_ORDER = [F_ACTOR, F_DATA, F_KIND, F_POLICY, F_SEQ, F_SUBJECT, F_TS];
/** The layout above by name, for the test against the contract. */
export const FASTLINE_LAYOUT = {
  exportOrder: EXPORT_ORDER.map((id) => FIELD_NAMES[id] as string),
  bodyOrder: BODY_ORDER.map((id) => FIELD_NAMES[id] as string),
};
interface KeyPattern {
  id: number;
  length: number;
  words: Int32Array;
  masks: Int32Array;
}
const KEY_PATTERNS: KeyPattern[] = EXPORT_ORDER.map((id) => {
  const text = `"${FIELD_NAMES[id] as string}":`;
  // The mask keeps the pattern's own bytes of its last word (0xff where the text has a byte).
  return { id, length: text.length, words: wordsOf(text), masks: wordsOf('\xff'.repeat(text.length)) };
});

/** Whether b[p..] starts with the key pattern; reads up to 3 bytes past it (caller checks room). */
function matchKey(dv: DataView, p: number, k: KeyPattern): boolean {
  const { words, masks } = k;
  for (let i = 0; i < words.length; i++) {
    if ((dv.getInt32(p + 4 * i, true) & (masks[i] as number)) !== words[i]) return false;
  }
  return true;
}

/** `{"actor":`, `,"data":`, ...: what precedes each body field's value, in BODY_ORDER. */
const [K_ACTOR, K_DATA, K_KIND, K_POLICY, K_SEQ, K_SUBJECT, K_TS] = BODY_ORDER.map((id, i) =>
  piece(`${i === 0 ? '{' : ','}"${FIELD_NAMES[id] as string}":`),
) as [Piece, Piece, Piece, Piece, Piece, Piece, Piece];

/** The first four characters of an ASCII text as a little-endian int32 (what DataView reads). */
function le32(text: string): number {
  return text.charCodeAt(0) | (text.charCodeAt(1) << 8) | (text.charCodeAt(2) << 16) | (text.charCodeAt(3) << 24);
}
const W_TS = 0x7374; // "ts" as a little-endian 16-bit word
const W_SEQ = le32('seq"');
const W_KIND = le32('kind');
const W_DATA = le32('data');
const W_LEAF = le32('leaf');
const W_ACTO = le32('acto');
const W_CHAI = le32('chai');
const W_SUBJ = le32('subj');
const W_JECT = le32('ject');
const W_POLI = le32('poli');
const W_CYVE = le32('cyVe');
const W_RSIO = le32('rsio');
const W_NULL = le32('null');
const W_TRUE = le32('true');
const W_FALS = le32('fals');
const W_SHA2 = le32('sha2');
const W_56_COLON = le32('56:"'); // compared on its first 3 bytes only, see scanPolicyVersion

/**
 * Field id for the key in b[s..e) (the bytes between the quotes), or -1. `dv` views the same
 * bytes as `b`; the closing quote at b[e] is part of the buffer, which makes 32-bit reads safe.
 */
function fieldId(b: Uint8Array, dv: DataView, s: number, e: number): number {
  switch (e - s) {
    case 2:
      return dv.getUint16(s, true) === W_TS ? F_TS : -1;
    case 3:
      return dv.getInt32(s, true) === W_SEQ ? F_SEQ : -1; // includes the closing quote
    case 4: {
      const w = dv.getInt32(s, true);
      return w === W_KIND ? F_KIND : w === W_DATA ? F_DATA : w === W_LEAF ? F_LEAF : -1;
    }
    case 5: {
      const w = dv.getInt32(s, true);
      if (w === W_ACTO) return b[s + 4] === 0x72 ? F_ACTOR : -1; // r
      if (w === W_CHAI) return b[s + 4] === 0x6e ? F_CHAIN : -1; // n
      return -1;
    }
    case 7:
      return dv.getInt32(s, true) === W_SUBJ && dv.getInt32(s + 3, true) === W_JECT ? F_SUBJECT : -1;
    case 13:
      return dv.getInt32(s, true) === W_POLI && dv.getInt32(s + 4, true) === W_CYVE && dv.getInt32(s + 8, true) === W_RSIO && b[s + 12] === 0x6e
        ? F_POLICY
        : -1;
    default:
      return -1;
  }
}

/**
 * Scans the string token starting at the quote b[p]; returns the index just after its closing
 * quote, or -1. `escapes`: whether JCS-canonical escapes are allowed (not in object keys).
 * Validates UTF-8 strictly (what the decoder would replace with U+FFFD is refused).
 *
 * Plain ASCII runs are skipped four bytes at a time: a 32-bit word needs a closer look when one
 * of its bytes is below 0x20, is a quote or a backslash, or has its top bit set (the classic
 * "has byte less than / equal to" bit tricks; a borrow can only flag a byte above one that is
 * really special, so nothing is missed).
 */
function scanString(b: Uint8Array, dv: DataView, p: number, end: number, escapes: boolean): number {
  p++;
  for (;;) {
    while (p + 4 <= end) {
      const v = dv.getInt32(p, true);
      const q = v ^ 0x22222222;
      const x = v ^ 0x5c5c5c5c;
      if (((((v - 0x20202020) | 0) & ~v) | (((q - 0x01010101) | 0) & ~q) | (((x - 0x01010101) | 0) & ~x) | v) & 0x80808080) break;
      p += 4;
    }
    let k = 0;
    while (p < end && (k = STRING_CLASS[b[p] as number] as number) === 0) p++;
    if (p >= end) return -1;
    if (k === S_QUOTE) return p + 1;
    if (k === S_HIGH) p = scanUtf8(b, p, end, b[p] as number);
    else if (k === S_BACKSLASH && escapes) p = scanEscape(b, p, end);
    else return -1; // a raw control character is not JSON (the slow path reports it)
    if (p < 0) return -1;
  }
}

/** An escape at b[p] (the backslash) that JCS would write itself; returns the index after it. */
function scanEscape(b: Uint8Array, p: number, end: number): number {
  if (p + 1 >= end) return -1;
  const e = b[p + 1];
  // \" \\ \b \f \n \r \t
  if (e === Q || e === BS || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) return p + 2;
  // \u00xx, lowercase hex, only for controls without a short form (JSON.stringify's choice).
  if (e !== 0x75 || p + 5 >= end || b[p + 2] !== D0 || b[p + 3] !== D0) return -1;
  const x = b[p + 4] as number;
  const y = b[p + 5] as number;
  if (x !== D0 && x !== 0x31) return -1;
  let v: number;
  if (y >= D0 && y <= D9) v = y - D0;
  else if (y >= 0x61 && y <= 0x66) v = y - 0x57;
  else return -1;
  v += (x - D0) * 16;
  if (v === 0x08 || v === 0x09 || v === 0x0a || v === 0x0c || v === 0x0d) return -1;
  return p + 6;
}

/** One well-formed UTF-8 sequence (RFC 3629) starting with lead byte c at b[p]. */
function scanUtf8(b: Uint8Array, p: number, end: number, c: number): number {
  let n: number; // continuation bytes
  let lo = 0x80;
  let hi = 0xbf; // range of the first continuation byte
  if (c >= 0xc2 && c <= 0xdf) n = 1;
  else if (c >= 0xe0 && c <= 0xef) {
    n = 2;
    if (c === 0xe0) lo = 0xa0; // no overlongs
    else if (c === 0xed) hi = 0x9f; // no surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 3;
    if (c === 0xf0) lo = 0x90; // no overlongs
    else if (c === 0xf4) hi = 0x8f; // nothing above U+10FFFF
  } else return -1;
  if (p + n >= end) return -1;
  const c1 = b[p + 1] as number;
  if (c1 < lo || c1 > hi) return -1;
  for (let i = 2; i <= n; i++) {
    const ci = b[p + i] as number;
    if (ci < 0x80 || ci > 0xbf) return -1;
  }
  return p + n + 1;
}

/**
 * Whether key B (bytes bs..be) sorts strictly after key A (as..ae) in UTF-16 code unit order.
 * On valid UTF-8, byte order is code point order, which is UTF-16 order except between
 * U+E000..U+FFFF (lead bytes 0xEE, 0xEF) and supplementary characters (0xF0..0xF4); a first
 * difference involving those bytes answers false ("not sure": slow path).
 */
function keyAfter(b: Uint8Array, as: number, ae: number, bs: number, be: number): boolean {
  const la = ae - as;
  const lb = be - bs;
  const n = la < lb ? la : lb;
  for (let i = 0; i < n; i++) {
    const x = b[as + i] as number;
    const y = b[bs + i] as number;
    if (x !== y) return x < 0xee && y < 0xee && y > x;
  }
  return lb > la;
}

/** A number token at b[p] in canonical (Number::toString) form; returns the index after it. */
function scanNumber(b: Uint8Array, p: number, end: number): number {
  const start = p;
  let neg = false;
  if (b[p] === MINUS) {
    neg = true;
    p++;
  }
  const intStart = p;
  let c = p < end ? (b[p] as number) : -1;
  if (c === D0) p++;
  else if (c > D0 && c <= D9) {
    p++;
    while (p < end && (c = b[p] as number) >= D0 && c <= D9) p++;
  } else return -1;
  const intLen = p - intStart;
  const intZero = b[intStart] === D0;
  c = p < end ? (b[p] as number) : -1;
  if (c !== DOT) {
    if (c === 0x65 || c === 0x45) return genericNumber(b, start, end);
    // Plain integers: "0" (never "-0", which JCS writes as 0) and up to 15 digits, which are
    // exact in a double and print back unchanged. Longer ones get the generic check.
    if (intZero) return neg ? -1 : p;
    return intLen <= 15 ? p : genericNumber(b, start, end);
  }
  p++;
  const fracStart = p;
  while (p < end && (c = b[p] as number) >= D0 && c <= D9) p++;
  const fracLen = p - fracStart;
  if (fracLen === 0) return -1; // "1." is not JSON
  if (p < end && (b[p] === 0x65 || b[p] === 0x45)) return genericNumber(b, start, end);
  // Number::toString never ends a fraction in 0.
  if (b[p - 1] === D0) return -1;
  // With at most 15 significant digits a decimal is the only such decimal for its double
  // (DBL_DIG = 15), so the shortest round-trip form is the text itself, printed in positional
  // notation when the value is at least 1e-6 (at most five zeros after "0.").
  let sig: number;
  if (intZero) {
    let z = 0;
    while (b[fracStart + z] === D0) z++;
    if (z > 5) return -1; // Number::toString would write an exponent
    sig = fracLen - z;
  } else {
    sig = intLen + fracLen;
  }
  return sig <= 15 ? p : genericNumber(b, start, end);
}

/** Rare shapes (exponents, many digits): decide by the definition, String(Number(t)) === t. */
function genericNumber(b: Uint8Array, start: number, end: number): number {
  let p = start;
  let t = '';
  for (; p < end; p++) {
    const c = b[p] as number;
    if ((c >= D0 && c <= D9) || c === MINUS || c === 0x2b || c === DOT || c === 0x65 || c === 0x45) t += String.fromCharCode(c);
    else break;
  }
  const n = Number(t);
  return Number.isFinite(n) && String(n) === t ? p : -1;
}

/** `null`, `true` or `false` at b[p] (first byte already seen); returns the index after it. */
function scanLiteral(b: Uint8Array, dv: DataView, p: number, end: number): number {
  if (p + 4 > end) return -1;
  const w = dv.getInt32(p, true);
  if (w === W_NULL || w === W_TRUE) return p + 4;
  return w === W_FALS && p + 5 <= end && b[p + 4] === 0x65 ? p + 5 : -1;
}

function scanValue(b: Uint8Array, dv: DataView, p: number, end: number, depth: number): number {
  if (p >= end) return -1;
  const c = b[p] as number;
  if (c === Q) return scanString(b, dv, p, end, true);
  if (c === LBRACE) return scanObject(b, dv, p, end, depth + 1);
  if (c === LBRACKET) return scanArray(b, dv, p, end, depth + 1);
  if (c === MINUS || (c >= D0 && c <= D9)) return scanNumber(b, p, end);
  return scanLiteral(b, dv, p, end);
}

function scanObject(b: Uint8Array, dv: DataView, p: number, end: number, depth: number): number {
  if (depth > MAX_DEPTH) return -1;
  p++;
  if (p < end && b[p] === RBRACE) return p + 1;
  let prevStart = -1;
  let prevEnd = -1;
  for (;;) {
    if (p >= end || b[p] !== Q) return -1;
    const q = scanString(b, dv, p, end, false);
    if (q < 0) return -1;
    // Keys must come in canonical order already, which also rules out duplicates.
    if (prevStart >= 0 && !keyAfter(b, prevStart, prevEnd, p + 1, q - 1)) return -1;
    prevStart = p + 1;
    prevEnd = q - 1;
    if (q >= end || b[q] !== COLON) return -1;
    p = scanValue(b, dv, q + 1, end, depth);
    if (p < 0 || p >= end) return -1;
    const d = b[p];
    if (d === COMMA) p++;
    else if (d === RBRACE) return p + 1;
    else return -1;
  }
}

function scanArray(b: Uint8Array, dv: DataView, p: number, end: number, depth: number): number {
  if (depth > MAX_DEPTH) return -1;
  p++;
  if (p < end && b[p] === RBRACKET) return p + 1;
  for (;;) {
    p = scanValue(b, dv, p, end, depth);
    if (p < 0 || p >= end) return -1;
    const d = b[p];
    if (d === COMMA) p++;
    else if (d === RBRACKET) return p + 1;
    else return -1;
  }
}

/** `"sha256:<64 lowercase hex>"` at b[p]; returns the index after it. */
function scanPolicyVersion(b: Uint8Array, dv: DataView, p: number, end: number): number {
  if (p + 73 > end || b[p] !== Q || b[p + 72] !== Q) return -1;
  // "sha256:" is read as "sha2" and, overlapping, "256:" minus its first byte.
  if (dv.getInt32(p + 1, true) !== W_SHA2 || (dv.getInt32(p + 5, true) & 0xffffff) !== (W_56_COLON & 0xffffff)) return -1;
  return isHex64At(b, p + 8) ? p + 73 : -1;
}

/** b[s..s+64) are lowercase hex digits. */
export function isHex64At(b: Uint8Array, s: number): boolean {
  for (let i = 0; i < 64; i++) if (HEX_LOWER[b[s + i] as number] === 0) return false;
  return true;
}

/** Whether all four bytes of a little-endian word are ASCII digits (0x30..0x39). */
function allDigits(w: number): boolean {
  // High nibbles must be 3, and adding 6 to each low nibble must not carry into them (<= 9).
  return (w & 0xf0f0f0f0) === 0x30303030 && (((w + 0x06060606) | 0) & 0xf0f0f0f0) === 0x30303030;
}

/** The two-digit number in bytes k, k+1 of a little-endian word whose bytes are digits. */
function twoDigits(w: number, k: number): number {
  return (((w >>> (8 * k)) & 0x0f) * 10) + ((w >>> (8 * k + 8)) & 0x0f);
}

const TS_SEP_1 = le32('-00-'); // bytes 4..7:   -MM-
const TS_SEP_2 = le32('00T0'); // bytes 8..11:  DDTh
const TS_SEP_3 = le32('0:00'); // bytes 12..15: h:mm
const TS_SEP_4 = le32(':00.'); // bytes 16..19: :ss.
const TS_SEP_5 = le32('000Z'); // bytes 20..23: sssZ

/**
 * The ts string token at b[s] (quotes included, 26 bytes, caller checked the room): exactly what
 * contract.ts's TS_PATTERN and isRealDate accept, i.e. "YYYY-MM-DDTHH:MM:SS.sssZ" naming a real date.
 * Read as six words; separators are swapped for '0' so that one digit test covers each word.
 */
function isTimestamp(b: Uint8Array, dv: DataView, s: number): boolean {
  if (b[s] !== Q || b[s + 25] !== Q) return false;
  const t = s + 1;
  const w0 = dv.getInt32(t, true);
  const w1 = dv.getInt32(t + 4, true);
  const w2 = dv.getInt32(t + 8, true);
  const w3 = dv.getInt32(t + 12, true);
  const w4 = dv.getInt32(t + 16, true);
  const w5 = dv.getInt32(t + 20, true);
  // Separator bytes in place (the digit positions are masked off and checked below).
  if ((w1 & 0xff0000ff) !== (TS_SEP_1 & 0xff0000ff) || (w2 & 0x00ff0000) !== (TS_SEP_2 & 0x00ff0000)) return false;
  if ((w3 & 0x0000ff00) !== (TS_SEP_3 & 0x0000ff00) || (w4 & 0xff0000ff) !== (TS_SEP_4 & 0xff0000ff)) return false;
  if ((w5 & 0xff000000) !== (TS_SEP_5 & 0xff000000)) return false;
  if (
    !allDigits(w0) ||
    !allDigits((w1 & 0x00ffff00) | 0x30000030) ||
    !allDigits((w2 & 0xff00ffff) | 0x00300000) ||
    !allDigits((w3 & 0xffff00ff) | 0x00003000) ||
    !allDigits((w4 & 0x00ffff00) | 0x30000030) ||
    !allDigits((w5 & 0x00ffffff) | 0x30000000)
  ) {
    return false;
  }
  const month = twoDigits(w1, 1);
  const day = twoDigits(w2, 0);
  const hour = ((w2 >>> 24) & 0x0f) * 10 + (w3 & 0x0f);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || twoDigits(w3, 2) > 59 || twoDigits(w4, 1) > 59) return false;
  if (day <= 28) return true;
  const year = twoDigits(w0, 0) * 100 + twoDigits(w0, 2);
  // A day past the end of its month is refused here (the slow path decides it).
  return day <= daysInMonth(year, month);
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** `"seq"`: a positive safe integer without leading zeros; returns the index after it. */
function scanSeq(b: Uint8Array, p: number, end: number): number {
  const s = p;
  let c = p < end ? (b[p] as number) : -1;
  if (c <= D0 || c > D9) return -1;
  let v = 0;
  while (p < end && (c = b[p] as number) >= D0 && c <= D9) {
    v = v * 10 + (c - D0);
    p++;
  }
  if (p - s > 16 || v > Number.MAX_SAFE_INTEGER) return -1;
  return p;
}

function readSeq(b: Uint8Array, s: number, e: number): number {
  let v = 0;
  for (let i = s; i < e; i++) v = v * 10 + ((b[i] as number) - D0);
  return v;
}

/**
 * Reusable scanner. After `scan` returns true:
 * - `input[0 .. inputLength)` holds 0x00 ‖ UTF-8(canonical body), i.e. exactly the bytes the
 *   leaf hash is taken over (`inputView()` gives a view of that length);
 * - `seq` is the entry's seq, `leafAt`/`chainAt` the offsets in the scanned buffer of the 64
 *   characters of its leaf and chain, which the caller must compare with the recomputed
 *   lowercase hex (or check with isHex64At): the scan does not look inside them.
 * Not reentrant; the verifier keeps one per run.
 */
export class FastLineScanner {
  seq = 0;
  leafAt = 0;
  chainAt = 0;
  inputLength = 0;
  input: Uint8Array = new Uint8Array(1 << 16);
  /** Views of `input` by length: the leaf hash needs an exact-length view per line. */
  private views: (Uint8Array | undefined)[] = [];
  private outView: DataView = new DataView(this.input.buffer);
  /** Token spans of the nine fields: start at 2*id, end at 2*id + 1 (quotes included). */
  private readonly spans = new Int32Array(18);
  private lastBytes: Uint8Array | null = null;
  private lastView: DataView = new DataView(new ArrayBuffer(0));

  /** Scans b[start..end) (one line, no newline). False means "use the slow path". */
  scan(b: Uint8Array, start: number, end: number): boolean {
    const spans = this.spans;
    // A DataView for 32-bit reads, kept while the caller keeps passing the same buffer.
    let dv = this.lastView;
    if (b !== this.lastBytes) {
      dv = this.lastView = new DataView(b.buffer, b.byteOffset, b.byteLength);
      this.lastBytes = b;
    }
    let p = start;
    if (p >= end || b[p] !== LBRACE) return false;
    p++;
    let seen = 0;
    for (let member = 0; ; member++) {
      let id: number;
      let vs: number;
      const expected = KEY_PATTERNS[member];
      // Regent's own order first: `"seq":`, `"ts":`, ... recognised by word compares. (A value
      // and a closing brace follow every key, so reading 3 bytes past it stays in the line.)
      if (expected !== undefined && p + expected.length + 3 <= end && matchKey(dv, p, expected)) {
        id = expected.id;
        vs = p + expected.length;
      } else {
        if (p >= end || b[p] !== Q) return false;
        const q = scanString(b, dv, p, end, false);
        if (q < 0) return false;
        id = fieldId(b, dv, p + 1, q - 1);
        if (q >= end || b[q] !== COLON) return false;
        vs = q + 1;
      }
      if (id < 0 || (seen & (1 << id)) !== 0) return false;
      seen |= 1 << id;
      let ve: number;
      switch (id) {
        case F_SEQ:
          ve = scanSeq(b, vs, end);
          break;
        case F_DATA:
          ve = scanValue(b, dv, vs, end, 0);
          break;
        case F_SUBJECT:
          ve = vs >= end ? -1 : b[vs] === Q ? scanString(b, dv, vs, end, true) : b[vs] === 0x6e ? scanLiteral(b, dv, vs, end) : -1;
          break;
        case F_POLICY:
          ve = vs < end && b[vs] === 0x6e ? scanLiteral(b, dv, vs, end) : scanPolicyVersion(b, dv, vs, end);
          break;
        case F_LEAF:
        case F_CHAIN:
          // 64 characters between quotes. Their content is NOT checked here: the verifier
          // compares them with recomputed lowercase hex, which nothing else can equal (and a
          // quote or backslash inside would not be hex). Callers without that comparison must
          // check them with isHex64At (fastCanonicalLine does).
          ve = vs + 66 <= end && b[vs] === Q && b[vs + 65] === Q ? vs + 66 : -1;
          break;
        case F_TS:
          // Fixed width, no escapes (a ts that needs one is not a valid ts anyway).
          ve = vs + 26 <= end && isTimestamp(b, dv, vs) ? vs + 26 : -1;
          break;
        default:
          // kind, actor: non-empty strings (any escape stands for at least one character).
          ve = vs < end && b[vs] === Q ? scanString(b, dv, vs, end, true) : -1;
          if (ve === vs + 2) ve = -1;
      }
      if (ve < 0 || ve >= end) return false;
      spans[2 * id] = vs;
      spans[2 * id + 1] = ve;
      const d = b[ve];
      p = ve + 1;
      if (d === RBRACE) break;
      if (d !== COMMA) return false;
    }
    if (seen !== ALL_FIELDS || p !== end) return false;

    // 0x00 ‖ {"actor":A,"data":D,"kind":K,"policyVersion":P,"seq":S,"subject":U,"ts":T}
    // Copies go by whole 32-bit words: they may write up to 3 bytes past their end (the next
    // copy, or the closing brace, overwrites them; hence the spare room in `input`) and read up
    // to 3 bytes past a span's end, which stays inside the line's closing brace and the two
    // bytes after it; only a line at the very end of the buffer needs exact copies.
    let out = this.input;
    let ov = this.outView;
    // The body is shorter than the line (it lacks leaf and chain).
    if (out.length < end - start + 8) {
      out = this.input = new Uint8Array(2 * (end - start + 8));
      ov = this.outView = new DataView(out.buffer);
      this.views = [];
    }
    const copy = end + 2 < b.length ? copyWords : copyExact;
    out[0] = 0;
    let o = 1;
    o = put(ov, o, K_ACTOR);
    o = copy(ov, o, dv, spans[2 * F_ACTOR] as number, spans[2 * F_ACTOR + 1] as number);
    o = put(ov, o, K_DATA);
    o = copy(ov, o, dv, spans[2 * F_DATA] as number, spans[2 * F_DATA + 1] as number);
    o = put(ov, o, K_KIND);
    o = copy(ov, o, dv, spans[2 * F_KIND] as number, spans[2 * F_KIND + 1] as number);
    o = put(ov, o, K_POLICY);
    o = copy(ov, o, dv, spans[2 * F_POLICY] as number, spans[2 * F_POLICY + 1] as number);
    o = put(ov, o, K_SEQ);
    const seqStart = spans[2 * F_SEQ] as number;
    const seqEnd = spans[2 * F_SEQ + 1] as number;
    o = copy(ov, o, dv, seqStart, seqEnd);
    o = put(ov, o, K_SUBJECT);
    o = copy(ov, o, dv, spans[2 * F_SUBJECT] as number, spans[2 * F_SUBJECT + 1] as number);
    o = put(ov, o, K_TS);
    o = copy(ov, o, dv, spans[2 * F_TS] as number, spans[2 * F_TS + 1] as number);
    out[o++] = RBRACE;
    this.inputLength = o;
    this.seq = readSeq(b, seqStart, seqEnd);
    this.leafAt = (spans[2 * F_LEAF] as number) + 1;
    this.chainAt = (spans[2 * F_CHAIN] as number) + 1;
    return true;
  }

  /** input[0 .. inputLength) as a view (cached per length, so no allocation per line). */
  inputView(): Uint8Array {
    const n = this.inputLength;
    if (n >= VIEW_CACHE_LIMIT) return new Uint8Array(this.input.buffer, this.input.byteOffset, n);
    let v = this.views[n];
    if (v === undefined) {
      v = new Uint8Array(this.input.buffer, this.input.byteOffset, n);
      this.views[n] = v;
    }
    return v;
  }
}

/** Lines longer than this get a fresh view each (bounds the cache on hostile input). */
const VIEW_CACHE_LIMIT = 1 << 14;

/** Writes a constant piece at out[o..] in whole words (see the caller for why that is safe). */
function put(out: DataView, o: number, k: Piece): number {
  const words = k.words;
  for (let i = 0; i < words.length; i++) out.setInt32(o + 4 * i, words[i] as number, true);
  return o + k.length;
}

/** Copies src[s..e) to out[o..] in whole words (see the caller for why that is safe). */
function copyWords(out: DataView, o: number, src: DataView, s: number, e: number): number {
  const n = e - s;
  for (let i = 0; i < n; i += 4) out.setInt32(o + i, src.getInt32(s + i, true), true);
  return o + n;
}

/** Copies src[s..e) to out[o..] without reading past e. */
function copyExact(out: DataView, o: number, src: DataView, s: number, e: number): number {
  const n = e - s;
  let i = 0;
  for (; i + 4 <= n; i += 4) out.setInt32(o + i, src.getInt32(s + i, true), true);
  for (; i < n; i++) out.setUint8(o + i, src.getUint8(s + i));
  return o + n;
}

/** Result of `fastCanonicalLine`. */
export interface FastLine {
  /** Exactly canonicalBody(JSON.parse(line)). */
  body: string;
  seq: number;
  leaf: string;
  chain: string;
}

const decoder = new TextDecoder('utf-8', { fatal: true });
let shared: FastLineScanner | undefined;

/**
 * String form of the fast path, for tests and one-off callers: the canonical body and hashes of
 * `line` when it is on the fast path, else null (meaning: JSON.parse + checkEntryShape +
 * canonicalBody decide). The verifier uses FastLineScanner on the file's bytes instead.
 */
export function fastCanonicalLine(line: string): FastLine | null {
  // A lone surrogate would not survive the trip through UTF-8; JCS escapes it, so: slow path.
  if (!line.isWellFormed()) return null;
  const bytes = Buffer.from(line, 'utf8');
  const s = (shared ??= new FastLineScanner());
  if (!s.scan(bytes, 0, bytes.length) || !isHex64At(bytes, s.leafAt) || !isHex64At(bytes, s.chainAt)) return null;
  return {
    body: decoder.decode(s.input.subarray(1, s.inputLength)),
    seq: s.seq,
    leaf: bytes.toString('latin1', s.leafAt, s.leafAt + 64),
    chain: bytes.toString('latin1', s.chainAt, s.chainAt + 64),
  };
}
