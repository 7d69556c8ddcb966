/**
 * Calendar arithmetic in an IANA time zone using only Intl (no tz database dependency).
 * Offsets are cached per 15-minute UTC bucket: every modern tz transition falls on a multiple of
 * 15 minutes UTC, so the offset is constant inside a bucket and a hot decision path pays for
 * Intl only once per bucket.
 */
export const PERIODS = ['day', 'week', 'month', 'quarter', 'year'] as const;
export type Period = (typeof PERIODS)[number];

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

const MINUTE = 60_000;
const DAY = 86_400_000;
const BUCKET = 15 * MINUTE;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(tz, f);
  }
  return f;
}

export function isValidTimeZone(tz: string): boolean {
  try {
    formatter(tz);
    return true;
  } catch {
    return false;
  }
}

const offsetCache = new Map<string, Map<number, number>>();

/** Offset (local − UTC) in ms of `tz` at the UTC instant `utcMs`. */
export function tzOffset(utcMs: number, tz: string): number {
  const bucket = Math.floor(utcMs / BUCKET);
  let byBucket = offsetCache.get(tz);
  if (!byBucket) offsetCache.set(tz, (byBucket = new Map()));
  const cached = byBucket.get(bucket);
  if (cached !== undefined) return cached;
  const at = bucket * BUCKET;
  const p: Record<string, number> = {};
  for (const part of formatter(tz).formatToParts(new Date(at))) {
    if (part.type !== 'literal') p[part.type] = Number(part.value);
  }
  const local = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
  const offset = local - at;
  if (byBucket.size > 4096) byBucket.clear(); // bounded: decisions cluster around "now"
  byBucket.set(bucket, offset);
  return offset;
}

/** The UTC instant at which the wall clock in `tz` shows the given local time. A wall time
 *  skipped by a DST jump is moved forward by the jump (02:30 → 03:30); one that occurs twice
 *  resolves to the later occurrence. Period windows start at midnight, where neither happens in
 *  most zones. */
export function zonedTimeToUtc(year: number, month: number, day: number, hour: number, minute: number, tz: string): number {
  const local = Date.UTC(year, month - 1, day, hour, minute);
  const first = local - tzOffset(local - tzOffset(local, tz), tz);
  const second = local - tzOffset(first, tz);
  return Math.max(first, second);
}

export interface LocalTime {
  /** 0 = Monday … 6 = Sunday */
  weekday: number;
  /** minutes since local midnight */
  minute: number;
}

/** Weekday and minute of day in `tz`, without allocating. */
export function localTime(utcMs: number, tz: string): LocalTime {
  const local = utcMs + tzOffset(utcMs, tz);
  const days = Math.floor(local / DAY);
  // 1970-01-01 was a Thursday (index 3 when Monday is 0).
  const weekday = (((days + 3) % 7) + 7) % 7;
  return { weekday, minute: Math.floor((local - days * DAY) / MINUTE) };
}

export interface PeriodWindow {
  period: Period;
  /** Stable name of the calendar window, e.g. "month:2026-11", "week:2026-W13". */
  key: string;
  tz: string;
  /** Inclusive start and exclusive end, RFC 3339 UTC. */
  start: string;
  end: string;
  startMs: number;
  endMs: number;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

function computeWindow(period: Period, atMs: number, tz: string): PeriodWindow {
  const local = new Date(atMs + tzOffset(atMs, tz));
  const y = local.getUTCFullYear();
  const m = local.getUTCMonth() + 1;
  const d = local.getUTCDate();
  let from: [number, number, number];
  let to: [number, number, number];
  let key: string;
  switch (period) {
    case 'day':
      from = [y, m, d];
      to = [y, m, d + 1];
      key = `day:${y}-${pad(m)}-${pad(d)}`;
      break;
    case 'week': {
      const isoWeekday = ((local.getUTCDay() + 6) % 7) + 1; // Monday 1 … Sunday 7
      from = [y, m, d - isoWeekday + 1];
      to = [y, m, d - isoWeekday + 8];
      // ISO week-numbering: the week belongs to the year of its Thursday.
      const thursday = new Date(Date.UTC(y, m - 1, d - isoWeekday + 4));
      const weekYear = thursday.getUTCFullYear();
      const week = Math.floor((thursday.getTime() - Date.UTC(weekYear, 0, 1)) / (7 * DAY)) + 1;
      key = `week:${weekYear}-W${pad(week)}`;
      break;
    }
    case 'month':
      from = [y, m, 1];
      to = [y, m + 1, 1];
      key = `month:${y}-${pad(m)}`;
      break;
    case 'quarter': {
      const q = Math.floor((m - 1) / 3);
      from = [y, q * 3 + 1, 1];
      to = [y, q * 3 + 4, 1];
      key = `quarter:${y}-Q${q + 1}`;
      break;
    }
    case 'year':
      from = [y, 1, 1];
      to = [y + 1, 1, 1];
      key = `year:${y}`;
      break;
  }
  // Date.UTC normalises overflowing days and months (Dec 32 → Jan 1) before the tz conversion.
  const norm = ([yy, mm, dd]: [number, number, number]) => {
    const n = new Date(Date.UTC(yy, mm - 1, dd));
    return zonedTimeToUtc(n.getUTCFullYear(), n.getUTCMonth() + 1, n.getUTCDate(), 0, 0, tz);
  };
  const startMs = norm(from);
  const endMs = norm(to);
  return { period, key, tz, start: new Date(startMs).toISOString(), end: new Date(endMs).toISOString(), startMs, endMs };
}

const windowCache = new Map<string, PeriodWindow>();

/** The calendar window of `period` containing `at`, in the time zone `tz` (midnight to midnight
 *  local time, so a day across a DST change lasts 23 or 25 hours). */
export function periodWindow(period: Period, at: Date | string | number, tz: string): PeriodWindow {
  const atMs = typeof at === 'number' ? at : typeof at === 'string' ? Date.parse(at) : at.getTime();
  if (!Number.isFinite(atMs)) throw new RangeError(`invalid instant: ${String(at)}`);
  const cacheKey = tz + '\u0000' + period;
  const cached = windowCache.get(cacheKey);
  if (cached && atMs >= cached.startMs && atMs < cached.endMs) return cached;
  const window = computeWindow(period, atMs, tz);
  if (windowCache.size > 1024) windowCache.clear();
  windowCache.set(cacheKey, window);
  return window;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Two or four ASCII digits at `i` as a number, or -1. */
function digits(text: string, i: number, n: 2 | 4): number {
  let v = 0;
  for (let k = i; k < i + n; k++) {
    const c = text.charCodeAt(k) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/**
 * Epoch ms of an RFC 3339 timestamp with a zone ("2026-11-10T10:00:00+01:00", "…Z",
 * fractions allowed), or NaN. Stricter than Date.parse, which quietly rolls 2026-02-30 over
 * into March; scanned by hand because it runs on every decision.
 */
export function parseInstant(text: string): number {
  if (typeof text !== 'string' || text.length < 20) return NaN;
  const y = digits(text, 0, 4);
  const mo = digits(text, 5, 2);
  const d = digits(text, 8, 2);
  const h = digits(text, 11, 2);
  const mi = digits(text, 14, 2);
  const s = digits(text, 17, 2);
  const t = text[10];
  if (text[4] !== '-' || text[7] !== '-' || (t !== 'T' && t !== 't' && t !== ' ') || text[13] !== ':' || text[16] !== ':') return NaN;
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60) return NaN;
  let i = 19;
  let ms = 0;
  if (text[i] === '.') {
    let scale = 100;
    for (i++; i < text.length; i++) {
      const c = text.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      ms += c * scale;
      scale /= 10;
    }
    if (i === 20) return NaN;
    ms = Math.floor(ms);
  }
  let offset = 0;
  const z = text[i];
  if (z === 'Z' || z === 'z') {
    if (i + 1 !== text.length) return NaN;
  } else if (z === '+' || z === '-') {
    const oh = digits(text, i + 1, 2);
    const om = digits(text, i + 4, 2);
    if (i + 6 !== text.length || text[i + 3] !== ':' || oh < 0 || oh > 23 || om < 0 || om > 59) return NaN;
    offset = (z === '-' ? -1 : 1) * (oh * 60 + om) * MINUTE;
  } else return NaN;
  return daysFromCivil(y, mo, d) * DAY + h * 3_600_000 + mi * MINUTE + s * 1000 + ms - offset;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm); cheaper than Date.UTC. */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

export function isInstant(text: string): boolean {
  return Number.isFinite(parseInstant(text));
}

/** "HH:MM" (00:00–24:00) to minutes since midnight, or NaN. */
export function parseClock(text: string): number {
  const m = /^([01]\d|2[0-4]):([0-5]\d)$/.exec(text);
  if (!m) return NaN;
  const minutes = Number(m[1]) * 60 + Number(m[2]);
  return minutes > 24 * 60 ? NaN : minutes;
}

export interface Duration {
  years: number;
  months: number;
  /** weeks, days, hours, minutes and seconds folded together */
  ms: number;
}

export const DURATION_PATTERN = /^P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/;

/** ISO 8601 duration such as "PT48H", "P2D", "P1M", or null. */
export function parseDuration(text: string): Duration | null {
  const m = DURATION_PATTERN.exec(text);
  if (!m) return null;
  const n = (i: number) => (m[i] ? Number(m[i]) : 0);
  return {
    years: n(1),
    months: n(2),
    ms: n(3) * 7 * DAY + n(4) * DAY + n(5) * 3_600_000 + n(6) * MINUTE + n(7) * 1000,
  };
}

/** `atMs` plus `d`; years and months move the UTC calendar date (Jan 31 + P1M = Mar 3 as in JS). */
export function addDuration(atMs: number, d: Duration): number {
  let ms = atMs;
  if (d.years || d.months) {
    const date = new Date(ms);
    date.setUTCMonth(date.getUTCMonth() + d.months + 12 * d.years);
    ms = date.getTime();
  }
  return ms + d.ms;
}
