// The fault tests' probe: an exec probe that passes until a flag file exists, fast enough for WatchdogSec=2s,
// so a test makes the app unhealthy by creating a file rather than by hurting the app.

/** sdwrap's probe and timing options for a probe that fails once `flag` exists. */
export const failsOnceFlagExists = (flag: string): string[] => [
  '--exec',
  `test ! -e ${flag}`,
  '--interval',
  '100ms',
  '--timeout',
  '200ms',
  '--failure-threshold',
  '2',
  '--stop-timeout',
  '500ms',
];
