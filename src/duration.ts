// systemd time spans ("500ms", "5s", "2min", "1min 30s", "1.5h"; a bare number is seconds),
// as documented in systemd.time(7). Returns milliseconds.

const MONTH_MS = 2_629_800_000; // systemd's month: 30.44 days
const YEAR_MS = 31_557_600_000; // systemd's year: 365.25 days

const UNIT_MS: Record<string, number> = {
  us: 0.001,
  usec: 0.001,
  µs: 0.001, // U+00B5 MICRO SIGN
  μs: 0.001, // U+03BC GREEK SMALL LETTER MU: systemd takes both
  ms: 1,
  msec: 1,
  s: 1000,
  sec: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 604_800_000,
  week: 604_800_000,
  weeks: 604_800_000,
  M: MONTH_MS,
  month: MONTH_MS,
  months: MONTH_MS,
  y: YEAR_MS,
  year: YEAR_MS,
  years: YEAR_MS,
};

// systemd's grammar (parse_time in time-util.c): parts of a number (strtoll, so an optional "+"), optional
// whitespace, an optional unit (none means seconds, in any part: "1min 30" is 90s), parts separated by optional
// whitespace. Its whitespace is space, tab, CR and LF.
const NUMBER = /\+?(\d+(?:\.\d+)?|\.\d+)/y;
const UNIT = /[ \t\r\n]*([a-zA-Zµμ]*)[ \t\r\n]*/y;

/** A unit's size. systemd matches units case-sensitively ("M" is a month, "m" a minute); other cases are forgiven. */
function unitMs(unit: string): number | undefined {
  if (unit === '') return 1000;
  return Object.hasOwn(UNIT_MS, unit)
    ? UNIT_MS[unit]
    : Object.hasOwn(UNIT_MS, unit.toLowerCase())
      ? UNIT_MS[unit.toLowerCase()]
      : undefined;
}

/** Parses a systemd time span into milliseconds; returns undefined when the text is not one. */
export function parseSpan(text: string): number | undefined {
  const input = text.trim();
  if (input === '') return undefined;
  let total = 0;
  let pos = 0;
  while (pos < input.length) {
    NUMBER.lastIndex = pos;
    const number = NUMBER.exec(input);
    if (!number) return undefined;
    UNIT.lastIndex = NUMBER.lastIndex;
    const unit = unitMs(UNIT.exec(input)![1]!);
    if (unit === undefined) return undefined;
    total += Number(number[1]) * unit;
    pos = UNIT.lastIndex;
  }
  return Math.round(total);
}

/** Renders milliseconds the way systemd would print a span ("1min 30s", "500ms"). */
export function formatSpan(ms: number): string {
  if (ms === 0) return '0';
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['min', 60_000],
    ['s', 1000],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0) parts.push(`${rest}ms`);
  return parts.join(' ');
}
