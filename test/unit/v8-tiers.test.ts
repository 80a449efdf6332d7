import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLightRun } from '../../src/v8-tiers.js';

test('a run is light (no optimising compiler) when no probe runs more than once a second and no log is relayed', () => {
  assert.equal(isLightRun({ watchLog: undefined }, []), true, 'no probe');
  assert.equal(isLightRun({ watchLog: undefined }, [{ intervalMs: 1000 }, { intervalMs: 10_000 }]), true);
  assert.equal(isLightRun({ watchLog: undefined }, [{ intervalMs: 10_000 }, { intervalMs: 999 }]), false, 'one busy probe');
  assert.equal(isLightRun({ watchLog: { pattern: /x/, max: 1, windowMs: 1000 } }, [{ intervalMs: 10_000 }]), false, 'the log relay');
});
