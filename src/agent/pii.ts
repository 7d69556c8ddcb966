/**
 * Personal data kept out of the model's sight.
 *
 * Before anything reaches a model (objective text, parameters, tool results, approvers'
 * comments), e-mail addresses, phone numbers, IBANs (mod-97 checksum) and payment card numbers
 * (Luhn) are replaced by stable tokens such as `<EMAIL_1>`. The mapping lives in the run's state
 * (a {@link PiiVault}), is never sent to the model, and is used only inside Regent to restore the
 * real values in a tool call's arguments right before they go to the governed pipeline.
 *
 * Detection is deliberately conservative where false positives would hide business data from the
 * model (amounts, dates, ids): IBANs and card numbers must pass their checksums, phone numbers
 * must look like phone numbers (international `+…`, a national trunk `0…`, or the North American
 * `(555) 123-4567` form).
 */

export const PII_KINDS = ['EMAIL', 'PHONE', 'IBAN', 'CARD'] as const;
export type PiiKind = (typeof PII_KINDS)[number];

export interface PiiMatch {
  kind: PiiKind;
  start: number;
  end: number;
  value: string;
}

// ---------------------------------------------------------------------------------------------
// Checksums

/** Luhn (mod 10) over a string of digits. */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits)) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** IBAN lengths by country (ISO 13616 registry); countries not listed need 15–34 characters. */
const IBAN_LENGTHS: Record<string, number> = Object.fromEntries(
  (
    'AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DK18 DO28 EE20 EG29 ES24 FI18 ' +
    'FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 ' +
    'LU20 LV21 MC27 MD24 ME22 MK19 MR27 MT31 MU30 NL18 NO15 PK24 PL28 PS29 PT25 QA29 RO24 RS22 SA24 SC31 SE24 SI19 ' +
    'SK24 SM27 ST25 SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20'
  )
    .split(' ')
    .map((e) => [e.slice(0, 2), Number(e.slice(2))]),
);

/** An IBAN (spaces allowed) with a valid length for its country and a valid mod-97 checksum. */
export function isValidIban(text: string): boolean {
  const iban = text.replace(/ /g, '').toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(iban)) return false;
  const expected = IBAN_LENGTHS[iban.slice(0, 2)];
  if (expected !== undefined && iban.length !== expected) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0);
    const chunk = code >= 65 ? String(code - 55) : ch; // A=10 … Z=35
    for (const d of chunk) remainder = (remainder * 10 + (d.charCodeAt(0) - 48)) % 97;
  }
  return remainder === 1;
}

// ---------------------------------------------------------------------------------------------
// Detection

// Starts only where a local part starts (keeps long runs linear).
const EMAIL_RE =
  /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}/g;
const IBAN_CANDIDATE_RE = /(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,34}/g;
const CARD_CANDIDATE_RE = /(?<![\d.,])\d(?:[ -]?\d){12,22}(?![\d])/g;
// None starts right after "digits and a separator": a fragment of a longer number is not a phone.
const PHONE_RES = [
  // International: +49 30 1234567, +1-202-555-0143, +44 (0)20 7946 0958
  /(?<![\w+]|\d[ .-])\+\d{1,3}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,5})){2,6}(?![\w])/g,
  // National with trunk prefix: 030 1234567, 0171-1234567, 030/123 456 78
  /(?<![\w.,/-]|\d[ ])0\d{1,4}(?:[ ./-]\d{2,8}){1,4}(?![\w]|[.,]\d)/g,
  // North American: (202) 555-0143, 202-555-0143, 202.555.0143
  /(?<![\w.,-]|\d[ ])(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w]|[.,]\d)/g,
];
const DATE_LIKE = /^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$/;

const PRIORITY: Record<PiiKind, number> = { EMAIL: 0, IBAN: 1, CARD: 2, PHONE: 3 };

function ibanMatches(text: string): PiiMatch[] {
  const out: PiiMatch[] = [];
  for (const m of text.matchAll(IBAN_CANDIDATE_RE)) {
    const candidate = m[0];
    // The candidate may run into following words ("… 0130 00 EUR"): take the longest prefix
    // that is a valid IBAN and ends on a word boundary.
    for (let end = candidate.length; end >= 15; end--) {
      const prefix = candidate.slice(0, end);
      if (prefix.endsWith(' ')) continue;
      const next = candidate[end];
      if (next !== undefined && next !== ' ') continue;
      if (isValidIban(prefix)) {
        out.push({ kind: 'IBAN', start: m.index, end: m.index + end, value: prefix });
        break;
      }
    }
  }
  return out;
}

function cardMatches(text: string): PiiMatch[] {
  const out: PiiMatch[] = [];
  for (const m of text.matchAll(CARD_CANDIDATE_RE)) {
    const candidate = m[0];
    // Try the whole run, then shorter prefixes that end at a separator (a card followed by more digits).
    const ends = [candidate.length];
    for (let i = candidate.length - 1; i > 0; i--) if (candidate[i] === ' ' || candidate[i] === '-') ends.push(i);
    for (const end of ends) {
      const value = candidate.slice(0, end).replace(/[ -]+$/, '');
      const digits = value.replace(/[ -]/g, '');
      if (digits.length < 13 || digits.length > 19) continue;
      if (/^0+$/.test(digits) || !luhnValid(digits)) continue;
      out.push({ kind: 'CARD', start: m.index, end: m.index + value.length, value });
      break;
    }
  }
  return out;
}

function phoneMatches(text: string): PiiMatch[] {
  const out: PiiMatch[] = [];
  for (const re of PHONE_RES) {
    for (const m of text.matchAll(re)) {
      const value = m[0];
      const digits = value.replace(/\D/g, '').length;
      if (digits < 7 || digits > 15) continue;
      if (DATE_LIKE.test(value)) continue;
      out.push({ kind: 'PHONE', start: m.index, end: m.index + value.length, value });
    }
  }
  return out;
}

/** Every piece of personal data in `text`, non-overlapping, in order of appearance. */
export function findPii(text: string): PiiMatch[] {
  const candidates: PiiMatch[] = [
    ...[...text.matchAll(EMAIL_RE)].map((m) => ({ kind: 'EMAIL' as const, start: m.index, end: m.index + m[0].length, value: m[0] })),
    ...ibanMatches(text),
    ...cardMatches(text),
    ...phoneMatches(text),
  ];
  // Higher-priority kinds first, then longer spans; a span overlapping one already taken is dropped.
  candidates.sort((a, b) => PRIORITY[a.kind] - PRIORITY[b.kind] || b.end - b.start - (a.end - a.start) || a.start - b.start);
  const taken: PiiMatch[] = [];
  const occupied = new Uint8Array(text.length);
  for (const c of candidates) {
    let free = true;
    for (let i = c.start; i < c.end && free; i++) free = occupied[i] === 0;
    if (!free) continue;
    occupied.fill(1, c.start, c.end);
    taken.push(c);
  }
  return taken.sort((a, b) => a.start - b.start);
}

/** For logs and journal details: personal data replaced by its kind, with no way back. */
export function scrubPii(text: string): string {
  const matches = findPii(text);
  let out = '';
  let at = 0;
  for (const m of matches) {
    out += text.slice(at, m.start) + `[${m.kind}]`;
    at = m.end;
  }
  return out + text.slice(at);
}

/** Deep {@link scrubPii} over JSON-like data (strings and object keys). */
export function scrubPiiDeep(value: unknown, depth = 0): unknown {
  if (depth > 32) return '[deep]';
  if (typeof value === 'string') return scrubPii(value);
  if (Array.isArray(value)) return value.map((v) => scrubPiiDeep(v, depth + 1));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [scrubPii(k), scrubPiiDeep(v, depth + 1)]));
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Tokens

/** A token as the model sees it, e.g. `<EMAIL_1>`. */
export const TOKEN_RE = /<(EMAIL|PHONE|IBAN|CARD)_(\d{1,6})>/g;

export interface PiiVaultState {
  /** token → the value it stands for (`numeric` when the original was a JSON number). */
  tokens: Record<string, { kind: PiiKind; value: string; numeric?: boolean }>;
}

export class UnknownTokenError extends Error {
  constructor(readonly tokens: string[]) {
    super(`unknown placeholder${tokens.length > 1 ? 's' : ''} ${tokens.join(', ')}`);
    this.name = 'UnknownTokenError';
  }
}

/**
 * The run's token mapping: the same value always gets the same token, so the model can refer to
 * "<EMAIL_1>" consistently across a long, resumed run.
 */
export class PiiVault {
  private readonly byToken = new Map<string, { kind: PiiKind; value: string; numeric?: boolean }>();
  private readonly byValue = new Map<string, string>();
  private readonly counters: Record<PiiKind, number> = { EMAIL: 0, PHONE: 0, IBAN: 0, CARD: 0 };

  constructor(state?: PiiVaultState) {
    for (const [token, entry] of Object.entries(state?.tokens ?? {})) {
      const m = /^<(EMAIL|PHONE|IBAN|CARD)_(\d+)>$/.exec(token);
      if (!m || m[1] !== entry.kind || typeof entry.value !== 'string')
        throw new Error(`PII vault: malformed entry ${JSON.stringify(token)}`);
      this.byToken.set(token, { ...entry });
      this.byValue.set(this.valueKey(entry.kind, entry.value, entry.numeric), token);
      this.counters[entry.kind] = Math.max(this.counters[entry.kind], Number(m[2]));
    }
  }

  get size(): number {
    return this.byToken.size;
  }

  toJSON(): PiiVaultState {
    return { tokens: Object.fromEntries(this.byToken) };
  }

  private valueKey(kind: PiiKind, value: string, numeric?: boolean) {
    return `${kind}\u0000${numeric ? 'n' : 's'}\u0000${value}`;
  }

  private tokenFor(kind: PiiKind, value: string, numeric?: boolean): string {
    const key = this.valueKey(kind, value, numeric);
    const existing = this.byValue.get(key);
    if (existing) return existing;
    const token = `<${kind}_${++this.counters[kind]}>`;
    this.byToken.set(token, numeric ? { kind, value, numeric: true } : { kind, value });
    this.byValue.set(key, token);
    return token;
  }

  /**
   * Text with every piece of personal data replaced by its token. Text that merely looks like a
   * token (`<EMAIL_1>` typed into an objective or a tool result) is defused first, so it can
   * never be restored into a value it does not stand for.
   */
  tokenizeText(text: string): string {
    const defused = text.replace(TOKEN_RE, '\u2039$1_$2\u203a');
    const matches = findPii(defused);
    let out = '';
    let at = 0;
    for (const m of matches) {
      out += defused.slice(at, m.start) + this.tokenFor(m.kind, m.value);
      at = m.end;
    }
    return out + defused.slice(at);
  }

  /** JSON-like data with every string (and object key) tokenized; long card numbers as JSON numbers too. */
  tokenize(value: unknown, depth = 0): unknown {
    if (depth > 32) return '[deep]';
    if (typeof value === 'string') return this.tokenizeText(value);
    if (typeof value === 'number' && Number.isInteger(value) && value > 0) {
      const digits = String(value);
      if (digits.length >= 13 && digits.length <= 19 && luhnValid(digits)) return this.tokenFor('CARD', digits, true);
      return value;
    }
    if (Array.isArray(value)) return value.map((v) => this.tokenize(v, depth + 1));
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [this.tokenizeText(k), this.tokenize(v, depth + 1)]));
    }
    return value;
  }

  /** Text with tokens replaced by their values; tokens this run never issued are listed in `unknown`. */
  restoreText(text: string): { text: string; unknown: string[] } {
    const unknown: string[] = [];
    const restored = text.replace(TOKEN_RE, (token) => {
      const entry = this.byToken.get(token);
      if (!entry) {
        unknown.push(token);
        return token;
      }
      return entry.value;
    });
    return { text: restored, unknown };
  }

  /**
   * Deep restore of a tool call's arguments. Throws {@link UnknownTokenError} when the model used
   * a placeholder this run never issued (it invented one): such a call must not go anywhere.
   */
  restore(value: unknown): unknown {
    const unknown: string[] = [];
    const walk = (v: unknown, depth: number): unknown => {
      if (depth > 32) throw new Error('arguments are nested too deeply');
      if (typeof v === 'string') {
        const whole = this.byToken.get(v);
        if (whole?.numeric) return Number(whole.value);
        const r = this.restoreText(v);
        unknown.push(...r.unknown);
        return r.text;
      }
      if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
      if (v && typeof v === 'object') {
        return Object.fromEntries(
          Object.entries(v).map(([k, x]) => {
            const rk = this.restoreText(k);
            unknown.push(...rk.unknown);
            return [rk.text, walk(x, depth + 1)];
          }),
        );
      }
      return v;
    };
    const out = walk(value, 0);
    if (unknown.length > 0) throw new UnknownTokenError([...new Set(unknown)]);
    return out;
  }
}
