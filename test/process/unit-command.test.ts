// `sdwrap unit` through the real CLI: its output for a few option sets against golden files under
// test/golden/units/ (UPDATE=1 rewrites them), the type it picks from `systemctl --version`, --output,
// path resolution, and the mistakes it refuses or warns about.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT, runSdwrap, SDWRAP_BIN, stopAll, type SdwrapRun } from '../helpers/run-sdwrap.js';

const GOLDEN = path.join(REPO_ROOT, 'test/golden/units');
const UPDATE = process.env.UPDATE === '1';
const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };
/** Paths as an installed sdwrap would have them; they need not exist here (a warning, not an error). */
const INSTALLED = ['--node', '/usr/bin/node', '--sdwrap', '/usr/local/lib/node_modules/sdwrap/bin/sdwrap.js'];

let dir: string;
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sdwrap-unit-'));
});
after(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

async function unit(
  args: string[],
  env?: Record<string, string | undefined>,
): Promise<{ run: SdwrapRun; code: number | null; text: string }> {
  const run = runSdwrap(['unit', ...args], { env });
  const exit = await run.waitForExit(20_000);
  assert.equal(exit.signal, null, run.dump());
  return { run, code: exit.code, text: run.stdout.length ? `${run.stdout.join('\n')}\n` : '' };
}

/** Compares with test/golden/units/<name>.service (the version as a placeholder), or rewrites it with UPDATE=1. */
function golden(name: string, text: string): void {
  const file = path.join(GOLDEN, `${name}.service`);
  const normalized = text.replaceAll(`(sdwrap ${version})`, '(sdwrap VERSION)');
  if (UPDATE) {
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(file, normalized);
    return;
  }
  assert.equal(normalized, readFileSync(file, 'utf8'), `${file} differs (UPDATE=1 npm run test:process rewrites it)`);
}

const CASES: Array<{ name: string; args: string[] }> = [
  {
    // What the README shows: systemd 252, defaults but a start period.
    name: 'myapp',
    args: [
      'myapp',
      '--type',
      'notify',
      ...INSTALLED,
      '--http',
      'http://127.0.0.1:8080/healthz',
      '--start-period',
      '30s',
      '--',
      '/opt/app/server',
    ],
  },
  {
    // systemd 253+, a liveness and a readiness probe with timings of their own, a stop timeout that
    // outweighs the verdict bound in WatchdogSec=, a --config path made absolute.
    name: 'notify-reload',
    args: [
      'api.service',
      '--type',
      'notify-reload',
      ...INSTALLED,
      '--probe',
      'liveness:tcp:127.0.0.1:9000',
      '--probe',
      'readiness:http:http://127.0.0.1:9000/ready',
      '--interval',
      '500ms',
      '--timeout',
      '300ms',
      '--failure-threshold',
      '2',
      '--stop-timeout',
      '30s',
      '--log-format',
      'json',
      '--',
      '/opt/api/bin/api',
      '--listen',
      ':9000',
    ],
  },
  {
    // What apps commonly need relaxed, and values that need quoting and escaping.
    name: 'relaxed',
    args: [
      'shop',
      '--type',
      'notify',
      ...INSTALLED,
      '--user',
      'shop',
      '--writable',
      '/var/lib/shop',
      '--writable',
      '/srv/shop data',
      '--port-below-1024',
      '--environment',
      'NODE_ENV=production',
      '--environment',
      'GREETING=hello "world"',
      '--working-directory',
      '/tmp',
      '--description',
      'The shop (100% up)',
      '--http',
      'http://127.0.0.1:80/healthz',
      '--start-period',
      '1min',
      '--',
      '/usr/bin/node',
      '/srv/shop/server.js',
      '--motd',
      'costs $5 at 50% off',
    ],
  },
  {
    // A systemctl --user unit without probes: the watchdog then vouches for sdwrap alone.
    name: 'user-unit',
    args: ['notes', '--user-unit', '--type', 'notify', ...INSTALLED, '--stop-timeout', '5s', '--', '/opt/notes/serve'],
  },
];

for (const { name, args } of CASES) {
  test(`golden: ${name}`, async () => {
    const { run, code, text } = await unit(args);
    assert.equal(code, 0, run.dump());
    golden(name, text);
    // Every line of stderr is a warning about a path that is missing on this host, nothing else.
    for (const line of run.stderr)
      assert.match(line, /^sdwrap unit: warning: .* is not an? (executable|readable) file on this host/, run.dump());
  });
}

/** A directory holding a fake `systemctl` that prints the given version. */
function fakeSystemctl(version: string): string {
  const bin = path.join(dir, `systemctl-${version}`);
  mkdirSync(bin, { recursive: true });
  writeFileSync(path.join(bin, 'systemctl'), `#!/bin/sh\necho "systemd ${version} (${version}-1)"\necho "+PAM +AUDIT"\n`);
  chmodSync(path.join(bin, 'systemctl'), 0o755);
  return bin;
}

test('--type auto: Type=notify-reload from systemd 253 on, Type=notify with ExecReload= and RuntimeDirectory= before', async () => {
  for (const [systemd, type] of [
    ['252', 'notify'],
    ['253', 'notify-reload'],
    ['257', 'notify-reload'],
  ] as const) {
    const { run, code, text } = await unit(['app', ...INSTALLED, '--tcp', '127.0.0.1:1', '--', '/bin/sh'], {
      PATH: `${fakeSystemctl(systemd)}:${process.env.PATH}`,
    });
    assert.equal(code, 0, run.dump());
    assert.match(text, new RegExp(`^# systemd ${systemd} (has|has no) Type=notify-reload`, 'm'));
    assert.match(text, new RegExp(`^Type=${type}$`, 'm'));
    if (type === 'notify') {
      assert.match(text, /^ExecReload=\/usr\/bin\/node \S+ reload --timeout \S+$/m);
      assert.match(text, /^RuntimeDirectory=app$/m);
    } else {
      assert.doesNotMatch(text, /^(ExecReload|RuntimeDirectory)=/m);
    }
  }
});

test('paths: node and sdwrap as running (real path), the command looked up on PATH; --output to a file or a directory', async () => {
  const { run, code, text } = await unit(['app', '--type', 'notify', '--tcp', '127.0.0.1:1', '--', 'sh', '-c', 'exec true']);
  assert.equal(code, 0, run.dump());
  const exec = /^ExecStart=(.*)$/m.exec(text)![1]!;
  const sh = process.env
    .PATH!.split(':')
    .map((d) => path.join(d, 'sh'))
    .find((p) => {
      try {
        return realpathSync(p) !== '';
      } catch {
        return false;
      }
    })!;
  assert.equal(exec, `${process.execPath} ${realpathSync(SDWRAP_BIN)} --tcp 127.0.0.1:1 -- ${sh} -c "exec true"`);
  assert.match(text, new RegExp(`^ExecReload=${process.execPath} ${realpathSync(SDWRAP_BIN)} reload --timeout `, 'm'));

  const out = path.join(dir, 'out');
  mkdirSync(out, { recursive: true });
  const toDir = await unit(['svc', '--output', out, '--tcp', '127.0.0.1:1', '--', '/bin/sh']);
  assert.equal(toDir.code, 0, toDir.run.dump());
  assert.deepEqual(toDir.run.stdout, []);
  assert.match(
    toDir.run.stderr.join('\n'),
    new RegExp(`^sdwrap unit: wrote ${out}/svc\\.service; next: systemctl daemon-reload && systemctl enable --now svc\\.service$`, 'm'),
  );
  assert.match(readFileSync(path.join(out, 'svc.service'), 'utf8'), /^ExecStart=.* -- \/bin\/sh$/m);
  const toFile = await unit(['svc', '--output', path.join(out, 'other.service'), '--tcp', '127.0.0.1:1', '--', '/bin/sh']);
  assert.equal(toFile.code, 0, toFile.run.dump());
  assert.match(readFileSync(path.join(out, 'other.service'), 'utf8'), /^\[Service\]$/m);
});

test('a --config path is made absolute; secrets on the command line and paths under /home or /root get warnings', async () => {
  const config = path.join(dir, 'app.json');
  writeFileSync(config, JSON.stringify({ probes: [{ tcp: '127.0.0.1:1' }] }));
  const { run, code, text } = await unit([
    'app',
    ...INSTALLED,
    '--config',
    path.relative(REPO_ROOT, config),
    '--heartbeat-url',
    'https://hc.example/uuid-secret',
    '--http',
    'http://user:pw@127.0.0.1:1/',
    '--http-request-header',
    'Authorization: Bearer tok',
    '--environment',
    'API_TOKEN=abc',
    '--',
    '/root/app/server',
  ]);
  assert.equal(code, 0, run.dump());
  assert.match(text, new RegExp(`--config ${config} `));
  const warnings = run.stderr.join('\n');
  assert.match(warnings, /warning: --heartbeat-url is a secret and lands in the unit file/);
  assert.match(warnings, /warning: --http-request-header 'Authorization: …' lands in the unit file/);
  assert.match(warnings, /warning: the password in --http's URL lands in the unit file/);
  assert.match(warnings, /warning: --environment API_TOKEN=… looks like a secret/);
  assert.match(warnings, /warning: \/root\/app\/server is under a home directory, which ProtectHome=yes hides/);
  assert.doesNotMatch(warnings, /Bearer tok|uuid-secret|abc/);
});

test('usage errors, exit 2: the name missing, a command not on PATH, --no-systemd, conflicting options, bad values', async () => {
  const cases: Array<[string[], RegExp]> = [
    [[], /^sdwrap unit: the unit's name comes first/],
    [['--http', 'http://x/', '--', '/bin/sh'], /^sdwrap unit: the unit's name comes first/],
    [['bad/name', '--', '/bin/sh'], /^sdwrap unit: 'bad\/name' is not a unit name/],
    [['app', '--tcp', '127.0.0.1:1'], /^sdwrap unit: missing the command to run/],
    [
      ['app', '--', 'no-such-command-anywhere'],
      /^sdwrap unit: command 'no-such-command-anywhere' not found on PATH: give its absolute path/,
    ],
    [['app', '--no-systemd', '--', '/bin/sh'], /^sdwrap unit: --no-systemd does not belong in a unit/],
    [['app', '--user-unit', '--user', 'x', '--', '/bin/sh'], /^sdwrap unit: --user and --user-unit/],
    [['app', '--user-unit', '--port-below-1024', '--', '/bin/sh'], /^sdwrap unit: --port-below-1024 and --user-unit/],
    [['app', '--type', 'simple', '--', '/bin/sh'], /^sdwrap unit: --type expects one of auto\|notify\|notify-reload/],
    [['app', '--environment', 'not an assignment', '--', '/bin/sh'], /^sdwrap unit: --environment expects NAME=value/],
    [
      ['app', '--working-directory', '/no/such/dir', '--', '/bin/sh'],
      /^sdwrap unit: --working-directory \/no\/such\/dir is not a directory/,
    ],
    [['app', '--node', 'node', '--', '/bin/sh'], /^sdwrap unit: --node must be an absolute path/],
    [['app', '--interval', 'soon', '--', '/bin/sh'], /^sdwrap unit: --interval expects a time span/],
  ];
  for (const [args, message] of cases) {
    const { run, code } = await unit(args);
    assert.equal(code, 2, `${args.join(' ')}\n${run.dump()}`);
    assert.deepEqual(run.stdout, [], run.dump());
    assert.match(run.stderr.at(-1)!, message, run.dump());
    assert.match(run.stderr.at(-1)!, /\(see 'sdwrap unit --help'\)$/);
  }
});
