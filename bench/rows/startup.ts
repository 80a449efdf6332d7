// Start-up: wall time of `sdwrap -- true` against `node -e 0` and `true`, spawned one after another, N times,
// by lib/timer.py, which also reads each child's CPU time from wait4(): on a busy machine the CPU figures
// move less than the wall times, so they are kept beside them.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { benchEnv, REPO_ROOT, SDWRAP_BIN } from '../lib/spawn.js';
import { type BenchOptions, type Row } from '../lib/row.js';
import { max, median, min, round } from '../lib/stats.js';

const TIMER = fileURLToPath(new URL('../lib/timer.py', import.meta.url));

export interface Variant {
  name: string;
  argv: string[];
}

export interface Sample {
  wall_ms: number;
  cpu_ms: number;
  maxrss_kib: number;
  status: number;
}

export const STARTUP_VARIANTS: Variant[] = [
  { name: 'sdwrap -- true', argv: [process.execPath, SDWRAP_BIN, '--', 'true'] },
  { name: 'node -e 0', argv: [process.execPath, '-e', '0'] },
  { name: 'true', argv: ['true'] },
];

/** Runs each variant `runs` times, interleaved, after one warm-up run each. */
export function timeVariants(variants: Variant[], runs: number): Record<string, Sample[]> {
  const spec = { runs, warmup: 1, variants: variants.map((v) => ({ ...v, cwd: REPO_ROOT })) };
  const out = execFileSync('python3', [TIMER, JSON.stringify(spec)], {
    encoding: 'utf8',
    env: benchEnv(),
    timeout: 5 * 60_000,
    maxBuffer: 1 << 26,
  });
  const res = JSON.parse(out) as Record<string, Sample[]>;
  for (const [name, xs] of Object.entries(res)) {
    const bad = xs.find((x) => x.status !== 0);
    if (bad) throw new Error(`${name} exited with status ${bad.status}`);
  }
  return res;
}

export async function startupRow({ quick, say }: BenchOptions): Promise<Row> {
  const runs = quick ? 5 : 20;
  say(`start-up: ${runs} runs each of ${STARTUP_VARIANTS.map((v) => v.name).join(', ')}`);
  const samples = timeVariants(STARTUP_VARIANTS, runs);
  const wall = (name: string) => median(samples[name]!.map((s) => s.wall_ms));
  const cpu = (name: string) => median(samples[name]!.map((s) => s.cpu_ms));
  const sd = wall('sdwrap -- true');
  const node = wall('node -e 0');
  const ratio = sd / node;
  const cpuRatio = cpu('sdwrap -- true') / cpu('node -e 0');
  return {
    id: 'startup',
    name: 'Start-up overhead: wall time of `sdwrap -- true`',
    unit: 'ms',
    sdwrap: round(sd, 1),
    baselines: [
      { name: 'node -e 0', value: round(node, 1) },
      { name: 'true', value: round(wall('true'), 1) },
    ],
    ratio: round(ratio, 2),
    target: '≤ 1.5x node -e 0',
    pass: ratio <= 1.5,
    notes: [
      `median of ${runs} spawns each, interleaved; sdwrap - node -e 0 = ${round(sd - node, 1)} ms wall; ` +
        `CPU (user+sys, wait4): sdwrap ${round(cpu('sdwrap -- true'), 1)} ms, node -e 0 ${round(cpu('node -e 0'), 1)} ms = ${round(cpuRatio, 2)}x`,
    ],
    detail: Object.fromEntries(
      Object.entries(samples).map(([k, xs]) => {
        const w = xs.map((x) => x.wall_ms);
        return [
          k,
          {
            wallMedian: round(median(w), 2),
            wallMin: round(min(w), 2),
            wallMax: round(max(w), 2),
            cpuMedian: round(median(xs.map((x) => x.cpu_ms)), 2),
            maxRssKiB: median(xs.map((x) => x.maxrss_kib)),
            wallSamples: w.map((x) => round(x, 2)),
          },
        ];
      }),
    ),
  };
}
