// The /v1 API with the signed-in person's key. The key lives in sessionStorage only: it is gone
// when the tab closes, and never sent anywhere but this origin.

const STORAGE_KEY = 'regent.apiKey';

export function getKey() {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

export function setKey(key) {
  sessionStorage.setItem(STORAGE_KEY, key);
}

export function clearKey() {
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    /* storage disabled: nothing to clear */
  }
}

/** An answer that is not 2xx: the problem+json fields when the server sent them. */
export class ApiError extends Error {
  constructor(status, problem, method, path) {
    const detail =
      problem?.detail || problem?.title || (status === 0 ? 'cannot reach the Regent server; check your connection' : `HTTP ${status}`);
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.title = problem?.title || (status === 0 ? 'Network error' : `Error ${status}`);
    this.detail = detail;
    this.errorId = problem?.errorId;
    this.requestId = problem?.requestId;
    this.field = problem?.field;
    this.method = method;
    this.path = path;
  }
}

/** A route that this server does not have (yet): 404 whose problem names no such route. */
export const isMissingRoute = (err) =>
  err instanceof ApiError && (err.status === 404 || err.status === 405) && /no route for/i.test(err.detail ?? '');

async function problemOf(res) {
  const text = await res.text().catch(() => '');
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text.slice(0, 300) };
  }
}

async function send(method, path, body, opts = {}) {
  const headers = { accept: 'application/json, application/problem+json' };
  const key = opts.key ?? getKey();
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: opts.signal,
      cache: 'no-store',
    });
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    throw new ApiError(0, null, method, path);
  }
  if (!res.ok) {
    const err = new ApiError(res.status, await problemOf(res), method, path);
    // A key that stopped working (revoked, say) signs the person out, with the reason.
    if (res.status === 401 && !opts.key) window.dispatchEvent(new CustomEvent('regent:unauthenticated', { detail: err }));
    throw err;
  }
  return res;
}

/** JSON in, JSON out. Throws ApiError for anything but 2xx. */
export async function api(method, path, body, opts) {
  const res = await send(method, path, body, opts);
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body, opts) => api('POST', path, body ?? {}, opts);
export const put = (path, body, opts) => api('PUT', path, body, opts);
export const del = (path, opts) => api('DELETE', path, undefined, opts);

/** Query string from an object, leaving out empty values. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

/**
 * Downloads an authenticated response as a file: fetch with the bearer header, then a blob URL,
 * since a plain link could not carry the key.
 */
export async function download(path, fallbackName) {
  const res = await send('GET', path, undefined, {});
  const blob = await res.blob();
  const cd = res.headers.get('content-disposition') ?? '';
  const m = /filename\*=UTF-8''([^;]+)|filename="?([^";]+)"?/i.exec(cd);
  const name = m ? decodeURIComponent(m[1] ?? m[2]) : fallbackName;
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return { name, size: blob.size, type: blob.type };
}

/** Path segment, escaped. */
export const seg = (s) => encodeURIComponent(String(s));
