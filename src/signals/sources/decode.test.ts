import { decodeMessage, excerptOf } from './decode';

const CE = { format: 'cloudevents' as const, id: 'plant-mqtt' };
const JSON_SOURCE = { format: 'json' as const, id: 'plant-json', map: { id: '$.eventId', type: 'machine.failure_predicted', time: '$.at', data: '$.reading' } };
const buf = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
const event = { specversion: '1.0', id: 'e-1', type: 'machine.failure_predicted', source: '/plant/berlin', time: '2026-11-20T06:00:00Z', data: { asset: 'press-7' } };

describe('decoding broker messages into signals', () => {
  it('reads a structured CloudEvent', () => {
    expect(decodeMessage({ body: buf(event), contentType: 'application/cloudevents+json' }, CE, 1 << 20)).toEqual({
      ok: true,
      body: { id: 'e-1', type: 'machine.failure_predicted', source: '/plant/berlin', occurredAt: '2026-11-20T06:00:00Z', payload: { asset: 'press-7' } },
    });
  });

  it('reads a binary-mode CloudEvent (attributes from headers, the body is the data), whatever the source format', () => {
    const { data, ...attrs } = event;
    for (const source of [CE, JSON_SOURCE]) {
      expect(decodeMessage({ body: buf(data), contentType: 'application/json', attributes: attrs }, source, 1 << 20)).toMatchObject({
        ok: true,
        body: { id: 'e-1', source: '/plant/berlin', payload: { asset: 'press-7' } },
      });
    }
  });

  it('maps plain JSON by the source map', () => {
    expect(decodeMessage({ body: buf({ eventId: 'x-9', at: '2026-11-20T06:00:00Z', reading: { asset: 'pump-3' } }) }, JSON_SOURCE, 1 << 20)).toEqual({
      ok: true,
      body: { id: 'x-9', type: 'machine.failure_predicted', source: 'plant-json', occurredAt: '2026-11-20T06:00:00Z', payload: { asset: 'pump-3' } },
    });
  });

  it('refuses what cannot be a signal, with a reason and a short excerpt', () => {
    const { id: _id, ...noId } = event;
    const { type: _type, ...noType } = event;
    const cases: [Buffer, string | undefined, RegExp][] = [
      [buf(noId), undefined, /no id/],
      [buf(noType), undefined, /no type/],
      [buf({ ...event, specversion: '0.3' }), undefined, /specversion "0.3" is not supported/],
      [buf({ ...event, data: [1, 2] }), undefined, /data is not a JSON object/],
      [buf({ ...event, time: 'yesterday' }), undefined, /not a valid CloudEvent 1.0/],
      [buf('{"id": '), undefined, /not valid JSON/],
      [buf([event]), undefined, /structured CloudEvent is a JSON object/],
    ];
    for (const [body, contentType, reason] of cases) {
      const r = decodeMessage({ body, ...(contentType ? { contentType } : {}) }, CE, 1 << 20);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(reason);
    }
    const noIdMapped = decodeMessage({ body: buf({ reading: {} }) }, JSON_SOURCE, 1 << 20);
    expect(noIdMapped).toMatchObject({ ok: false, reason: 'the message has no id (map.id: $.eventId)' });
  });

  it('refuses a message over the size cap without parsing it, keeping only an excerpt', () => {
    const big = Buffer.alloc(10 * 1024 * 1024, 'a');
    const r = decodeMessage({ body: big }, CE, 1 << 20);
    expect(r).toEqual({ ok: false, reason: 'message of 10485760 bytes is over the limit of 1048576 bytes', id: null, type: null, source: null, bytes: 10485760, excerpt: 'a'.repeat(200) });
    expect(excerptOf(Buffer.from('a\u0000b\nc'))).toBe('a\ufffdb\nc');
  });
});
