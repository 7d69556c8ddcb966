/**
 * Money as integer minor units (bigint) of an ISO 4217 currency. Decimal strings in, decimal
 * strings out; no floating point anywhere, so 0.1 + 0.2 is exactly 0.3 and limits compare exactly.
 */
import { currencyExponent } from './currencies';

/** Plain decimal, no sign, no separators, no exponent: "12000", "12000.50", "0.5". */
export const DECIMAL_PATTERN = /^(0|[1-9][0-9]*)(\.[0-9]+)?$/;
/** Guards against absurd inputs turning into enormous bigints. */
const MAX_INTEGER_DIGITS = 24;

export type AmountResult = { ok: true; minor: bigint } | { ok: false; message: string };

/** Why `text` is not an amount at all (currency aside), or null when it is a decimal string. */
export function decimalProblem(text: unknown): string | null {
  if (typeof text !== 'string') {
    const shown = typeof text === 'number' ? String(text) : typeof text;
    return `amount must be a quoted decimal string such as "10000.00", got ${shown}`;
  }
  if (DECIMAL_PATTERN.test(text)) {
    const integerDigits = text.split('.')[0]!.length;
    return integerDigits > MAX_INTEGER_DIGITS ? `amount "${text}" is too large` : null;
  }
  if (/^-/.test(text.trim())) return `amount "${text}" is negative; amounts cannot be negative`;
  if (/[,'_ ]/.test(text)) return `amount "${text}" has digit separators; write it as a plain decimal such as "12000.00"`;
  return `amount "${text}" is not a decimal string such as "12000.00"`;
}

export function parseAmount(text: unknown, currency: string): AmountResult {
  const digits = currencyExponent(currency);
  if (digits === undefined) return { ok: false, message: `unknown currency "${currency}"` };
  // Hand-rolled scan: this runs on every decision, and a regex plus split costs several times more.
  if (typeof text === 'string' && text.length > 0 && text.length <= MAX_INTEGER_DIGITS + 1 + digits) {
    let dot = -1;
    let valid = true;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 46 /* . */ && dot === -1 && i > 0 && i < text.length - 1) dot = i;
      else if (c < 48 || c > 57) {
        valid = false;
        break;
      }
    }
    if (valid && !(text.charCodeAt(0) === 48 && text.length > 1 && dot !== 1)) {
      const fraction = dot === -1 ? 0 : text.length - dot - 1;
      if (fraction <= digits && (dot === -1 ? text.length : dot) <= MAX_INTEGER_DIGITS) {
        const total = text.length - (dot === -1 ? 0 : 1) + (digits - fraction);
        if (total <= 15) {
          // Below 2^53 a double holds every integer exactly, and BigInt(number) is much cheaper
          // than BigInt(string); the value is still an exact integer of minor units.
          let v = 0;
          for (let i = 0; i < text.length; i++) if (i !== dot) v = v * 10 + (text.charCodeAt(i) - 48);
          for (let k = fraction; k < digits; k++) v *= 10;
          return { ok: true, minor: BigInt(v) };
        }
        const plain = dot === -1 ? text : text.slice(0, dot) + text.slice(dot + 1);
        return { ok: true, minor: BigInt(fraction === digits ? plain : plain + ZEROS.slice(0, digits - fraction)) };
      }
    }
  }
  const problem = decimalProblem(text);
  if (problem) return { ok: false, message: problem };
  const fraction = (text as string).split('.')[1] ?? '';
  const allowed = digits === 0 ? 'no decimals' : `${digits} decimal${digits === 1 ? '' : 's'}`;
  return { ok: false, message: `amount "${text as string}" has ${fraction.length} decimals; ${currency} allows ${allowed}` };
}

const ZEROS = '0000';

export class AmountError extends Error {
  override readonly name = 'AmountError';
}

/** Like parseAmount, for callers that have already validated (documents after loading). */
export function toMinor(text: string, currency: string): bigint {
  const result = parseAmount(text, currency);
  if (!result.ok) throw new AmountError(result.message);
  return result.minor;
}

/** Canonical decimal string with exactly the currency's digits: 12000n EUR-cents → "120.00". */
export function toDecimal(minor: bigint, currency: string): string {
  const digits = currencyExponent(currency) ?? 2;
  const negative = minor < 0n;
  const abs = (negative ? -minor : minor).toString().padStart(digits + 1, '0');
  const whole = abs.slice(0, abs.length - digits);
  const fraction = abs.slice(abs.length - digits);
  return (negative ? '-' : '') + whole + (digits > 0 ? '.' + fraction : '');
}

/** For people: "12,000.00 EUR". */
export function formatAmount(minor: bigint, currency: string): string {
  const plain = toDecimal(minor, currency);
  const negative = plain.charCodeAt(0) === 45;
  const body = negative ? plain.slice(1) : plain;
  const dot = body.indexOf('.');
  const whole = dot === -1 ? body : body.slice(0, dot);
  let grouped = '';
  for (let end = whole.length; end > 0; end -= 3) grouped = whole.slice(Math.max(0, end - 3), end) + (grouped ? ',' + grouped : '');
  return `${negative ? '-' : ''}${grouped}${dot === -1 ? '' : body.slice(dot)} ${currency}`;
}
