import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fastCanonicalLine, FASTLINE_LAYOUT, FastLineScanner } from './fastline';
import { canonicalBody, exportLine, JournalEntry, sealEntries, ZERO_CHAIN } from './hash';
import { canonicalize } from './jcs';
import { defaultBody, makeExport } from './testing/make-export';
import { CANONICAL_BODY_FIELDS, checkEntryShape, ENTRY_FIELDS } from './contract';
import { verifyExport } from './verify';

/** mulberry32: deterministic, so a failure names a reproducible case. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HEX = 'ab'.repeat(32);
const FIELDS = ENTRY_FIELDS;

/**
 * What the slow path makes of a line: the parsed entry if it is accepted (JSON, the entry's shape,
 * and a data value JCS can write, which rules out numbers like 1e400), else null.
 */
function slowPath(line: string): JournalEntry | null {
  let e: unknown;
  try {
    e = JSON.parse(line);
  } catch {
    return null;
  }
  if (checkEntryShape(e) !== null) return null;
  try {
    canonicalBody(e as JournalEntry);
  } catch {
    return null;
  }
  return e as JournalEntry;
}

/**
 * The canonical text of an accepted entry with its top-level fields in the order the line has
 * them: every value in JCS form, no whitespace. A line is "already canonical" iff it equals this.
 */
function canonicalText(e: JournalEntry): string {
  const rec = e as unknown as Record<string, unknown>;
  return '{' + Object.keys(rec).map((k) => JSON.stringify(k) + ':' + canonicalize(rec[k])).join(',') + '}';
}

/** The property every line must satisfy, whatever its shape. */
function expectSound(line: string): ReturnType<typeof fastCanonicalLine> {
  const fast = fastCanonicalLine(line);
  if (fast !== null) {
    const e = slowPath(line);
    expect({ line, accepted: e !== null }).toEqual({ line, accepted: true });
    expect({ line, body: fast.body, seq: fast.seq, leaf: fast.leaf, chain: fast.chain }).toEqual({
      line,
      body: canonicalBody(e as JournalEntry),
      seq: (e as JournalEntry).seq,
      leaf: (e as JournalEntry).leaf,
      chain: (e as JournalEntry).chain,
    });
  }
  return fast;
}

/** A line in Regent's export order with the given field texts (raw JSON). */
function lineOf(parts: Partial<Record<(typeof FIELDS)[number], string>>): string {
  const all: Record<string, string> = {
    seq: '7',
    ts: '"2026-11-22T09:00:00.250Z"',
    kind: '"audit.note"',
    actor: '"user:ann"',
    subject: 'null',
    data: '{"a":1}',
    policyVersion: 'null',
    leaf: `"${HEX}"`,
    chain: `"${HEX}"`,
    ...parts,
  };
  return '{' + FIELDS.map((f) => `"${f}":${all[f]}`).join(',') + '}';
}

// ------------------------------------------------------------------------------------------
// Random lines. Values are generated as JSON text directly, so that non-canonical spellings
// (whitespace, escapes, number forms, key order, duplicates) can be produced on purpose.

const KEYS = ['a', 'b', 'z', 'A', '_', 'aa', 'a b', '1', '9', '10', 'amount', 'text', 'é', 'ü', '€', '😀', '\ue000', '\uffff', 'q"uote', '', '__proto__'];
const STRINGS = [
  '',
  'ok',
  'café',
  '€ ☃',
  '😀 emoji',
  '"as is"',
  'back\\slash',
  'a\nb',
  'tab\there',
  '\u0001\u001f\u0000',
  '\b\f\r',
  '\u007f',
  '\u2028\u2029',
  'slash/',
  '\ud800 lone',
  'lone \udfff',
  '\ue000\uffff',
];
const NUMBERS = [
  '0', '-0', '1', '-1', '10', '100', '1e2', '1e21', '1e+21', '1E+21', '1e-7', '1e-6', '0.000001', '0.0000001', '0.1', '0.10', '-0.0',
  '5e-324', '1.7976931348623157e+308', '1e400', '123456789012345', '1234567890123456', '123456789012345678', '9007199254740993',
  '1.5', '1.50', '3.14159', '-2.5e-8', '0.30000000000000004', '01', '.5', '1.', '-', '+1', '2e0', '1.0',
  '1.0000000000000001', '123456789.12345678', '123456789.123456789', '1234567890123456.7', '0.1000000000000000055511151231257827', '0.00000123', '-0.0000009',
];

class Gen {
  /** Set when the text deliberately strays from canonical form somewhere (may still be valid JSON). */
  exotic = false;
  constructor(readonly r: () => number) {}
  chance(p: number): boolean {
    return this.r() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.r() * xs.length)] as T;
  }
  int(n: number): number {
    return Math.floor(this.r() * n);
  }

  /** A string value as JSON text: canonical (JSON.stringify) or, now and then, spelled otherwise. */
  str(value: string, odd = 0.08): string {
    let text = JSON.stringify(value);
    if (this.chance(odd)) {
      const ch = value.length > 0 ? value[this.int(value.length)] : 'x';
      const code = (ch as string).charCodeAt(0);
      switch (this.int(6)) {
        case 0: // \u escape of any character, lower or upper case hex
          text = JSON.stringify(value).replace(JSON.stringify(ch).slice(1, -1), `\\u${code.toString(16).padStart(4, '0')}`);
          break;
        case 1:
          text = text.replace(/\\u00([0-9a-f]{2})/, (_m, h: string) => `\\u00${h.toUpperCase()}`);
          break;
        case 2:
          text = text.replace('/', '\\/');
          break;
        case 3:
          text = text.replace('\\n', '\\u000a');
          break;
        case 4: // a raw control character: not JSON at all
          text = text.slice(0, -1) + '\u0001"';
          break;
        default:
          text = text.replace('a', '\\u0061');
      }
    }
    return text;
  }

  num(): string {
    switch (this.int(6)) {
      case 0:
      case 5:
        return this.pick(NUMBERS);
      case 1:
        return String(this.int(2_000_000) - 1_000_000);
      case 2:
        return String((this.r() - 0.5) * 10 ** (this.int(40) - 20));
      case 3:
        return (this.r() * 1e6).toFixed(this.int(5));
      default:
        return String(this.int(1000) / 100);
    }
  }

  value(depth: number): string {
    const k = this.int(depth > 4 ? 4 : 7);
    if (k === 0) return this.num();
    if (k === 1) return this.str(this.chance(0.5) ? this.pick(STRINGS) : `s${this.int(100)}`);
    if (k === 2) return this.pick(['true', 'false', 'null', 'tru', 'nul', 'True']);
    if (k === 3) return this.num();
    if (k === 4) return this.array(depth + 1);
    return this.object(depth + 1);
  }

  array(depth: number): string {
    const n = this.int(4);
    const items: string[] = [];
    for (let i = 0; i < n; i++) items.push(this.value(depth));
    return '[' + items.join(this.chance(0.03) ? ', ' : ',') + ']';
  }

  object(depth: number): string {
    const n = this.int(5);
    let keys: string[] = [];
    for (let i = 0; i < n; i++) keys.push(this.chance(0.7) ? this.pick(KEYS) : `k${this.int(30)}`);
    // Keys the fast path leaves to the slow one: escapes in keys, keys at or past U+E000.
    if (keys.some((k) => /["\\\u0000-\u001f\ud800-\uffff]/.test(k))) this.exotic = true;
    if (this.chance(0.75)) keys = [...new Set(keys)].sort(); // canonical order (UTF-16), no duplicates
    const members = keys.map((k) => this.str(k, 0.03) + (this.chance(0.02) ? ': ' : ':') + this.value(depth));
    return '{' + members.join(',') + '}';
  }

  ts(): string {
    const pad = (n: number, w: number) => String(n).padStart(w, '0');
    const y = this.chance(0.05) ? this.pick([0, 1900, 2000, 2024, 2100, 9999]) : 2000 + this.int(40);
    const t = `${pad(y, 4)}-${pad(1 + this.int(12), 2)}-${pad(1 + this.int(31), 2)}T${pad(this.int(24), 2)}:${pad(this.int(60), 2)}:${pad(this.int(60), 2)}.${pad(this.int(1000), 3)}Z`;
    if (!this.chance(0.1)) return JSON.stringify(t);
    return this.pick([
      JSON.stringify(t.replace('Z', '+00:00')),
      JSON.stringify(t.slice(0, 19) + 'Z'),
      JSON.stringify(t.replace('T', ' ')),
      JSON.stringify(t.replace(/^\d{4}-\d\d/, '2026-13')),
      JSON.stringify(t.replace(/T\d\d/, 'T24')),
      JSON.stringify(t.replace(/:\d\d\./, ':60.')),
      JSON.stringify(t.replace(/-\d\dT/, '-00T')),
      JSON.stringify(t.replace('0', '\uff10')),
      '"' + t.replace('T', '\\u0054') + '"',
      '1700000000000',
      'null',
    ]);
  }

  hex(): string {
    let h = '';
    for (let i = 0; i < 64; i++) h += '0123456789abcdef'[this.int(16)];
    if (!this.chance(0.05)) return `"${h}"`;
    return this.pick([`"${h.toUpperCase()}"`, `"${h.slice(2)}"`, `"${h}0"`, `"${h.slice(1)}g"`, `"${h.slice(0, 30)}\\u0061${h.slice(31)}"`, '7', 'null']);
  }

  field(name: (typeof FIELDS)[number]): string {
    switch (name) {
      case 'seq':
        return this.chance(0.9)
          ? String(1 + (this.chance(0.5) ? this.int(1000) : this.int(2 ** 30) * 2 ** 20))
          : this.pick(['0', '-1', '01', '1.0', '1e3', '"5"', '9007199254740991', '9007199254740992', '12345678901234567', 'null', '2.5']);
      case 'ts':
        return this.ts();
      case 'kind':
      case 'actor':
        return this.chance(0.95) ? this.str(this.pick(['audit.note', 'user:dana', 'twin:cfo-twin', 'system', 'ü:x', 'a"b', 'x\ny', ''])) : this.pick(['7', 'null', '[]']);
      case 'subject':
        return this.chance(0.4) ? 'null' : this.chance(0.95) ? this.str(`proposal:p-${this.int(1000)}`) : this.pick(['3', 'false', '{}', '""']);
      case 'data':
        return this.chance(0.9) ? this.object(0) : this.value(0);
      case 'policyVersion': {
        if (this.chance(0.5)) return 'null';
        const h = this.hex();
        if (!h.startsWith('"')) return h;
        const prefix = this.chance(0.9) ? 'sha256:' : this.pick(['sha257:', 'SHA256:', 'sha256!', 'sha256', 'sha2566', 'xha256:']);
        return '"' + prefix + h.slice(1);
      }
      default:
        return this.hex();
    }
  }

  line(): string {
    let order: string[] = [...FIELDS];
    if (this.chance(0.1)) order.sort(() => this.r() - 0.5);
    if (this.chance(0.03)) order.splice(this.int(order.length), 1); // a field missing
    if (this.chance(0.03)) order.splice(this.int(order.length), 0, this.pick([...FIELDS, 'note', 'Seq'])); // extra or duplicate
    const members = order.map((f) => {
      // Now and then a near miss of the key: same length, one character changed.
      let key = f;
      if (this.chance(0.01)) {
        const i = this.int(f.length);
        key = f.slice(0, i) + this.pick(['x', 'A', 'é', '4', '"']) + f.slice(i + 1);
      }
      return JSON.stringify(key) + ':' + this.field(f as (typeof FIELDS)[number]);
    });
    let text = '{' + members.join(',') + '}';
    if (this.chance(0.03)) text = this.pick([' ' + text, text + ' ', text + '\r', text.replace(',', ' ,'), text.replace(':', ':\t'), '\ufeff' + text]);
    return text;
  }
}

describe('the fast path against the entry contract (contract.ts)', () => {
  it('knows the contract\'s nine fields in export order, and writes the body in its JCS order', () => {
    expect(FASTLINE_LAYOUT.exportOrder).toEqual([...ENTRY_FIELDS]);
    expect(FASTLINE_LAYOUT.bodyOrder).toEqual([...CANONICAL_BODY_FIELDS]);
  });

  it('recognises each contract field by name in any position, and builds the body canonicalBody builds', () => {
    const e: JournalEntry = {
      seq: 12,
      ts: '2026-11-22T09:00:00.250Z',
      kind: 'proposal.transitioned',
      actor: 'system',
      subject: 'proposal:p-1',
      data: { to: ['executed', 1] },
      policyVersion: `sha256:${'0f'.repeat(32)}`,
      leaf: HEX,
      chain: HEX,
    };
    const line = exportLine(e);
    const members = line.slice(1, -1).split(/,(?=")/);
    expect(members.map((m) => JSON.parse(m.slice(0, m.indexOf('":') + 1)))).toEqual([...ENTRY_FIELDS]);
    // Every rotation of the members puts each field first once (off Regent's own order).
    for (let r = 0; r < members.length; r++) {
      const rotated = '{' + [...members.slice(r), ...members.slice(0, r)].join(',') + '}';
      expect(fastCanonicalLine(rotated)?.body).toBe(canonicalBody(e));
    }
  });
});

describe('fastCanonicalLine on generated lines', () => {
  it('returns exactly the slow path\'s canonical body whenever it returns one, and a body for every canonical line', () => {
    let accepted = 0;
    let canonicalLines = 0;
    for (let i = 0; i < 6000; i++) {
      const g = new Gen(rng(1000 + i));
      const line = g.line();
      const fast = expectSound(line);
      if (fast !== null) accepted++;
      // Completeness: an accepted entry already written in canonical form must be taken by the
      // fast path, unless it holds what the fast path leaves to the slow one on purpose (keys
      // near or beyond the surrogate range, lone surrogates: see fastline.ts).
      const e = slowPath(line);
      if (e !== null && line === canonicalText(e)) {
        canonicalLines++;
        const loneSurrogate = /\\ud[89a-f]/.test(line);
        if (!g.exotic && !loneSurrogate) expect({ line, fast: fast !== null }).toEqual({ line, fast: true });
      } else {
        // Everything else (not JSON, not a valid entry, or not already canonical) is refused.
        expect({ line, fast }).toEqual({ line, fast: null });
      }
    }
    // The generator must actually exercise both outcomes.
    expect(accepted).toBeGreaterThan(800);
    expect(canonicalLines).toBeGreaterThan(800);
  });

  it('takes every line Regent writes with exportLine, and only those of its variants that are still canonical', () => {
    const bodies = Array.from({ length: 2000 }, (_, i) => defaultBody(i + 1));
    // Data with everything JCS has to decide: key order, number forms, escapes, non-ASCII.
    bodies.push({
      ...defaultBody(2001),
      data: { z: 1, '10': 'ten', '9': 'nine', é: '😀', a: { y: [1e21, -0, 0.1, 5e-324, 1e-7, 123.456], x: '"q" \\ \n \u0001' } },
    });
    const { entries } = sealEntries(ZERO_CHAIN, bodies);
    for (const e of entries) {
      const line = exportLine(e);
      expect(JSON.parse(line)).toEqual(JSON.parse(JSON.stringify(e)));
      const fast = expectSound(line);
      expect(fast?.body).toBe(canonicalBody(e));
      // JSON.stringify keeps data's insertion order, which is not canonical for these entries.
      const plain = JSON.stringify(e);
      if (plain !== line) expect(expectSound(plain)).toBeNull();
      // Any order of the nine top-level fields is fine.
      const reordered = JSON.parse(line) as Record<string, unknown>;
      const rev = '{' + Object.keys(reordered).reverse().map((k) => JSON.stringify(k) + ':' + canonicalize(reordered[k])).join(',') + '}';
      expect(expectSound(rev)?.body).toBe(canonicalBody(e));
    }
  });
});

describe('fastCanonicalLine on hand-written lines', () => {
  it('accepts a canonical line and builds the canonical body from it', () => {
    const line = lineOf({ data: '{"10":"x","9":[1,-2.5,1e+21,"a\\nb",true,null,{}],"é":"€"}', subject: '"proposal:p-1"' });
    expect(expectSound(line)).toEqual({
      body: '{"actor":"user:ann","data":{"10":"x","9":[1,-2.5,1e+21,"a\\nb",true,null,{}],"é":"€"},"kind":"audit.note","policyVersion":null,"seq":7,"subject":"proposal:p-1","ts":"2026-11-22T09:00:00.250Z"}',
      seq: 7,
      leaf: HEX,
      chain: HEX,
    });
  });

  it.each([
    ['a duplicate key in data', { data: '{"a":1,"a":1}' }],
    ['keys out of order in data', { data: '{"b":1,"a":2}' }],
    ['integer-like keys in JavaScript order rather than UTF-16 order', { data: '{"9":1,"10":2}' }],
    ['a non-canonical number 1.0', { data: '{"a":1.0}' }],
    ['a non-canonical number 1e21 (JCS writes 1e+21)', { data: '{"a":1e21}' }],
    ['a negative zero', { data: '{"a":-0}' }],
    ['an exponent where JCS writes digits', { data: '{"a":1e2}' }],
    ['a number beyond what a double holds exactly', { data: '{"a":12345678901234567890}' }],
    ['an escaped é', { data: '{"a":"caf\\u00e9"}' }],
    ['an escaped slash', { data: '{"a":"a\\/b"}' }],
    ['an escaped newline spelled \\u000a', { data: '{"a":"a\\u000ab"}' }],
    ['an uppercase \\u escape', { data: '{"a":"\\u001F"}' }],
    ['an escape in a key', { data: '{"a\\nb":1}' }],
    ['a lone surrogate escape', { data: '{"a":"\\ud800"}' }],
    ['a space after a colon', { data: '{"a": 1}' }],
    ['a space after a comma', { data: '[1, 2]' }],
    ['nesting deeper than the fast path follows', { data: '['.repeat(100) + ']'.repeat(100) }],
    ['a number below 1e-6 written without an exponent', { data: '{"a":0.0000001}' }],
    ['a decimal with more digits than a double keeps', { data: '{"a":1.0000000000000001}' }],
    ['an 18-digit decimal that prints differently', { data: '{"a":123456789.123456789}' }],
    ['keys whose UTF-8 order differs from their UTF-16 order', { data: '{"\ue000":1,"😀":2}' }],
    ['a raw lone surrogate (JCS escapes it)', { data: '{"a":"\ud800"}' }],
    ['a policyVersion with another prefix', { policyVersion: `"sha257:${HEX}"` }],
    ['a policyVersion without its colon', { policyVersion: `"sha256-${HEX}"` }],
    ['seq with a leading zero', { seq: '07' }],
    ['seq written as 7.0', { seq: '7.0' }],
    ['seq as a string', { seq: '"7"' }],
    ['seq 0', { seq: '0' }],
    ['seq beyond 2^53', { seq: '9007199254740993' }],
    ['a ts on a day that does not exist', { ts: '"2026-02-29T09:00:00.250Z"' }],
    ['a ts without milliseconds', { ts: '"2026-11-22T09:00:00Z"' }],
    ['a ts whose closing quote is something else', { ts: '"2026-11-22T09:00:00.250Z_' }],
    ['a ts that runs on past its 24 characters', { ts: '"2026-11-22T09:00:00.250Z0"' }],
    ['an empty kind', { kind: '""' }],
    ['a numeric actor', { actor: '7' }],
    ['a numeric subject', { subject: '3' }],
    ['an uppercase policyVersion', { policyVersion: `"sha256:${HEX.toUpperCase()}"` }],
    ['an uppercase leaf', { leaf: `"${HEX.toUpperCase()}"` }],
    ['a short chain', { chain: '"abc"' }],
  ])('returns null for a line with %s', (_what, parts) => {
    const line = lineOf(parts);
    expect(expectSound(line)).toBeNull();
  });

  it('returns null when a top-level field is missing, extra or repeated', () => {
    const good = lineOf({});
    expect(expectSound(good)).not.toBeNull();
    expect(expectSound(good.replace(',"subject":null', ''))).toBeNull();
    expect(expectSound(good.slice(0, -1) + ',"note":"x"}')).toBeNull();
    expect(expectSound(good.slice(0, -1) + ',"seq":7}')).toBeNull();
  });

  it('returns null when a top-level key differs from a field name in one character', () => {
    const good = lineOf({});
    for (const f of FIELDS) {
      for (let i = 0; i < f.length; i++) {
        for (const c of ['x', 'X', String.fromCharCode(f.charCodeAt(i) ^ 0x20), String.fromCharCode(f.charCodeAt(i) + 1)]) {
          const near = f.slice(0, i) + c + f.slice(i + 1);
          if (near === f) continue;
          expect(expectSound(good.replace(`"${f}":`, JSON.stringify(near) + ':'))).toBeNull();
          // The same near miss when the fields come in another order (the generic key path).
          const reversed = '{' + good.slice(1, -1).split(/,(?=")/).reverse().join(',') + '}';
          expect(expectSound(reversed.replace(`"${f}":`, JSON.stringify(near) + ':'))).toBeNull();
        }
      }
    }
  });

  it('decides every timestamp exactly as checkEntryShape does, one character changed at a time', () => {
    const bases = [
      '2026-11-22T09:00:00.250Z', '2024-02-29T23:59:59.999Z', '2026-02-28T00:00:00.000Z', '2026-02-29T12:00:00.000Z',
      '2000-02-29T01:02:03.004Z', '1900-02-29T01:02:03.004Z', '2100-02-29T01:02:03.004Z', '0000-02-29T00:00:00.000Z',
      '2026-04-30T10:10:10.100Z', '2026-04-31T10:10:10.100Z', '2026-12-31T19:29:39.909Z', '2026-01-31T20:50:50.050Z',
      '9999-12-31T23:59:59.999Z', '2026-10-10T10:10:10.010Z', '2026-09-31T00:00:00.000Z', '2026-06-30T00:00:00.000Z',
    ];
    const replacements = '0123456789-:.TZtz/ ;@\x7f';
    let accepted = 0;
    for (const base of bases) {
      const variants = [base];
      for (let i = 0; i < base.length; i++) for (const c of replacements) variants.push(base.slice(0, i) + c + base.slice(i + 1));
      for (const ts of variants) {
        const line = lineOf({ ts: JSON.stringify(ts) });
        const shapeOk = checkEntryShape(JSON.parse(line)) === null;
        const fast = expectSound(line);
        expect({ ts, fast: fast !== null }).toEqual({ ts, fast: shapeOk });
        if (shapeOk) accepted++;
      }
    }
    expect(accepted).toBeGreaterThan(1000);
  });

  it('returns null for whitespace anywhere, a byte-order mark, or a carriage return', () => {
    const good = lineOf({});
    for (const bad of [' ' + good, good + ' ', good + '\r', '\ufeff' + good, good.replace('"seq":7', '"seq" :7'), good.replace('{"a":1}', '{ "a":1}')]) {
      expect(expectSound(bad)).toBeNull();
    }
  });

  it('accepts a 17-digit decimal that JCS writes the same way', () => {
    expect(expectSound(lineOf({ data: '{"a":123456789.12345678,"b":0.30000000000000004}' }))).not.toBeNull();
  });

  it('accepts the escapes JCS writes itself', () => {
    const line = lineOf({ data: '{"a":"q\\"b\\\\s\\b\\f\\n\\r\\t\\u0000\\u001f"}', actor: '"user:\\"x\\""' });
    expect(expectSound(line)?.body).toContain('"q\\"b\\\\s\\b\\f\\n\\r\\t\\u0000\\u001f"');
  });
});

describe('FastLineScanner on raw bytes', () => {
  const line = lineOf({ data: '{"a":"ü"}' });
  const at = Buffer.from(line).indexOf(Buffer.from('ü'));

  it('accepts valid UTF-8 and refuses malformed sequences the decoder would replace with U+FFFD', () => {
    const scanner = new FastLineScanner();
    const good = Buffer.from(line);
    expect(scanner.scan(good, 0, good.length)).toBe(true);
    for (const bad of [[0xff], [0xc3], [0xc0, 0xbc], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x80]]) {
      const b = Buffer.concat([good.subarray(0, at), Buffer.from(bad), good.subarray(at + 2)]);
      expect({ bad, ok: scanner.scan(b, 0, b.length) }).toEqual({ bad, ok: false });
    }
  });

  it('scans a line in the middle of a larger buffer without reading past its end', () => {
    const scanner = new FastLineScanner();
    const n = Buffer.byteLength(line);
    const buf = Buffer.from(`${line}\n${line}\n`);
    expect(scanner.scan(buf, 0, n)).toBe(true);
    expect(scanner.scan(buf, n + 1, 2 * n + 1)).toBe(true);
    expect(scanner.scan(buf, 0, n - 1)).toBe(false); // cut before its closing brace
    expect(scanner.scan(buf, 0, n + 1)).toBe(false); // the newline is not part of a line
    // The last line of a buffer, with nothing after it to over-read.
    const exact = Buffer.from(line);
    expect(scanner.scan(exact, 0, n)).toBe(true);
  });
});

describe('verifyExport with the fast path', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'regent-fastline-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('verifies lines written like Regent writes them without parsing them as JSON', async () => {
    const made = await makeExport(dir, { count: 500, checkpointsAt: [250, 500] });
    const parse = jest.spyOn(JSON, 'parse');
    try {
      const r = await verifyExport(dir, { keyText: made.vkey });
      expect(r).toMatchObject({ ok: true, size: 500 });
      // manifest.json only; not one of the 500 lines.
      expect(parse.mock.calls.length).toBeLessThan(5);
    } finally {
      parse.mockRestore();
    }
  });

  it('verifies an export with a line longer than the read buffer on the fast path', async () => {
    const d = path.join(dir, 'long-line');
    const big = 'x'.repeat(3 << 20) + ' é';
    const made = await makeExport(d, { count: 5, checkpointsAt: [5], body: (seq) => (seq === 3 ? { ...defaultBody(seq), data: { big, n: [1, 2.5] } } : defaultBody(seq)) });
    const parse = jest.spyOn(JSON, 'parse');
    try {
      expect(await verifyExport(d, { keyText: made.vkey })).toMatchObject({ ok: true, size: 5 });
      expect(parse.mock.calls.length).toBeLessThan(5);
    } finally {
      parse.mockRestore();
    }
    // And a tampered byte deep inside it is still found, naming its seq.
    const file = path.join(d, 'entries.jsonl');
    await writeFile(file, (await readFile(file, 'utf8')).replace('xxx é', 'xxy é'));
    expect(await verifyExport(d, { keyText: made.vkey })).toMatchObject({ ok: false, failure: { at: 'seq', seq: 3 } });
  });

  /** A fresh canonical export of 40 entries whose line 17 (seq 17) gets `edit`ed. */
  async function tampered(name: string, edit: (line: string) => string): Promise<{ dir: string; vkey: string }> {
    const d = path.join(dir, name);
    const made = await makeExport(d, { count: 40, checkpointsAt: [40] });
    const file = path.join(d, 'entries.jsonl');
    const lines = (await readFile(file, 'utf8')).split('\n');
    lines[16] = edit(lines[16] as string);
    await writeFile(file, lines.join('\n'));
    return { dir: d, vkey: made.vkey };
  }

  it('refuses a line whose leaf field is wrong even though its chain follows from its true leaf', async () => {
    const { dir: d, vkey } = await tampered('leaf-only', (l) => l.replace(/"leaf":"[0-9a-f]{64}"/, `"leaf":"${'0'.repeat(64)}"`));
    const r = await verifyExport(d, { keyText: vkey });
    expect(r).toMatchObject({ ok: false, failure: { at: 'seq', seq: 17 } });
    expect(!r.ok && r.failure.message).toMatch(/^seq 17: leaf 0{64} does not match the entry's content/);
  });

  it('refuses a line whose chain field alone was changed', async () => {
    const { dir: d, vkey } = await tampered('chain-only', (l) => l.replace(/"chain":"[0-9a-f]{64}"/, `"chain":"${'f'.repeat(64)}"`));
    const r = await verifyExport(d, { keyText: vkey });
    expect(r).toMatchObject({ ok: false, failure: { at: 'seq', seq: 17 } });
    expect(!r.ok && r.failure.message).toMatch(/^seq 17: chain f{64} does not follow from the previous entry/);
  });

  it('refuses an export whose seq values are off by one although every leaf and chain matches its line', async () => {
    const d = path.join(dir, 'seq-shift');
    const made = await makeExport(d, { count: 10, checkpointsAt: [10], body: (seq) => defaultBody(seq + 1) });
    const r = await verifyExport(d, { keyText: made.vkey });
    expect(r).toEqual({
      ok: false,
      failure: { at: 'seq', seq: 1, message: 'line 1 holds seq 2 where seq 1 was expected (entries missing, duplicated or reordered)' },
    });
  });

  it('reports the same first failure for a tampered line whether or not it is canonical', async () => {
    // Line 17's data edited: once in canonical form (fast path), once with a space (slow path).
    const fast = await tampered('edit-fast', (l) => l.replace('"tags":["', '"tags":["x'));
    const slow = await tampered('edit-slow', (l) => l.replace('"tags":["', '"tags": ["x'));
    const a = await verifyExport(fast.dir, { keyText: fast.vkey });
    const b = await verifyExport(slow.dir, { keyText: slow.vkey });
    expect(a).toMatchObject({ ok: false, failure: { at: 'seq', seq: 17 } });
    expect(b).toMatchObject({ ok: false, failure: { at: 'seq', seq: 17 } });
    // Same content, so the same recomputed leaf in the message.
    expect(!a.ok && a.failure.message).toBe(!b.ok && b.failure.message);
  });
});
