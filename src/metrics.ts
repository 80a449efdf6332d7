// --metrics: what the supervisor observes, as Prometheus metrics in a prom-client registry, served by
// metrics-server.ts. Loaded (with prom-client) only by runs given --metrics: cli.ts imports it on demand.
//
// Every name has the sdwrap_ prefix and Prometheus' base units and suffixes (_seconds, _total); metrics about
// one probe carry a `probe` label, its description as in the logs ("GET http://127.0.0.1:8080/healthz"),
// which never holds a secret (passwords and secret request headers are left out of it).
import type * as PromClient from 'prom-client';
import type { HealthState, HealthStatus, ProbeResult } from './health.js';
import type { ListenAddress } from './config.js';
import type { Logger } from './logger.js';
import { serveMetrics, type MetricsServer } from './metrics-server.js';
import { requireOptional } from './optional.js';
import type { RunView, SupervisorObserver } from './supervisor.js';

/** Probe latencies from loopback milliseconds up to the longest sensible --timeout. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const HEALTH_STATES: readonly HealthStatus[] = ['starting', 'healthy', 'unhealthy'];

/**
 * prom-client's default collectors that cost next to nothing (measured: ~1 MiB together, read from /proc and V8
 * at scrape time). Left out: processCpuTotal loads OpenTelemetry's API (~6.5 MiB; sdwrap's own counter below
 * stands in), eventLoopLag a timer waking sdwrap every 10 ms, heapSpacesSizeAndUsed ~2 MiB, gc a
 * PerformanceObserver, processHandles/processRequests/processResources internals of little use here.
 */
const CHEAP_COLLECTORS = [
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  'heapSizeAndUsed',
  'version',
];

interface Client {
  Registry: typeof PromClient.Registry;
  Counter: typeof PromClient.Counter;
  Gauge: typeof PromClient.Gauge;
  Histogram: typeof PromClient.Histogram;
}

/**
 * prom-client's classes, each from its own file: the package's index also loads its Pushgateway (https, tls,
 * zlib) and its cluster aggregator, ~11 MiB of RSS a scrape endpoint never uses.
 */
function loadClient(): Client {
  const lib = <T>(name: string) => requireOptional(`prom-client/lib/${name}`) as T;
  return { Registry: lib('registry'), Counter: lib('counter'), Gauge: lib('gauge'), Histogram: lib('histogram') };
}

export interface MetricsOptions {
  /** sdwrap's version, for sdwrap_build_info. */
  version: string;
  /** The notifier in use ('native', 'systemd-notify', or 'none' under --no-systemd or without NOTIFY_SOCKET). */
  notifier: string;
}

/** The metrics, and the hooks that feed them. */
export interface Metrics {
  /** For SupervisorDeps.observer. */
  readonly observer: SupervisorObserver;
  /** For the heartbeat's onFailure. */
  heartbeatFailure(): void;
  /** The exposition text and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

/** A fresh registry with every sdwrap metric in it. */
export function createMetrics(options: MetricsOptions): Metrics {
  const { Registry, Counter, Gauge, Histogram } = loadClient();
  const registry = new Registry();
  const registers = [registry];
  for (const name of CHEAP_COLLECTORS) {
    (requireOptional(`prom-client/lib/metrics/${name}`) as (r: PromClient.Registry, c: object) => void)(registry, {});
  }
  new Counter({
    name: 'process_cpu_seconds_total',
    help: 'Total user and system CPU time spent in seconds.',
    registers,
    collect() {
      const { user, system } = process.cpuUsage();
      this.reset();
      this.inc((user + system) / 1e6);
    },
  });
  new Gauge({
    name: 'sdwrap_build_info',
    help: "sdwrap's version and the notifier in use; always 1.",
    labelNames: ['version', 'notifier'],
    registers,
  }).set({ version: options.version, notifier: options.notifier }, 1);

  const duration = new Histogram({
    name: 'sdwrap_probe_duration_seconds',
    help: 'How long each probe took, failures (up to its timeout) included.',
    labelNames: ['probe'],
    buckets: DURATION_BUCKETS,
    registers,
  });
  const results = new Counter({
    name: 'sdwrap_probe_results_total',
    help: 'Probe results by outcome (success or failure).',
    labelNames: ['probe', 'outcome'],
    registers,
  });
  const failures = new Gauge({
    name: 'sdwrap_probe_consecutive_failures',
    help: "Consecutive failures that count towards the probe's --failure-threshold (not those inside the start period).",
    labelNames: ['probe'],
    registers,
  });
  const health = new Gauge({
    name: 'sdwrap_probe_state',
    help: "1 for the probe's health state (starting, healthy, unhealthy), 0 for the others.",
    labelNames: ['probe', 'state'],
    registers,
  });
  const ready = new Gauge({
    name: 'sdwrap_ready',
    help: '1 once the app has passed its readiness gate (READY=1 sent under systemd), 0 before; a restarted app starts at 0.',
    registers,
  });
  const watchdog = new Counter({
    name: 'sdwrap_watchdog_pings_total',
    help: 'Watchdog ticks (every half WatchdogSec=) by outcome: sent (WATCHDOG=1) or withheld (the app was not vouched for).',
    labelNames: ['outcome'],
    registers,
  });
  const symptoms = new Counter({
    name: 'sdwrap_log_symptoms_total',
    help: "Lines of the app's output that matched --watch-log.",
    registers,
  });
  const heartbeatFailures = new Counter({
    name: 'sdwrap_heartbeat_failures_total',
    help: 'Heartbeat pushes (--heartbeat-url) that were not delivered.',
    registers,
  });
  const restarts = new Counter({
    name: 'sdwrap_restarts_total',
    help: 'Restarts of the app by sdwrap itself (--no-systemd); under systemd, the unit restarts.',
    registers,
  });
  const childStart = new Gauge({
    name: 'sdwrap_child_start_time_seconds',
    help: 'When the app was last spawned, in seconds since the epoch (uptime: time() - this).',
    registers,
  });
  const lastUnhealthy = new Gauge({
    name: 'sdwrap_last_unhealthy_time_seconds',
    help: 'When the app was last found unhealthy, in seconds since the epoch; 0 if never.',
    registers,
  });
  // Both outcomes from the start, so rate() and increase() have a series to work on before the first tick.
  for (const outcome of ['sent', 'withheld']) watchdog.inc({ outcome }, 0);

  const epochSeconds = () => Date.now() / 1000;
  /** Whether the run under way was found unhealthy already: its stop passes through several states. */
  let unhealthySeen = false;
  const observer: SupervisorObserver = {
    state(view: RunView) {
      if (view.state === 'starting') {
        childStart.set(epochSeconds());
        ready.set(0);
        unhealthySeen = false;
      } else if (view.state === 'running') {
        ready.set(1);
      }
      if (view.cause?.kind === 'unhealthy' && !unhealthySeen) {
        unhealthySeen = true;
        lastUnhealthy.set(epochSeconds());
      }
    },
    probe(description: string, result: ProbeResult, state: HealthState) {
      const probe = description;
      duration.observe({ probe }, result.latencyMs / 1000);
      results.inc({ probe, outcome: result.ok ? 'success' : 'failure' });
      failures.set({ probe }, state.failures);
      for (const s of HEALTH_STATES) health.set({ probe, state: s }, s === state.status ? 1 : 0);
    },
    watchdog(sent: boolean) {
      watchdog.inc({ outcome: sent ? 'sent' : 'withheld' });
    },
    symptom(lines: number) {
      symptoms.inc(lines);
    },
    restart() {
      restarts.inc();
    },
  };
  return {
    observer,
    heartbeatFailure: () => heartbeatFailures.inc(),
    render: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
  };
}

/** The metrics and their endpoint, bound before the app is spawned. Throws UsageError when it cannot bind. */
export async function startMetrics(
  address: ListenAddress,
  options: MetricsOptions & { log: Logger },
): Promise<Metrics & { server: MetricsServer }> {
  const metrics = createMetrics(options);
  const server = await serveMetrics(address, () => metrics.render(), options.log);
  return { ...metrics, server };
}
