import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLightRun, v8FlagsFor } from '../../src/v8-flags.js';

const watchLog = { pattern: /x/, max: 1, windowMs: 1000 };

test('a run is light (no optimising compiler) when no probe runs more than once a second and no log is relayed', () => {
  assert.equal(isLightRun({ watchLog: undefined }, []), true, 'no probe');
  assert.equal(isLightRun({ watchLog: undefined }, [{ intervalMs: 1000 }, { intervalMs: 10_000 }]), true);
  assert.equal(isLightRun({ watchLog: undefined }, [{ intervalMs: 10_000 }, { intervalMs: 999 }]), false, 'one busy probe');
  assert.equal(isLightRun({ watchLog }, [{ intervalMs: 10_000 }]), false, 'the log relay');
});

test('every run keeps the young generation at its first size; light runs also leave TurboFan off', () => {
  assert.deepEqual(v8FlagsFor({ watchLog: undefined }, [{ intervalMs: 10_000 }]), ['--semi-space-growth-factor=1', '--no-opt']);
  assert.deepEqual(v8FlagsFor({ watchLog }, []), ['--semi-space-growth-factor=1']);
});
