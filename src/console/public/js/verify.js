// Checks an auditor can make in the browser, with the formulas of DESIGN.md and WebCrypto:
// the entry's leaf hash (RFC 8785 JCS) and its RFC 6962/9162 inclusion proof up to a root.

const ENTRY_FIELDS = ['seq', 'ts', 'kind', 'actor', 'subject', 'data', 'policyVersion'];

/** RFC 8785: sorted keys (UTF-16 code units), ECMAScript number and string serialization. */
export function jcs(v) {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error('JCS cannot encode a non-finite number');
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map(jcs).join(',')}]`;
  if (typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${jcs(v[k])}`)
      .join(',')}}`;
  }
  throw new Error(`JCS cannot encode ${typeof v}`);
}

const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');
function unhex(s) {
  if (!/^[0-9a-f]*$/i.test(s) || s.length % 2) throw new Error(`not a hex string: ${s.slice(0, 16)}…`);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(i * 2, i * 2 + 2), 16);
  return out;
}

async function sha256(...parts) {
  const len = parts.reduce((n, p) => n + p.length, 0);
  const buf = new Uint8Array(len);
  let o = 0;
  for (const p of parts) (buf.set(p, o), (o += p.length));
  return new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
}

/** leaf = SHA-256(0x00 ‖ JCS(entry without leaf and chain)) */
export async function leafOf(entry) {
  const body = {};
  for (const k of ENTRY_FIELDS) body[k] = entry[k] ?? null;
  return hex(await sha256(new Uint8Array([0]), new TextEncoder().encode(jcs(body))));
}

/** RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or an error when it cannot. */
export async function rootFromInclusion(leafHex, index, size, path) {
  if (!(index >= 0 && index < size)) throw new Error(`index ${index} is outside a tree of size ${size}`);
  let fn = index;
  let sn = size - 1;
  let r = unhex(leafHex);
  const one = new Uint8Array([1]);
  for (const pHex of path) {
    const p = unhex(pHex);
    if (sn === 0) throw new Error('the proof is longer than the tree allows');
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(one, p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await sha256(one, r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error('the proof is shorter than the tree needs');
  return hex(r);
}

/** The Merkle root (hex) in a C2SP checkpoint note: origin, size, base64 root. */
export function checkpointRoot(note) {
  const lines = String(note).split('\n');
  const b64 = lines[2]?.trim();
  if (!b64) return null;
  try {
    return hex(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  } catch {
    return null;
  }
}

export function checkpointSize(note) {
  const n = Number(String(note).split('\n')[1]);
  return Number.isSafeInteger(n) ? n : null;
}
