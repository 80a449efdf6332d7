// --no-systemd: sdwrap restarts the app itself, by the restart policy, with backoff (backoff.ts decides
// when), until the budget runs out or a stop signal ends it. Each run is a fresh Run of the lifecycle.
import { emptyHistory, nextRestart, type RestartHistory, type RestartPolicy } from './backoff.js';
import type { Clock } from './clock.js';
import { formatSpan } from './duration.js';
import { EXIT } from './errors.js';
import { planExit, type ExitPlan } from './exit-plan.js';
import { RELAYED_SIGNALS, STOP_SIGNALS } from './lifecycle.js';
import type { Logger } from './logger.js';
import { statusText } from './status.js';
import type { RunOutcome } from './supervisor.js';

export interface RestarterDeps {
  log: Logger;
  clock: Clock;
  signals: Pick<NodeJS.Process, 'on' | 'off'>;
  /** Starts the next run of the app. */
  run(): Promise<RunOutcome>;
  /** Told of each restart, once its wait is over and before the next run starts. */
  onRestart?(): void;
  random?: () => number;
}

/** Restarts after `first` as the policy says; resolves with how sdwrap should end. */
export async function restartLoop(first: RunOutcome, policy: RestartPolicy, deps: RestarterDeps): Promise<ExitPlan> {
  const { log, clock } = deps;
  let history: RestartHistory = emptyHistory;
  let total = 0;
  let outcome = first;
  for (;;) {
    if (outcome.cause?.kind === 'signal') return outcome.plan;
    const failed = outcome.cause?.kind === 'unhealthy' || outcome.child.signal !== null || outcome.child.code !== 0;
    if (!failed && policy.mode === 'on-failure') return outcome.plan;
    const why = outcome.cause?.kind === 'unhealthy' ? `unhealthy: ${outcome.cause.reason}` : `app ${statusText(outcome.child)}`;
    const next = nextRestart(history, policy, clock.now(), outcome.healthyForMs, deps.random ?? Math.random);
    if (outcome.healthyForMs > 0 && outcome.healthyForMs >= policy.resetAfterMs && history.streak > 0) {
      log.info({ healthyForMs: Math.round(outcome.healthyForMs) }, 'app stayed healthy: restart backoff and budget reset');
    }
    history = next.history;
    const { decision } = next;
    if (decision.kind === 'give-up') {
      log.error({ childPid: outcome.pid, reason: why, restarts: total }, decision.reason);
      return { kind: 'code', code: giveUpCode(outcome) };
    }
    total += 1;
    log.warn(
      {
        childPid: outcome.pid,
        restart: total,
        attempt: decision.restart,
        delayMs: decision.delayMs,
        delay: formatSpan(decision.delayMs),
        reason: why,
      },
      `restarting in ${formatSpan(decision.delayMs)}`,
    );
    const stop = await waitOrStop(decision.delayMs, deps);
    if (stop) {
      log.info({ signal: stop }, 'stopping: signal during the restart wait');
      // As if the app had died by it: SIGQUIT and SIGABRT become 128+N, never a core of node.
      return planExit(undefined, { code: null, signal: stop });
    }
    deps.onRestart?.();
    outcome = await deps.run();
  }
}

/** Waits out the backoff; resolves early with the stop signal if one arrives. */
function waitOrStop(ms: number, { clock, signals }: RestarterDeps): Promise<NodeJS.Signals | undefined> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if ((STOP_SIGNALS as readonly string[]).includes(signal)) done(signal);
    };
    const timer = clock.setTimeout(() => done(undefined), ms);
    const done = (signal: NodeJS.Signals | undefined) => {
      clock.clearTimeout(timer);
      for (const s of RELAYED_SIGNALS) signals.off(s, onSignal);
      resolve(signal);
    };
    for (const s of RELAYED_SIGNALS) signals.on(s, onSignal);
  });
}

/** The last run's status, as a code (no re-raise after giving up); exits that were not failures
 * (--restart always) still must not look like success. */
function giveUpCode(outcome: RunOutcome): number {
  if (outcome.plan.kind === 'signal') return outcome.plan.fallbackCode;
  return outcome.plan.code === 0 ? EXIT.UNHEALTHY : outcome.plan.code;
}
