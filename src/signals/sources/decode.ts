/**
 * A broker message → the body of a signal (what POST /v1/signals takes), or the reason it cannot
 * be one. CloudEvents 1.0 in structured mode (a JSON object with specversion, content type
 * application/cloudevents+json) or binary mode (attributes in the transport's headers, the data
 * as the body), or plain JSON picked apart by the source's `map`.
 */
import { CloudEvent, ValidationError } from 'cloudevents';
import type { SignalBody } from '../types';
import type { SignalSourceDoc } from './types';

export const DEFAULT_MAX_BYTES = 1024 * 1024;

/** REGENT_SIGNAL_MAX_BYTES, or 1 MiB. */
export function maxBytesFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.REGENT_SIGNAL_MAX_BYTES);
  return Number.isInteger(n) && n > 0 ? n : DEFAULT_MAX_BYTES;
}

export interface BrokerMessage {
  body: Buffer;
  /** The content type the transport carried (MQTT 5 content type, a NATS Content-Type header, AMQP contentType). */
  contentType?: string;
  /** CloudEvents attributes from the transport's headers (binary mode), prefixes removed, names lower-case. */
  attributes?: Record<string, string>;
}

/** What a refusal may say about the message: what it could read of id/type/source, and a short excerpt. */
export interface Refusal {
  reason: string;
  id: string | null;
  type: string | null;
  source: string | null;
  bytes: number;
  excerpt: string | null;
}

export type Decoded = { ok: true; body: SignalBody } | ({ ok: false } & Refusal);

const EXCERPT = 200;

/** At most 200 characters of the message, control characters shown as U+FFFD; never the whole of a big payload. */
export function excerptOf(buf: Buffer): string {
  return buf.subarray(0, EXCERPT * 4).toString('utf8').slice(0, EXCERPT).replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '\ufffd');
}

const text = (v: unknown): string | null => (typeof v === 'string' ? v.slice(0, 200) : null);

function refusal(msg: BrokerMessage, reason: string, seen: { id?: unknown; type?: unknown; source?: unknown } = {}, withExcerpt = true): Decoded {
  return { ok: false, reason, id: text(seen.id), type: text(seen.type), source: text(seen.source), bytes: msg.body.length, excerpt: withExcerpt ? excerptOf(msg.body) : null };
}

function parseJson(buf: Buffer): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, value: JSON.parse(buf.toString('utf8')) };
  } catch (e) {
    return { ok: false, reason: `not valid JSON: ${(e as Error).message.slice(0, 200)}` };
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A CloudEvent's attributes and data → a signal body; `mode` says which content mode it came in, for messages. */
export function cloudEventToSignal(ce: Record<string, unknown>, mode: 'structured' | 'binary'): { ok: true; body: SignalBody } | { ok: false; reason: string } {
  const missing = ['specversion', 'id', 'type', 'source'].filter((k) => ce[k] === undefined || ce[k] === null || ce[k] === '');
  if (missing.length) return { ok: false, reason: `not a CloudEvent (${mode} mode): no ${missing.join(', ')}` };
  if (ce.specversion !== '1.0') return { ok: false, reason: `CloudEvents specversion ${JSON.stringify(ce.specversion).slice(0, 40)} is not supported (1.0 is)` };
  if (ce.data_base64 !== undefined) return { ok: false, reason: 'data_base64 is not supported: a signal carries a JSON object as its data' };
  try {
    // The SDK checks the attributes against the CloudEvents 1.0 schema (its own id and time
    // defaults never apply: both are present, or time is left out on purpose).
    new CloudEvent(ce as never, true);
  } catch (e) {
    const detail = e instanceof ValidationError ? JSON.stringify(e.errors ?? e.message).slice(0, 300) : (e as Error).message;
    return { ok: false, reason: `not a valid CloudEvent 1.0: ${detail}` };
  }
  const data = ce.data === undefined || ce.data === null ? {} : ce.data;
  if (!isObject(data)) return { ok: false, reason: 'the CloudEvent data is not a JSON object (a signal payload is one)' };
  const body: SignalBody = { id: String(ce.id), type: String(ce.type), source: String(ce.source), payload: data };
  if (ce.time !== undefined) body.occurredAt = String(ce.time);
  return { ok: true, body };
}

const isCloudEventsJson = (ct: string | undefined) => !!ct && /^application\/cloudevents\+json\b/i.test(ct.trim());

function pick(root: unknown, spec: string): unknown {
  if (!spec.startsWith('$')) return spec;
  let v: unknown = root;
  for (const k of spec.split('.').slice(1)) v = isObject(v) ? v[k] : undefined;
  return v;
}

/** Decodes one message for `source`; `maxBytes` caps its size. */
export function decodeMessage(msg: BrokerMessage, source: Pick<SignalSourceDoc, 'id' | 'format' | 'map'>, maxBytes: number): Decoded {
  if (msg.body.length > maxBytes) return refusal(msg, `message of ${msg.body.length} bytes is over the limit of ${maxBytes} bytes`, msg.attributes ?? {});
  const attrs = msg.attributes;
  if (attrs && attrs.specversion !== undefined) {
    // Binary mode: the attributes are headers, the body is the data (JSON).
    let data: unknown = undefined;
    if (msg.body.length) {
      const ct = attrs.datacontenttype ?? msg.contentType;
      if (ct && !/json/i.test(ct)) return refusal(msg, `the CloudEvent data is ${ct.slice(0, 100)}, not JSON`, attrs);
      const p = parseJson(msg.body);
      if (!p.ok) return refusal(msg, `the CloudEvent data is ${p.reason}`, attrs);
      data = p.value;
    }
    const r = cloudEventToSignal({ ...attrs, ...(data !== undefined ? { data } : {}) }, 'binary');
    return r.ok ? r : refusal(msg, r.reason, attrs);
  }
  const p = parseJson(msg.body);
  if (!p.ok) return refusal(msg, p.reason);
  const v = p.value;
  if (source.format === 'cloudevents' || isCloudEventsJson(msg.contentType)) {
    if (!isObject(v)) return refusal(msg, 'a structured CloudEvent is a JSON object');
    const r = cloudEventToSignal(v, 'structured');
    return r.ok ? r : refusal(msg, r.reason, v);
  }
  const map = source.map!;
  const id = pick(v, map.id);
  const type = pick(v, map.type);
  const from = map.source ? pick(v, map.source) : source.id;
  const time = map.time ? pick(v, map.time) : undefined;
  const data = pick(v, map.data);
  const seen = { id, type, source: from };
  const absent = [
    ['id', id, map.id],
    ['type', type, map.type],
    ['source', from, map.source],
  ].filter(([, x]) => typeof x !== 'string' && typeof x !== 'number');
  if (absent.length) return refusal(msg, `the message has no ${absent.map(([k, , at]) => `${k} (map.${k}: ${at})`).join(', ')}`, seen);
  if (!isObject(data)) return refusal(msg, `map.data (${map.data}) is not a JSON object in this message`, seen);
  const body: SignalBody = { id: String(id), type: String(type), source: String(from), payload: data };
  if (time !== undefined && time !== null) body.occurredAt = String(time);
  return { ok: true, body };
}
