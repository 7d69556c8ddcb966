import { addDuration, localTime, parseDuration, parseInstant, periodWindow, tzOffset, zonedTimeToUtc } from './time';

const HOUR = 3_600_000;

describe('calendar periods in the document time zone', () => {
  it('name the window containing an instant with a stable key', () => {
    const at = '2026-11-10T10:00:00+01:00';
    expect(periodWindow('day', at, 'Europe/Berlin').key).toBe('day:2026-11-10');
    expect(periodWindow('week', at, 'Europe/Berlin').key).toBe('week:2026-W46');
    expect(periodWindow('month', at, 'Europe/Berlin').key).toBe('month:2026-11');
    expect(periodWindow('quarter', at, 'Europe/Berlin').key).toBe('quarter:2026-Q4');
    expect(periodWindow('year', at, 'Europe/Berlin').key).toBe('year:2026');
  });

  it('start at local midnight, not UTC midnight', () => {
    const w = periodWindow('month', '2026-11-10T10:00:00Z', 'Europe/Berlin');
    expect(w.start).toBe('2026-10-31T23:00:00.000Z');
    expect(w.end).toBe('2026-11-30T23:00:00.000Z');
    // 23:30 UTC on the 30th is already December in Berlin.
    expect(periodWindow('month', '2026-11-30T23:30:00Z', 'Europe/Berlin').key).toBe('month:2026-12');
    expect(periodWindow('month', '2026-11-30T22:59:59.999Z', 'Europe/Berlin').key).toBe('month:2026-11');
    expect(periodWindow('month', '2026-11-30T23:00:00Z', 'Europe/Berlin').key).toBe('month:2026-12');
    expect(periodWindow('day', '2026-11-30T23:30:00Z', 'America/New_York').key).toBe('day:2026-11-30');
  });

  it('last 23 hours on the spring daylight-saving day in Berlin (2026-03-29)', () => {
    const w = periodWindow('day', '2026-03-29T12:00:00Z', 'Europe/Berlin');
    expect(w.start).toBe('2026-03-28T23:00:00.000Z'); // 00:00 CET
    expect(w.end).toBe('2026-03-29T22:00:00.000Z'); // 00:00 CEST
    expect(w.endMs - w.startMs).toBe(23 * HOUR);
  });

  it('last 25 hours on the autumn daylight-saving day in Berlin (2026-10-25)', () => {
    const w = periodWindow('day', '2026-10-25T12:00:00Z', 'Europe/Berlin');
    expect(w.start).toBe('2026-10-24T22:00:00.000Z'); // 00:00 CEST
    expect(w.end).toBe('2026-10-25T23:00:00.000Z'); // 00:00 CET
    expect(w.endMs - w.startMs).toBe(25 * HOUR);
  });

  it('switch months and weeks exactly at local midnight across a DST change', () => {
    const march = periodWindow('month', '2026-03-15T12:00:00Z', 'Europe/Berlin');
    expect(march.start).toBe('2026-02-28T23:00:00.000Z');
    expect(march.end).toBe('2026-03-31T22:00:00.000Z');
    const weekOfSpringChange = periodWindow('week', '2026-03-29T12:00:00Z', 'Europe/Berlin');
    expect(weekOfSpringChange.key).toBe('week:2026-W13');
    expect(weekOfSpringChange.start).toBe('2026-03-22T23:00:00.000Z'); // Monday 23 March, CET
    expect(weekOfSpringChange.end).toBe('2026-03-29T22:00:00.000Z'); // Monday 30 March, CEST
    expect(periodWindow('week', '2026-03-29T21:59:59Z', 'Europe/Berlin').key).toBe('week:2026-W13');
    expect(periodWindow('week', '2026-03-29T22:00:00Z', 'Europe/Berlin').key).toBe('week:2026-W14');
    const october = periodWindow('month', '2026-10-25T12:00:00Z', 'Europe/Berlin');
    expect(october.end).toBe('2026-10-31T23:00:00.000Z');
    expect(periodWindow('quarter', '2026-12-31T22:59:00Z', 'Europe/Berlin').key).toBe('quarter:2026-Q4');
    expect(periodWindow('quarter', '2026-12-31T23:00:00Z', 'Europe/Berlin').key).toBe('quarter:2027-Q1');
  });

  it('number ISO weeks by the year of their Thursday', () => {
    expect(periodWindow('week', '2026-12-31T12:00:00Z', 'UTC').key).toBe('week:2026-W53');
    expect(periodWindow('week', '2027-01-03T12:00:00Z', 'UTC').key).toBe('week:2026-W53');
    expect(periodWindow('week', '2027-01-04T12:00:00Z', 'UTC').key).toBe('week:2027-W01');
    expect(periodWindow('week', '2025-12-29T12:00:00Z', 'UTC').key).toBe('week:2026-W01');
  });

  it('are the same whether served from the cache or computed afresh', () => {
    const instants = ['2026-03-29T00:30:00Z', '2026-03-01T00:00:00Z', '2026-10-25T00:59:00Z', '2026-10-25T01:00:00Z'];
    for (const at of instants) {
      const first = periodWindow('day', at, 'Europe/Berlin');
      periodWindow('day', '2030-01-01T00:00:00Z', 'Europe/Berlin');
      expect(periodWindow('day', at, 'Europe/Berlin')).toEqual(first);
    }
  });
});

describe('wall-clock time in a zone', () => {
  it('follows the zone offset across DST', () => {
    expect(tzOffset(Date.parse('2026-03-29T00:59:59Z'), 'Europe/Berlin')).toBe(1 * HOUR);
    expect(tzOffset(Date.parse('2026-03-29T01:00:00Z'), 'Europe/Berlin')).toBe(2 * HOUR);
    expect(tzOffset(Date.parse('2026-10-25T00:59:59Z'), 'Europe/Berlin')).toBe(2 * HOUR);
    expect(tzOffset(Date.parse('2026-10-25T01:00:00Z'), 'Europe/Berlin')).toBe(1 * HOUR);
    expect(tzOffset(Date.parse('2026-06-01T00:00:00Z'), 'Asia/Kathmandu')).toBe(5.75 * HOUR);
  });

  it('gives weekday and minute of day', () => {
    expect(localTime(Date.parse('2026-11-14T09:00:00Z'), 'Europe/Berlin')).toEqual({ weekday: 5, minute: 600 });
    expect(localTime(Date.parse('2026-11-15T23:30:00Z'), 'Europe/Berlin')).toEqual({ weekday: 0, minute: 30 });
  });

  it('maps local times to instants, moving skipped times forward', () => {
    expect(new Date(zonedTimeToUtc(2026, 3, 29, 0, 0, 'Europe/Berlin')).toISOString()).toBe('2026-03-28T23:00:00.000Z');
    expect(new Date(zonedTimeToUtc(2026, 3, 29, 3, 0, 'Europe/Berlin')).toISOString()).toBe('2026-03-29T01:00:00.000Z');
    expect(new Date(zonedTimeToUtc(2026, 3, 29, 2, 30, 'Europe/Berlin')).toISOString()).toBe('2026-03-29T01:30:00.000Z');
  });
});

describe('timestamps and durations', () => {
  it('accept RFC 3339 with a zone and agree with Date.parse', () => {
    for (const t of ['2026-11-10T10:00:00+01:00', '2026-11-10T10:00:00Z', '2026-11-10T10:00:00.250-05:30', '2024-02-29T00:00:00Z']) {
      expect(parseInstant(t)).toBe(Date.parse(t));
    }
  });

  it('refuse impossible dates and timestamps without a zone', () => {
    for (const t of ['2026-02-30T00:00:00Z', '2026-13-01T00:00:00Z', '2026-11-10T24:00:00Z', '2026-11-10T10:00:00', '2026-11-10', 'tomorrow', '2026-11-10T10:00:00+1:00']) {
      expect(parseInstant(t)).toBeNaN();
    }
  });

  it('parse ISO 8601 durations and add them', () => {
    const at = Date.parse('2026-01-31T10:00:00Z');
    expect(new Date(addDuration(at, parseDuration('PT48H')!)).toISOString()).toBe('2026-02-02T10:00:00.000Z');
    expect(new Date(addDuration(at, parseDuration('P1W2DT30M')!)).toISOString()).toBe('2026-02-09T10:30:00.000Z');
    expect(new Date(addDuration(at, parseDuration('P1Y')!)).toISOString()).toBe('2027-01-31T10:00:00.000Z');
    expect(parseDuration('P')).toBeNull();
    expect(parseDuration('PT')).toBeNull();
    expect(parseDuration('48h')).toBeNull();
  });
});
