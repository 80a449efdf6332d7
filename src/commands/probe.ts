// `sdwrap probe`: the configured probes, run once each in order (or kept at with --watch), with their
// verdicts printed. The same options, config file, probe code and health rules as a run; nothing is
// spawned and nothing is sent to systemd.
import { writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { systemClock } from '../clock.js';
import { buildConfig, type ProbeConfig } from '../config.js';
import { UsageError } from '../errors.js';
import { type HealthState, type ProbeResult } from '../health.js';
import { commandReference } from '../help.js';
import { ProbeLoop, runProbeOnce } from '../probe-loop.js';
import { createProbe, type Probe } from '../probes/probe.js';
import { commandProgram, readRunOptions } from '../program.js';
import { childEnv } from '../systemd-env.js';
import { planProbeTiming } from '../timing.js';

const REFERENCE = commandReference('probe');
/** Aborted when stdout's reader has gone (`sdwrap probe --watch | head`): --watch then ends. */
const outputGone = new AbortController();

interface Slot {
  /** 1-based, in the order given. */
  index: number;
  config: ProbeConfig;
  probe: Probe;
}

/** Where the threshold rules have a probe, as --watch shows it. */
type WatchState = 'starting' | 'healthy' | 'failing' | 'unhealthy';

/** One probe result as --json prints it. */
export interface ProbeRecord {
  probe: number;
  role: ProbeConfig['role'];
  kind: ProbeConfig['target']['kind'];
  /** As logs and STATUS= show it: no URL userinfo, no request header. */
  target: string;
  verdict: 'pass' | 'fail';
  ok: boolean;
  latencyMs: number;
  detail: string;
  /** --watch only. */
  time?: string;
  state?: WatchState;
  failures?: number;
  failureThreshold?: number;
  successes?: number;
  successThreshold?: number;
}

/** Runs `sdwrap probe` with the arguments after its name; resolves with the exit code. */
export async function run(argv: readonly string[]): Promise<number> {
  const program = commandProgram(REFERENCE, 'ignored: the app is not run');
  program.parse(argv as string[], { from: 'user' });
  const { json = false, watch = false } = program.opts<{ json?: boolean; watch?: boolean }>();
  const { options, command } = await readRunOptions(program);
  // The command is not run: only the options count, and they are checked as a run checks them.
  const config = buildConfig(options, command, isatty(2), { command: 'optional' });
  if (config.probes.length === 0) {
    throw new UsageError('no probe to run: give --http, --tcp, --exec, --ws, --probe, or a --config file with probes');
  }
  // Exec probes see the environment an app's would, less what belongs to sdwrap's talk with systemd.
  const env = childEnv(process.env);
  const slots: Slot[] = [];
  try {
    for (const [i, probeConfig] of config.probes.entries()) {
      slots.push({ index: i + 1, config: probeConfig, probe: await createProbe(probeConfig.target, env) });
    }
    const print = json ? printJson : tablePrinter(slots, watch);
    return watch ? await watchAll(slots, config.startPeriodMs, print) : await probeAll(slots, print);
  } finally {
    await Promise.all(slots.map((slot) => slot.probe.close()));
  }
}

/** Each probe once, one after another: 0 when all passed, 1 otherwise. */
async function probeAll(slots: readonly Slot[], print: (record: ProbeRecord) => void): Promise<number> {
  let failed = false;
  for (const slot of slots) {
    const result = await runProbeOnce(slot.probe, slot.config.timeoutMs, systemClock);
    failed ||= !result.ok;
    print(record(slot, result));
  }
  return failed ? 1 : 0;
}

/**
 * Every probe on its own schedule, as in a run, until SIGINT or SIGTERM: 0 when every probe is healthy
 * then, 1 otherwise. Unlike a run, a probe goes on after 'unhealthy', to show when it recovers.
 */
async function watchAll(slots: readonly Slot[], startPeriodMs: number, print: (record: ProbeRecord) => void): Promise<number> {
  const loops = slots.map((slot) => {
    const timing = planProbeTiming(slot.config, { startPeriodMs, stopTimeoutMs: 0 }, undefined);
    const policy = { ...slot.config, startPeriodMs };
    return new ProbeLoop(slot.probe, timing, policy, systemClock, false, (result, state) =>
      print({ ...record(slot, result), ...watchFields(slot.config, state) }),
    );
  });
  const stopped = new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      outputGone.signal.removeEventListener('abort', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    outputGone.signal.addEventListener('abort', stop, { once: true });
  });
  for (const loop of loops) loop.start();
  await stopped;
  await Promise.all(loops.map((loop) => loop.stop()));
  return loops.every((loop) => loop.state.status === 'healthy') ? 0 : 1;
}

function record(slot: Slot, result: ProbeResult): ProbeRecord {
  return {
    probe: slot.index,
    role: slot.config.role,
    kind: slot.config.target.kind,
    target: slot.probe.description,
    verdict: result.ok ? 'pass' : 'fail',
    ok: result.ok,
    latencyMs: Math.round(result.latencyMs),
    detail: result.detail,
  };
}

function watchFields(config: ProbeConfig, state: HealthState): Partial<ProbeRecord> {
  const failing = state.status !== 'unhealthy' && state.failures > 0;
  return {
    time: new Date().toISOString(),
    state: failing ? 'failing' : state.status,
    failures: state.failures,
    failureThreshold: config.failureThreshold,
    successes: state.successes,
    successThreshold: config.successThreshold,
  };
}

/** "failing 2/3", "unhealthy", "healthy", "starting (passing 1/2)": the threshold state in words. */
function stateText(r: ProbeRecord): string {
  const passing = r.successes! > 0 && r.successes! < r.successThreshold! ? ` (passing ${r.successes}/${r.successThreshold})` : '';
  if (r.state === 'failing') return `failing ${r.failures}/${r.failureThreshold}`;
  if (r.state === 'healthy') return 'healthy';
  return `${r.state}${passing}`;
}

function printJson(r: ProbeRecord): void {
  write(`${JSON.stringify(r)}\n`);
}

/** Aligned columns: verdict, role, kind, target, latency, detail (with --watch: the time first, the state after the verdict). */
function tablePrinter(slots: readonly Slot[], watch: boolean): (r: ProbeRecord) => void {
  const width = (texts: string[]) => Math.max(...texts.map((t) => t.length));
  const roleWidth = width(slots.map((s) => s.config.role));
  const kindWidth = width(slots.map((s) => s.config.target.kind));
  const targetWidth = width(slots.map((s) => s.probe.description));
  const stateWidth = width(
    slots.flatMap(({ config: { failureThreshold: f, successThreshold: s } }) => [
      `failing ${f}/${f}`,
      s > 1 ? `unhealthy (passing ${s - 1}/${s})` : 'unhealthy',
    ]),
  );
  return (r) => {
    const cells = [
      r.verdict === 'pass' ? 'PASS' : 'FAIL',
      r.role.padEnd(roleWidth),
      r.kind.padEnd(kindWidth),
      r.target.padEnd(targetWidth),
      `${r.latencyMs}ms`.padStart(7),
      r.detail,
    ];
    if (watch) cells.splice(0, 1, clockTime(new Date(r.time!)), cells[0]!, stateText(r).padEnd(stateWidth));
    write(`${cells.join('  ').trimEnd()}\n`);
  };
}

/** 14:03:07.250, local time. */
function clockTime(date: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}

/** stdout, synchronously; a reader that went away (`| head`) ends the output, and --watch with it. */
function write(text: string): void {
  if (outputGone.signal.aborted) return;
  try {
    writeSync(1, text);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPIPE') throw error;
    outputGone.abort();
  }
}
