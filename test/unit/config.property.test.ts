// Property tests of whole configurations: random option values through buildConfig, and config files, random
// and mutated from valid ones, through loadConfigFile then buildConfig. A Config or a one-line UsageError.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../../src/config-file.js';
import { buildConfig, type RawOptions } from '../../src/config.js';
import { fuzzOptions, mutatedFrom, textNear, valueOrUsageError, valueOrUsageErrorAsync } from '../helpers/fuzz.js';

const dir = mkdtempSync(join(tmpdir(), 'sdwrap-config-fuzz-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SPAN = textNear(['5s', '500ms', '1min 30s', '0', '10']);
const option = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

const rawOptions: fc.Arbitrary<RawOptions> = fc.record({
  http: option(textNear(['http://127.0.0.1:8080/healthz'])),
  tcp: option(textNear(['127.0.0.1:5432'])),
  exec: option(fc.string({ maxLength: 10 })),
  probe: option(fc.array(textNear(['liveness:http:http://127.0.0.1:1/', 'readiness:tcp:h:1', 'both:exec:true']), { maxLength: 2 })),
  httpStatus: option(textNear(['200-399', '204'])),
  httpHeader: option(fc.array(textNear(['X-Ready: yes']), { maxLength: 2 })),
  httpRequestHeader: option(fc.array(textNear(['Host: h']), { maxLength: 2 })),
  httpJson: option(fc.array(textNear(['a.b>=1', 'x==ok']), { maxLength: 2 })),
  httpBody: option(textNear(['ok', '/ok/i'])),
  httpMethod: option(textNear(['GET', 'HEAD', 'get'])),
  interval: option(SPAN),
  timeout: option(SPAN),
  failureThreshold: option(textNear(['3', '1'])),
  successThreshold: option(textNear(['1'])),
  startPeriod: option(SPAN),
  stopTimeout: option(SPAN),
  onUnhealthy: option(textNear(['kill', 'watchdog'])),
  watchLog: option(textNear(['FATAL', 'out of memory|OOM'])),
  watchLogMax: option(textNear(['3', '0'])),
  watchLogWindow: option(SPAN),
  heartbeatUrl: option(textNear(['https://hc-ping.com/abc'])),
  heartbeatEvery: option(SPAN),
  logLevel: option(textNear(['info', 'debug'])),
  logFormat: option(textNear(['json', 'pretty'])),
  systemd: option(fc.boolean()),
  restart: option(textNear(['on-failure', 'always'])),
  restartDelay: option(SPAN),
  restartMaxDelay: option(SPAN),
  maxRestarts: option(textNear(['5', '0'])),
  restartWindow: option(SPAN),
  restartReset: option(SPAN),
});

test('any mix of option values gives a frozen Config or a one-line UsageError', () => {
  fc.assert(
    fc.property(rawOptions, fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }), (raw, command) => {
      const built = valueOrUsageError(() => buildConfig(raw, command, false));
      if ('value' in built) {
        assert.ok(Object.isFrozen(built.value));
        for (const probe of built.value.probes) assert.ok(probe.intervalMs >= 1 && probe.timeoutMs >= 1);
      }
    }),
    fuzzOptions(1500),
  );
});

const VALID_FILES = [
  { command: ['node', 'server.js'], probes: [{ http: 'http://127.0.0.1:8080/healthz', role: 'liveness', interval: '5s' }] },
  {
    interval: 10,
    timeout: '2s',
    startPeriod: '30s',
    probes: [
      {
        http: { url: 'http://127.0.0.1:8080/ready', status: '200,204', json: 'checks.0.status==ok', headers: { 'X-Ready': 'yes' } },
        role: 'readiness',
      },
      { tcp: '127.0.0.1:5432', failureThreshold: 3 },
      { exec: 'pg_isready -q', timeout: 1 },
      { ws: { url: 'ws://127.0.0.1:9000/ws', send: 'ping', expect: 'pong' } },
    ],
    watchLog: { pattern: 'FATAL', max: 3, window: '1min' },
  },
  { noSystemd: true, restart: 'always', restartDelay: '1s', restartMaxDelay: '30s', maxRestarts: 5, probes: [{ exec: 'true' }] },
].map((file) => JSON.stringify(file, null, 2));

/** Any JSON value, and objects shaped like config files with wrong-typed or misspelled fields. */
const jsonText = fc.oneof(
  fc.json({ maxDepth: 3 }),
  fc
    .dictionary(
      fc.constantFrom('interval', 'timeout', 'probes', 'command', 'watchLog', 'restart', 'noSystemd', 'intervall', 'startPeriod', 'http'),
      fc.jsonValue({ maxDepth: 2 }),
      { maxKeys: 4 },
    )
    .map((o) => JSON.stringify(o)),
);

let case_ = 0;

test('config files, random and mutated from valid ones, give a Config or a one-line UsageError', async () => {
  await fc.assert(
    fc.asyncProperty(fc.oneof(jsonText, mutatedFrom(VALID_FILES), fc.string({ maxLength: 30 })), async (text) => {
      const path = join(dir, `c${case_++ % 50}.json`);
      writeFileSync(path, text);
      const loaded = await valueOrUsageErrorAsync(() => loadConfigFile(path));
      if ('value' in loaded) {
        valueOrUsageError(() => buildConfig(loaded.value.options, loaded.value.command ?? ['app'], false));
      }
    }),
    fuzzOptions(800),
  );
});
