// systemd time spans ("500ms", "5s", "2min", "1min 30s", "1.5h"; a bare number is seconds),
// as documented in systemd.time(7). Returns milliseconds.

const UNIT_MS: Record<string, number> = {
  us: 0.001,
  usec: 0.001,
  µs: 0.001,
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
};

const PART = /(\d+(?:\.\d+)?|\.\d+)\s*([a-zµ]*)/giy;

/** Parses a systemd time span into milliseconds; returns undefined when the text is not one. */
export function parseSpan(text: string): number | undefined {
  const input = text.trim();
  if (input === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(input)) return Number(input) * 1000;
  let total = 0;
  let pos = 0;
  while (pos < input.length) {
    while (input[pos] === ' ') pos++;
    if (pos >= input.length) break;
    PART.lastIndex = pos;
    const m = PART.exec(input);
    if (!m || m[2] === '') return undefined; // every part of a compound span needs a unit
    const unit = UNIT_MS[m[2]!.toLowerCase()];
    if (unit === undefined) return undefined;
    total += Number(m[1]) * unit;
    pos = PART.lastIndex;
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
