// buildConfig's rules one by one: what each option accepts at its edges, which flag a message names, and how
// flags, --probe and config-file probes combine. config.test.ts covers the defaults and the common mistakes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildConfig,
  parseProbeFlag,
  validateCount,
  validateHostPort,
  validateHttpUrl,
  validateSpan,
  validateWsUrl,
  type RawOptions,
  type RawProbe,
} from '../../src/config.js';
import { UsageError } from '../../src/errors.js';

const cmd = ['./server'];
const build = (raw: RawOptions) => buildConfig(raw, cmd, false);
/** Asserts buildConfig refuses `raw` with a UsageError whose message matches. */
function refuses(raw: RawOptions, message: RegExp): void {
  assert.throws(
    () => build(raw),
    (e: unknown) => e instanceof UsageError && message.test(e.message),
    `${JSON.stringify(raw)} should fail with ${message}`,
  );
}
const fileProbe = (probe: Omit<RawProbe, 'source'>, index = 0): RawProbe => ({ source: `probes[${index}]`, ...probe });

test('the command: missing or empty is refused', () => {
  assert.throws(() => buildConfig({}, [''], false), /missing the command/);
  assert.equal(buildConfig({}, ['x', ''], false).args[0], '');
});

test('probe defaults given without any probe are still checked', () => {
  refuses({ interval: 'soon' }, /^--interval expects a time span/);
  refuses({ interval: '0' }, /^--interval must be at least 1ms/);
  refuses({ timeout: '0' }, /^--timeout must be at least 1ms/);
  refuses({ failureThreshold: '0' }, /^--failure-threshold expects a whole number/);
  refuses({ successThreshold: 'x' }, /^--success-threshold expects a whole number/);
  assert.deepEqual(build({ interval: '1ms', timeout: '1ms', failureThreshold: '1', successThreshold: '1' }).probes, []);
});

test('start period and stop timeout may be 0; the notifier and log choices', () => {
  const c = build({ startPeriod: '0', stopTimeout: '0' });
  assert.equal(c.startPeriodMs, 0);
  assert.equal(c.stopTimeoutMs, 0);
  for (const notifier of ['auto', 'native', 'systemd-notify'] as const) assert.equal(build({ notifier }).notifier, notifier);
  refuses({ notifier: '' }, /^--notifier expects one of auto\|native\|systemd-notify, got ''$/);
  for (const logLevel of ['trace', 'debug', 'info', 'warn', 'error'] as const) assert.equal(build({ logLevel }).logLevel, logLevel);
  assert.equal(build({ logFormat: 'json' }).logFormat, 'json');
  assert.equal(buildConfig({ logFormat: 'json' }, cmd, true).logFormat, 'json', 'a flag beats the terminal');
});

test('--on-unhealthy watchdog needs systemd; kill works either way', () => {
  assert.equal(build({ onUnhealthy: 'watchdog' }).onUnhealthy, 'watchdog');
  assert.equal(build({ onUnhealthy: 'kill', systemd: false }).onUnhealthy, 'kill');
  refuses({ onUnhealthy: 'watchdog', systemd: false }, /^--on-unhealthy watchdog needs systemd/);
  refuses({ onUnhealthy: 'reboot', systemd: false }, /^--on-unhealthy reboot needs systemd/);
});

test('--no-systemd: local mode with the restart policy and its defaults', () => {
  const local = build({ systemd: false });
  assert.equal(local.noSystemd, true);
  assert.deepEqual(local.restart, {
    mode: 'on-failure',
    initialDelayMs: 1000,
    maxDelayMs: 60_000,
    maxRestarts: 5,
    windowMs: 300_000,
    resetAfterMs: 60_000,
  });
  assert.ok(Object.isFrozen(local.restart));
  const custom = build({
    systemd: false,
    restart: 'always',
    restartDelay: '0',
    restartMaxDelay: '0',
    maxRestarts: ' 0 ',
    restartWindow: '1ms',
    restartReset: '0',
  });
  assert.deepEqual(custom.restart, { mode: 'always', initialDelayMs: 0, maxDelayMs: 0, maxRestarts: 0, windowMs: 1, resetAfterMs: 0 });
  assert.equal(build({ systemd: false, restartDelay: '2s', restartMaxDelay: '2s' }).restart!.maxDelayMs, 2000, 'equal delays are fine');
  assert.equal(build({ systemd: false, maxRestarts: '12' }).restart!.maxRestarts, 12);
  const systemd = build({});
  assert.equal(systemd.noSystemd, false);
  assert.equal(systemd.restart, undefined);
  assert.equal(build({ systemd: true }).noSystemd, false);
});

test('restart flags: refused under systemd, each by its name; bad values named', () => {
  const flags: Array<[keyof RawOptions, string, string]> = [
    ['restart', '--restart', 'always'],
    ['restartDelay', '--restart-delay', '1s'],
    ['restartMaxDelay', '--restart-max-delay', '1s'],
    ['maxRestarts', '--max-restarts', '3'],
    ['restartWindow', '--restart-window', '1min'],
    ['restartReset', '--restart-reset', '1min'],
  ];
  for (const [key, flag, value] of flags) {
    refuses({ [key]: value }, new RegExp(`^${flag} needs --no-systemd: under systemd, the unit's Restart= restarts the app$`));
  }
  refuses({ systemd: false, restart: 'never' }, /^--restart expects one of on-failure\|always, got 'never'$/);
  refuses({ systemd: false, restartDelay: 'x' }, /^--restart-delay expects a time span/);
  refuses({ systemd: false, restartMaxDelay: 'x' }, /^--restart-max-delay expects a time span/);
  refuses(
    { systemd: false, restartDelay: '2s', restartMaxDelay: '1s' },
    /^--restart-max-delay \(1s\) must not be shorter than --restart-delay \(2s\)$/,
  );
  for (const bad of ['x', '3x', 'x3', '-1', '1.5']) {
    refuses(
      { systemd: false, maxRestarts: bad },
      new RegExp(`^--max-restarts expects a whole number \\(0 never restarts\\), got '${bad.replace('.', '\\.')}'$`),
    );
  }
  refuses({ systemd: false, restartWindow: '0' }, /^--restart-window must be at least 1ms/);
  refuses({ systemd: false, restartReset: 'x' }, /^--restart-reset expects a time span/);
});

test('--watch-log: max and window, and neither without a pattern', () => {
  const w = build({ watchLog: 'deadline', watchLogMax: ' 5 ' }).watchLog!;
  assert.deepEqual({ pattern: w.pattern.source, max: w.max, windowMs: w.windowMs }, { pattern: 'deadline', max: 5, windowMs: 60_000 });
  assert.equal(build({ watchLog: 'x', watchLogMax: '0', watchLogWindow: '1ms' }).watchLog!.windowMs, 1);
  assert.equal(build({ watchLog: 'x', watchLogMax: '12' }).watchLog!.max, 12);
  for (const bad of ['x', '5x', 'x5', '-1'])
    refuses({ watchLog: 'x', watchLogMax: bad }, new RegExp(`^--watch-log-max expects a whole number, got '${bad}'$`));
  refuses({ watchLog: 'x', watchLogWindow: '0' }, /^--watch-log-window must be at least 1ms/);
  refuses({ watchLog: '(' }, /^--watch-log expects a regular expression/);
  refuses({ watchLogMax: '3' }, /^--watch-log-max and --watch-log-window need --watch-log <regex>$/);
  refuses({ watchLogWindow: '1min' }, /^--watch-log-max and --watch-log-window need --watch-log <regex>$/);
  assert.equal(build({}).watchLog, undefined);
});

test('--heartbeat-url: http(s) only, never echoed; --heartbeat-every at least 1s', () => {
  assert.equal(build({ heartbeatUrl: 'https://hc-ping.com/abc' }).heartbeatUrl, 'https://hc-ping.com/abc');
  refuses({ heartbeatUrl: 'ftp://hc-ping.com/s3cret' }, /^--heartbeat-url expects an http:\/\/ or https:\/\/ URL, got \(redacted\)$/);
  assert.equal(build({ heartbeatEvery: '1s' }).heartbeatEveryMs, 1000);
  assert.equal(build({}).heartbeatEveryMs, 60_000);
});

test('URLs, host:port and regexes at their edges', () => {
  assert.equal(validateHttpUrl('--http', 'https://a/x'), 'https://a/x');
  assert.equal(validateHttpUrl('--http', 'http://a'), 'http://a/');
  assert.throws(
    () => validateHttpUrl('--http', 'http://us%er@a/'),
    /^UsageError: --http: the user or password in the URL has a malformed %-escape, got 'http:\/\/us%er@a\/'$/,
  );
  assert.throws(
    () => validateHttpUrl('--heartbeat-url', 'http://a:p%w@a/', { secret: true }),
    /^UsageError: --heartbeat-url: the user or password in the URL has a malformed %-escape, got \(redacted\)$/,
  );
  assert.throws(
    () => validateHttpUrl('--http', 'gopher://a/'),
    /^UsageError: --http expects an http:\/\/ or https:\/\/ URL, got 'gopher:\/\/a\/'$/,
  );
  assert.equal(validateWsUrl('--ws', 'wss://a/ws'), 'wss://a/ws');
  assert.equal(validateWsUrl('--ws', 'ws://a/ws'), 'ws://a/ws');
  assert.throws(() => validateWsUrl('--ws', 'https://a/'), /--ws expects a ws:\/\/ or wss:\/\/ URL, got 'https:\/\/a\/'/);
  assert.throws(() => validateWsUrl('--ws', 'not a url'), /--ws expects a ws:\/\/ or wss:\/\/ URL, got 'not a url'/);
  assert.deepEqual(validateHostPort('--tcp', ' db:5432 '), { host: 'db', port: 5432 });
  assert.deepEqual(validateHostPort('--tcp', 'a:1'), { host: 'a', port: 1 });
  assert.deepEqual(validateHostPort('--tcp', 'a:65535'), { host: 'a', port: 65535 });
  for (const bad of ['a:0', 'a:65536', 'a:123456', 'a:1:2', ':80', 'a:', 'a:1x']) {
    assert.throws(() => validateHostPort('--tcp', bad), /--tcp expects host:port \(port 1-65535, IPv6 in brackets\)/, bad);
  }
});

test('spans and counts at their edges', () => {
  assert.equal(validateSpan('--x', '2147483647ms', { min: 0 }), 2 ** 31 - 1);
  assert.throws(
    () => validateSpan('--x', '2147483648ms', { min: 0 }),
    /^UsageError: --x must be at most 24 days \(24d 20h 31min 23s 647ms, the longest timer Node\.js keeps\), got '2147483648ms'$/,
  );
  assert.throws(() => validateSpan('--x', '4ms', { min: 5 }), /^UsageError: --x must be at least 5ms, got '4ms'$/);
  assert.equal(validateSpan('--x', '5ms', { min: 5 }), 5);
  assert.equal(validateCount('--n', ' 7 '), 7);
  assert.equal(validateCount('--n', '12'), 12);
  // Digits only: no sign, fraction, exponent or hex that Number() would still read.
  for (const bad of ['0', '7x', 'x7', '', '99999999999999999999', '+7', '7.0', '1e3', '0x7'])
    assert.throws(() => validateCount('--n', bad), /^UsageError: --n expects a whole number of at least 1/, bad);
});

test('--probe ROLE:KIND:TARGET: roles, kinds, and the text as a whole', () => {
  assert.deepEqual(parseProbeFlag('liveness:exec:a:b c'), { source: '--probe', role: 'liveness', kind: 'exec', target: 'a:b c' });
  for (const bad of ['-liveness:tcp:a:1', 'Liveness:tcp:a:1', 'liveness:tcp:', 'liveness']) {
    assert.throws(() => parseProbeFlag(bad), /^UsageError: --probe expects ROLE:KIND:TARGET/, bad);
  }
  assert.throws(() => parseProbeFlag('liveness:udp:a:1'), /^UsageError: --probe kind expects one of http\|tcp\|exec\|ws, got 'udp'$/);
  refuses({ probe: ['sometimes:tcp:a:1'] }, /^--probe role expects one of readiness\|liveness\|both, got 'sometimes'$/);
  refuses(
    { probes: [fileProbe({ role: 'sometimes', kind: 'tcp', target: 'a:1' })] },
    /^probes\[0\]\.role expects one of readiness\|liveness\|both/,
  );
});

test('probe settings: each falls back from the probe to the flag to the default, and a bad one is named where it was written', () => {
  const [fromFlags] = build({ tcp: 'a:1', interval: '5s', timeout: '1s', failureThreshold: '4', successThreshold: '2' }).probes;
  assert.deepEqual(
    [fromFlags!.intervalMs, fromFlags!.timeoutMs, fromFlags!.failureThreshold, fromFlags!.successThreshold],
    [5000, 1000, 4, 2],
  );
  const [own] = build({
    successThreshold: '2',
    probes: [fileProbe({ kind: 'tcp', target: 'a:1', interval: '7s', timeout: '3s', failureThreshold: '6', successThreshold: '5' })],
  }).probes;
  assert.deepEqual([own!.intervalMs, own!.timeoutMs, own!.failureThreshold, own!.successThreshold, own!.role], [7000, 3000, 6, 5, 'both']);
  const [inherited] = build({ successThreshold: '2', probes: [fileProbe({ kind: 'tcp', target: 'a:1' })] }).probes;
  assert.equal(inherited!.successThreshold, 2);
  const bad: Array<[Partial<RawProbe>, RegExp]> = [
    [{ interval: '0' }, /^probes\[1\]\.interval must be at least 1ms/],
    [{ timeout: 'x' }, /^probes\[1\]\.timeout expects a time span/],
    [{ timeout: '0' }, /^probes\[1\]\.timeout must be at least 1ms/],
    [{ failureThreshold: '0' }, /^probes\[1\]\.failureThreshold expects a whole number/],
    [{ successThreshold: '0' }, /^probes\[1\]\.successThreshold expects a whole number/],
  ];
  for (const [setting, message] of bad)
    refuses({ probes: [fileProbe({ kind: 'tcp', target: 'a:1' }), fileProbe({ kind: 'tcp', target: 'a:2', ...setting }, 1)] }, message);
  refuses({ probe: ['liveness:tcp:a:1'], timeout: 'x' }, /^--timeout expects a time span/);
});

test('HTTP assertion flags: applied to every HTTP probe of the command line, --probe ones too; refused without one', () => {
  const raw: RawOptions = {
    probe: ['liveness:http:http://a/live', 'readiness:tcp:a:1'],
    http: 'http://a/ready',
    httpStatus: '200',
    httpHeader: ['X-Ready: yes'],
    httpBody: 'ok',
    httpJson: ['status==ok'],
    httpFollowRedirects: true,
  };
  const probes = build(raw).probes;
  assert.deepEqual(
    probes.map((p) => [p.role, p.target.kind]),
    [
      ['both', 'http'],
      ['liveness', 'http'],
      ['readiness', 'tcp'],
    ],
  );
  for (const probe of probes.slice(0, 2)) {
    const t = probe.target;
    assert.ok(t.kind === 'http');
    assert.deepEqual(t.statuses, [{ min: 200, max: 200 }]);
    assert.deepEqual(t.headers, [{ name: 'x-ready', value: 'yes' }]);
    assert.equal(t.body?.source, 'ok');
    assert.deepEqual(
      t.json.map((j) => j.path),
      ['status'],
    );
    assert.equal(t.followRedirects, true);
  }
  const plain = build({ http: 'http://a/' }).probes[0]!.target;
  assert.ok(plain.kind === 'http');
  assert.equal(plain.body, undefined);
  assert.deepEqual(plain.json, []);
  for (const [flag, value] of [
    ['httpStatus', '200'],
    ['httpBody', 'ok'],
    ['httpHeader', ['X: y']],
    ['httpJson', ['a==1']],
    ['httpFollowRedirects', true],
  ] as const) {
    refuses(
      { tcp: 'a:1', ws: 'ws://a/', [flag]: value },
      /^--http-method, --http-request-header, --http-status, --http-header, --http-body, --http-json and --http-follow-redirects need an HTTP probe/,
    );
    // A probe from a config file takes its assertions from the file, not from these flags.
    refuses({ [flag]: value, probes: [fileProbe({ kind: 'http', target: 'http://a/' })] }, /need an HTTP probe/);
  }
  refuses({ http: 'http://a/', httpStatus: 'x' }, /^--http-status/);
  refuses({ http: 'http://a/', httpHeader: ['nocolon'] }, /^--http-header/);
  refuses({ http: 'http://a/', httpBody: '(' }, /^--http-body/);
  refuses({ http: 'http://a/', httpJson: ['nop'] }, /^--http-json/);
});

test('HTTP assertions of a config-file probe are named by their place in the file', () => {
  const http = (more: RawProbe['http']) => ({ probes: [fileProbe({ kind: 'http', target: 'http://a/', http: more })] });
  refuses(http({ status: 'x' }), /^probes\[0\]\.http\.status/);
  refuses(http({ headers: ['nocolon'] }), /^probes\[0\]\.http\.headers/);
  refuses(http({ body: '(' }), /^probes\[0\]\.http\.body/);
  refuses(http({ json: ['nop'] }), /^probes\[0\]\.http\.json/);
  refuses({ probes: [fileProbe({ kind: 'http', target: 'ftp://a/' })] }, /^probes\[0\]\.http expects an http:\/\/ or https:\/\/ URL/);
  const t = build(http({ body: 'ok', json: ['a==1'] })).probes[0]!.target;
  assert.ok(t.kind === 'http' && t.body?.source === 'ok' && t.json.length === 1 && t.followRedirects === false);
});

test("WebSocket flags: applied to the command line's ws probes, --probe ones too; refused without one", () => {
  const probes = build({ probe: ['readiness:ws:ws://a/ws'], wsSend: 'ping', wsExpect: '^pong$' }).probes;
  assert.deepEqual(probes[0]!.target, { kind: 'ws', url: 'ws://a/ws', send: 'ping', expect: /^pong$/ });
  assert.deepEqual(build({ ws: 'ws://a/' }).probes[0]!.target, { kind: 'ws', url: 'ws://a/', send: undefined, expect: undefined });
  assert.deepEqual(build({ probes: [fileProbe({ kind: 'ws', target: 'ws://a/' })] }).probes[0]!.target, {
    kind: 'ws',
    url: 'ws://a/',
    send: undefined,
    expect: undefined,
  });
  refuses({ http: 'http://a/', wsSend: 'x' }, /^--ws-send and --ws-expect need a WebSocket probe/);
  refuses({ http: 'http://a/', wsExpect: 'x' }, /^--ws-send and --ws-expect need a WebSocket probe/);
  refuses({ ws: 'ws://a/', wsExpect: '(' }, /^--ws-expect expects a regular expression/);
  refuses(
    { probes: [fileProbe({ kind: 'ws', target: 'ws://a/', ws: { expect: '(' } })] },
    /^probes\[0\]\.ws\.expect expects a regular expression/,
  );
});
