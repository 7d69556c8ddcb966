/**
 * RFC 8785 JSON Canonicalization Scheme (JCS).
 *
 * The journal's leaf hash is defined over JCS bytes, so this must agree byte for byte with
 * independent implementations. Two facts make a small implementation possible in JS:
 * - RFC 8785 number serialization IS ECMAScript Number::toString, which JSON.stringify applies
 *   to finite numbers (and it already maps -0 to "0");
 * - RFC 8785 string escaping is exactly what JSON.stringify does since ES2019 (well-formed
 *   JSON.stringify: \b \f \n \r \t, \" \\, other C0 controls as \u00xx lowercase, lone
 *   surrogates as \udxxx, everything else verbatim, including U+2028/U+2029 and "/").
 * What is left is key ordering (UTF-16 code units, which is what Array.prototype.sort does by
 * default) and rejecting values JSON cannot represent instead of silently dropping them.
 */

// Deep enough for any real document; only a cycle (or a hostile input) gets here, and failing
// with a clear message beats a stack overflow.
const MAX_DEPTH = 1000;

/** Thrown for values that have no JSON form; `path` locates the offending value. */
export class CanonicalJsonError extends Error {
  override name = 'CanonicalJsonError';
  /** Property names and array indexes from the top-level value down to the offending one. */
  readonly path: (string | number)[] = [];
  constructor(readonly reason: string) {
    super(reason);
  }
  /** Called while unwinding, so the happy path never builds path strings. */
  prependPath(segment: string | number): void {
    this.path.unshift(segment);
    this.message = `cannot canonicalize ${formatPath(this.path)}: ${this.reason}`;
  }
}

function formatPath(path: readonly (string | number)[]): string {
  if (path.length === 0) return 'the top-level value';
  let s = '';
  for (const seg of path) s += typeof seg === 'number' ? `[${seg}]` : s === '' ? seg : `.${seg}`;
  return `value at ${s}`;
}

/** RFC 8785 canonical form of a JSON-compatible value. Throws CanonicalJsonError otherwise. */
export function canonicalize(value: unknown): string {
  try {
    return serialize(value, 0);
  } catch (err) {
    if (err instanceof CanonicalJsonError && err.path.length === 0) {
      err.message = `cannot canonicalize the top-level value: ${err.reason}`;
    }
    throw err;
  }
}

// Characters JCS (and JSON.stringify) would escape: quote, backslash, C0 controls; surrogates are
// included so that lone ones go through JSON.stringify, which escapes them (pairs pass unchanged).
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * JCS form of a string. Most strings need no escaping, and checking that with a regex is several
 * times cheaper than a JSON.stringify call per string.
 */
export function quoteString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"';
}

function serialize(value: unknown, depth: number): string {
  switch (typeof value) {
    case 'string':
      return quoteString(value);
    case 'number':
      if (!Number.isFinite(value)) {
        throw new CanonicalJsonError(`${String(value)} is not a finite number (JSON has no NaN or Infinity)`);
      }
      // Number::toString, which is exactly RFC 8785 section 3.2.2.3; String(-0) is "0" too.
      // (~10x cheaper than JSON.stringify for a number.)
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) return 'null';
      if (depth >= MAX_DEPTH) {
        throw new CanonicalJsonError(`nesting deeper than ${MAX_DEPTH} levels (cyclic structure?)`);
      }
      if (Array.isArray(value)) return serializeArray(value, depth + 1);
      // Match JSON.stringify for objects that define their JSON form (Date, for instance).
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
        return serialize((value as { toJSON: () => unknown }).toJSON(), depth + 1);
      }
      return serializeObject(value as Record<string, unknown>, depth + 1);
    case 'undefined':
      throw new CanonicalJsonError('undefined is not a JSON value');
    case 'bigint':
      throw new CanonicalJsonError('bigint is not a JSON value (convert it to a string or a safe integer)');
    case 'function':
      throw new CanonicalJsonError('functions are not JSON values');
    default:
      throw new CanonicalJsonError(`${typeof value} is not a JSON value`);
  }
}

function serializeArray(arr: readonly unknown[], depth: number): string {
  const n = arr.length;
  if (n === 0) return '[]';
  let out = '[';
  let i = 0;
  try {
    for (; i < n; i++) {
      if (i > 0) out += ',';
      const item = arr[i];
      // JSON.stringify would write null here; a hash over silently altered data is worse.
      if (item === undefined) throw new CanonicalJsonError('undefined is not a JSON value');
      out += serialize(item, depth);
    }
  } catch (err) {
    if (err instanceof CanonicalJsonError) err.prependPath(i);
    throw err;
  }
  return out + ']';
}

/**
 * Sorts keys by UTF-16 code units (RFC 8785 section 3.2.3), which is what `<` on strings and the
 * default Array.prototype.sort both do. Objects in journal data are small, and insertion sort
 * on a handful of keys is several times cheaper than the generic sort's setup.
 */
function sortKeys(keys: string[]): string[] {
  const n = keys.length;
  if (n > 16) return keys.sort();
  for (let i = 1; i < n; i++) {
    const k = keys[i] as string;
    let j = i - 1;
    while (j >= 0 && (keys[j] as string) > k) {
      keys[j + 1] = keys[j] as string;
      j--;
    }
    keys[j + 1] = k;
  }
  return keys;
}

// Escaped keys recur constantly (every entry has the same few field names), so remember them.
// Bounded, so hostile input with endless distinct keys cannot grow it without limit.
const KEY_CACHE_LIMIT = 4096;
const keyCache = new Map<string, string>();

function quoteKey(key: string): string {
  let q = keyCache.get(key);
  if (q === undefined) {
    q = quoteString(key);
    if (keyCache.size < KEY_CACHE_LIMIT) keyCache.set(key, q);
  }
  return q;
}

function serializeObject(obj: Record<string, unknown>, depth: number): string {
  const keys = sortKeys(Object.keys(obj));
  let out = '{';
  let first = true;
  let key = '';
  try {
    for (let i = 0; i < keys.length; i++) {
      key = keys[i] as string;
      const v = obj[key];
      // Like JSON.stringify: an absent optional property and an undefined one mean the same.
      if (v === undefined) continue;
      if (first) first = false;
      else out += ',';
      out += quoteKey(key);
      out += ':';
      out += serialize(v, depth);
    }
  } catch (err) {
    if (err instanceof CanonicalJsonError) err.prependPath(key);
    throw err;
  }
  return out + '}';
}
