/**
 * The one test for "are we in CI": there a missing prerequisite (the sd-notify addon, root for the end-to-end
 * suite) is a failure, elsewhere a skip that says why. `.ci/run` runs with CI=true.
 */
export function isCI(): boolean {
  const v = process.env.CI;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}
