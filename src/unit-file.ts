// The unit `sdwrap unit` writes, as text from a plan: the timeouts derived from the probes, the example unit's
// hardening adapted to the options, and a one-line comment above each setting saying why it is there.
import type { Config } from './config.js';
import { formatSpan } from './duration.js';
import { planProbeTiming } from './timing.js';

/** The hardening block of units/sdwrap-example.service, in its order (a test holds the two together). */
export const HARDENING: ReadonlyArray<readonly [key: string, value: string]> = [
  ['DynamicUser', 'yes'],
  ['ProtectSystem', 'strict'],
  ['ProtectHome', 'yes'],
  ['PrivateTmp', 'yes'],
  ['PrivateDevices', 'yes'],
  ['PrivateUsers', 'yes'],
  ['PrivateMounts', 'yes'],
  ['NoNewPrivileges', 'yes'],
  ['CapabilityBoundingSet', ''],
  ['AmbientCapabilities', ''],
  ['RestrictAddressFamilies', 'AF_UNIX AF_INET AF_INET6'],
  ['SystemCallFilter', '@system-service'],
  ['SystemCallArchitectures', 'native'],
  ['SystemCallErrorNumber', 'EPERM'],
  ['ProtectKernelTunables', 'yes'],
  ['ProtectKernelModules', 'yes'],
  ['ProtectKernelLogs', 'yes'],
  ['ProtectControlGroups', 'yes'],
  ['ProtectClock', 'yes'],
  ['ProtectHostname', 'yes'],
  ['ProtectProc', 'invisible'],
  ['RestrictNamespaces', 'yes'],
  ['RestrictRealtime', 'yes'],
  ['RestrictSUIDSGID', 'yes'],
  ['LockPersonality', 'yes'],
  ['RemoveIPC', 'yes'],
  ['KeyringMode', 'private'],
  ['DevicePolicy', 'closed'],
  ['UMask', '0077'],
];

/** Hardening a user manager (systemctl --user) cannot apply: it has no privileges to give up or hand out. */
const SYSTEM_ONLY: readonly string[] = [
  'DynamicUser',
  'CapabilityBoundingSet',
  'AmbientCapabilities',
  'ProtectControlGroups',
  'ProtectProc',
  'RemoveIPC',
  'DevicePolicy',
];

const START_LIMIT_INTERVAL = '2min';
const START_LIMIT_BURST = 5;
const RESTART_SEC = '2s';
/** Added to WatchdogSec= over 3 x the verdict bound. */
const WATCHDOG_MARGIN = 0.1;
/** WatchdogSec= when no liveness probe decides the pings (they then vouch for sdwrap alone). */
const WATCHDOG_WITHOUT_LIVENESS_MS = 30_000;
/** For node's start-up, and for sdwrap's exit after its verdict. */
const START_SLACK_MS = 10_000;
/** For sdwrap's SIGKILL of the tree and its last log lines, after --stop-timeout. */
const STOP_SLACK_MS = 10_000;
/** `sdwrap reload --timeout` stays this far below TimeoutStartSec=, which systemd also applies to ExecReload=. */
const RELOAD_SLACK_MS = 5_000;

export interface UnitPlan {
  /** Without ".service". */
  name: string;
  version: string;
  description: string;
  type: 'notify' | 'notify-reload';
  /** Why that type: "systemd 252 has no Type=notify-reload (253+)". */
  typeWhy: string;
  node: string;
  sdwrap: string;
  /** The run's options, as given (a --config path made absolute). */
  runArgs: readonly string[];
  /** The command by absolute path. */
  command: string;
  args: readonly string[];
  /** The run's options, checked: the unit's numbers come from them. */
  config: Config;
  /** NAME=value. */
  environment: readonly string[];
  workingDirectory: string | undefined;
  writable: readonly string[];
  user: string | undefined;
  portBelow1024: boolean;
  userUnit: boolean;
  /** ProtectHome=read-only instead of yes (a user unit whose files live in the home directory). */
  homeReadOnly: boolean;
}

export interface UnitTimings {
  watchdogMs: number;
  watchdogWhy: string;
  timeoutStartMs: number;
  timeoutStartWhy: string;
  timeoutStopMs: number;
  timeoutStopWhy: string;
  /** `sdwrap reload --timeout`. */
  reloadTimeoutMs: number;
}

const ceilSecond = (ms: number) => Math.ceil(ms / 1000) * 1000;
const span = formatSpan;

/**
 * The unit's timeouts. WatchdogSec= is 3 x the longest liveness verdict bound (threshold x interval + timeout),
 * plus 10%, and at least 2 x --stop-timeout: planProbeTiming then changes nothing and notes nothing.
 */
export function planUnitTimings(config: Config): UnitTimings {
  const stop = config.stopTimeoutMs;
  const bounds = config.probes.map((probe) => {
    const t = planProbeTiming(probe, config, undefined);
    return {
      probe,
      bound: t.freshnessMs,
      text: `${probe.failureThreshold} x ${span(t.intervalMs)} + ${span(t.timeoutMs)} = ${span(t.freshnessMs)}`,
    };
  });
  const longest = (list: typeof bounds) =>
    list.reduce<(typeof bounds)[number] | undefined>((a, b) => (a && a.bound >= b.bound ? a : b), undefined);
  const liveness = longest(bounds.filter((b) => b.probe.role !== 'readiness'));

  let watchdogMs: number;
  let watchdogWhy: string;
  if (liveness) {
    watchdogMs = ceilSecond(Math.max(3 * liveness.bound * (1 + WATCHDOG_MARGIN), 2 * stop));
    watchdogWhy =
      3 * liveness.bound * (1 + WATCHDOG_MARGIN) >= 2 * stop
        ? `3 x the liveness verdict bound (${liveness.text}) + 10%: sdwrap's verdict fits WatchdogSec/3 with its timing unchanged`
        : `2 x --stop-timeout (${span(stop)}), over 3 x the liveness verdict bound (${liveness.text}): sdwrap's kill comes before the watchdog's`;
  } else {
    watchdogMs = ceilSecond(Math.max(WATCHDOG_WITHOUT_LIVENESS_MS, 2 * stop));
    watchdogWhy = 'No liveness probe: the pings vouch for sdwrap alone, and a hung sdwrap is restarted';
  }

  const longestAny = longest(bounds);
  let startMs: number;
  let startText: string;
  if (config.startPeriodMs > 0) {
    const timeout = Math.max(0, ...config.probes.map((p) => p.timeoutMs));
    startMs = config.startPeriodMs + timeout;
    startText = `--start-period ${span(config.startPeriodMs)} + --timeout ${span(timeout)}`;
  } else if (longestAny) {
    startMs = longestAny.bound;
    startText = `no --start-period: the verdict bound ${longestAny.text}`;
  } else {
    startMs = 0;
    startText = 'no probe: ready once spawned';
  }
  const timeoutStartMs = ceilSecond(startMs + stop + START_SLACK_MS);
  return {
    watchdogMs,
    watchdogWhy,
    timeoutStartMs,
    timeoutStartWhy: `The app's start (${startText}) + --stop-timeout ${span(stop)} + 10s: sdwrap gives up on an app that never gets ready before systemd does`,
    timeoutStopMs: ceilSecond(stop + STOP_SLACK_MS),
    timeoutStopWhy: `--stop-timeout ${span(stop)} + 10s for sdwrap to SIGKILL the app's tree and write its last lines; only then does systemd SIGKILL the cgroup`,
    reloadTimeoutMs: Math.max(1000, timeoutStartMs - RELOAD_SLACK_MS),
  };
}

/** The unit file's text. */
export function renderUnit(plan: UnitPlan): string {
  const t = planUnitTimings(plan.config);
  const out: string[] = [];
  const set = (key: string, value: string, why?: string) => {
    if (why) out.push(`# ${sentence(why)}`);
    out.push(`${key}=${value}`);
  };
  const unit = `${plan.name}.service`;
  const ctl = plan.userUnit ? 'systemctl --user' : 'systemctl';
  const where = plan.userUnit ? '~/.config/systemd/user/' : '/etc/systemd/system/';
  out.push(
    `# ${unit}: ${shortCommand(plan)} under sdwrap, written by \`sdwrap unit\` (sdwrap ${plan.version}).`,
    '# The comment above each setting sdwrap chose gives the reason; units/sdwrap-example.service in the',
    '# sdwrap package explains the rest.',
    `# Install: put it in ${where}, then: ${ctl} daemon-reload && ${ctl} enable --now ${unit}`,
    '',
    '[Unit]',
  );
  set('Description', escapeSpecifiers(plan.description));
  if (!plan.userUnit) set('After', 'network.target', 'Started once the network stack is up, as network services are.');
  set(
    'StartLimitIntervalSec',
    START_LIMIT_INTERVAL,
    `Restart budget: at most ${START_LIMIT_BURST} starts within ${START_LIMIT_INTERVAL}, then the unit stays failed (start-limit-hit) instead of flapping.`,
  );
  set('StartLimitBurst', String(START_LIMIT_BURST));

  out.push('', '[Service]');
  set('Type', plan.type, plan.typeWhy);
  set(
    'NotifyAccess',
    'all',
    "sdwrap's fallback notifier, the systemd-notify command, sends from a pid of its own: admit the unit's cgroup.",
  );
  set('WatchdogSec', span(t.watchdogMs), t.watchdogWhy);
  set('TimeoutStartSec', span(t.timeoutStartMs), t.timeoutStartWhy);
  const sdwrap = [plan.node, plan.sdwrap];
  set(
    'ExecStart',
    [...sdwrap, ...plan.runArgs, '--', plan.command, ...plan.args].map(execArg).join(' '),
    "Absolute paths, resolved when this unit was written: a unit's PATH is systemd's, not your shell's.",
  );
  if (plan.type === 'notify') {
    const socketFlag = controlSocketArgs(plan.runArgs);
    set(
      'ExecReload',
      [...sdwrap, 'reload', ...socketFlag, '--timeout', span(t.reloadTimeoutMs)].map(execArg).join(' '),
      `Returns once sdwrap has relayed SIGHUP and every probe passed again; systemd gives it TimeoutStartSec=, so --timeout is ${span(RELOAD_SLACK_MS)} less.`,
    );
    if (socketFlag.length === 0) {
      set(
        'RuntimeDirectory',
        plan.name,
        `Holds the control socket sdwrap reload asks ($RUNTIME_DIRECTORY/sdwrap.sock, mode 0600), in a directory only the service's user can enter.`,
      );
      set('RuntimeDirectoryMode', '0700');
    }
  }
  set('Restart', 'on-failure', 'sdwrap exits non-zero when the app fails or turns unhealthy: systemd restarts it.');
  set('RestartSec', RESTART_SEC);
  set(
    'KillMode',
    'mixed',
    `systemctl stop signals sdwrap alone: it stops the app's whole tree itself, within --stop-timeout (${span(plan.config.stopTimeoutMs)}).`,
  );
  set('TimeoutStopSec', span(t.timeoutStopMs), t.timeoutStopWhy);
  if (plan.workingDirectory !== undefined)
    set('WorkingDirectory', escapeSpecifiers(plan.workingDirectory), '--working-directory: sdwrap and the app start here');
  plan.environment.forEach((assignment, i) =>
    set(
      'Environment',
      quoteIfNeeded(escapeSpecifiers(assignment)),
      i === 0 ? '--environment: for sdwrap, which passes its environment on to the app' : undefined,
    ),
  );

  out.push(
    '',
    '# Hardening: the block of the example unit (systemd-analyze security rates it 1.5); no MemoryDenyWriteExecute=, which breaks V8.',
  );
  if (plan.userUnit) out.push(`# A user manager cannot apply ${SYSTEM_ONLY.map((k) => `${k}=`).join(', ')}: left out.`);
  for (const [key, value] of HARDENING) {
    if (plan.userUnit && SYSTEM_ONLY.includes(key)) continue;
    if (key === 'DynamicUser' && plan.user !== undefined) {
      set('User', plan.user, `--user: runs as ${plan.user} instead of a transient DynamicUser=.`);
      continue;
    }
    if (key === 'PrivateUsers' && plan.portBelow1024) {
      out.push(`# ${sentence("--port-below-1024: no PrivateUsers=, under which the capability would not reach the host's ports")}`);
      continue;
    }
    if ((key === 'CapabilityBoundingSet' || key === 'AmbientCapabilities') && plan.portBelow1024) {
      set(
        key,
        'CAP_NET_BIND_SERVICE',
        key === 'CapabilityBoundingSet' ? '--port-below-1024: the one capability kept, to listen on ports below 1024.' : undefined,
      );
      continue;
    }
    if (key === 'ProtectHome' && plan.homeReadOnly) {
      set(key, 'read-only', "The app's files live in the home directory: read-only rather than hidden.");
      continue;
    }
    set(key, value);
    if (key === 'ProtectSystem' && plan.writable.length > 0) {
      set(
        'ReadWritePaths',
        plan.writable.map((p) => quoteIfNeeded(escapeSpecifiers(p))).join(' '),
        "--writable: writable despite ProtectSystem=strict (the service's user still needs permission there).",
      );
    }
  }

  out.push('', '[Install]');
  set(
    'WantedBy',
    plan.userUnit ? 'default.target' : 'multi-user.target',
    `${ctl} enable starts it at ${plan.userUnit ? 'login' : 'boot'}.`,
  );
  return `${out.join('\n')}\n`;
}

/** A comment ends with a full stop (names such as sdwrap and systemd keep their lower case first letter). */
function sentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/** The app's command line for the header, within a line's width. */
function shortCommand(plan: UnitPlan): string {
  const text = [plan.command, ...plan.args].join(' ').replace(/\s+/g, ' ');
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}

/** The run's --control-socket, for sdwrap reload to ask the same socket. */
function controlSocketArgs(runArgs: readonly string[]): string[] {
  for (const [i, word] of runArgs.entries()) {
    const value = runArgs[i + 1];
    if (word === '--control-socket') return value === undefined ? [] : ['--control-socket', value];
    if (word.startsWith('--control-socket=')) return [word];
  }
  return [];
}

/** % starts a specifier in most settings: %% is a percent sign. */
function escapeSpecifiers(text: string): string {
  return text.replace(/%/g, '%%');
}

/** Double quotes, C-style escapes, where spaces or quotes would otherwise split or end the value. */
function quoteIfNeeded(text: string): string {
  return /^[^\s"'\\]+$/.test(text) ? text : `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** One argument of an Exec*= line: % starts a specifier and $ a variable there, so both are doubled. */
export function execArg(arg: string): string {
  const escaped = arg.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped) ? escaped : `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}
