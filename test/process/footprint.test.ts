// What a run loads: each optional part (undici for --ws, execa for --exec, zod and jsonc-parser for --config,
// prom-client for --metrics, pino-pretty, the https/tls stack) only when the run uses it, traced inside sdwrap's
// own process; and the code cache that spares each start compiling the bundle.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Script } from 'node:vm';
import { REPO_ROOT, runSdwrap, stopAll } from '../helpers/run-sdwrap.js';
import { freePort } from '../helpers/ports.js';

const DIR = mkdtempSync(join(tmpdir(), 'sdwrap-footprint-'));
const TRACE = join(REPO_ROOT, 'test/fixtures/load-trace.cjs');
after(async () => {
  await stopAll();
  rmSync(DIR, { recursive: true, force: true });
});

const OPTIONAL = [
  'undici',
  'execa',
  'zod',
  'jsonc-parser',
  'pino-pretty',
  'sd-notify',
  'https',
  'tls',
  'worker_threads',
  'perf_hooks',
  'readline',
  'internal/modules/esm/module_job',
  // --metrics: prom-client's classes from their own files, never its index (a push client, OpenTelemetry).
  'prom-client/lib/registry',
  'prom-client',
  '@opentelemetry/api',
];

/** Runs sdwrap with `args` (its app exits after a moment) and returns the modules its own process loaded. */
async function loaded(name: string, args: string[]): Promise<Set<string>> {
  const trace = join(DIR, `${name}.txt`);
  const run = runSdwrap(['--start-period', '10s', ...args, '--', 'sleep', '0.3'], {
    env: { NODE_OPTIONS: `--require ${TRACE}`, SDWRAP_LOAD_TRACE: trace },
  });
  const exit = await run.waitForExit(15_000);
  assert.equal(exit.code, 0, run.dump());
  return new Set(readFileSync(trace, 'utf8').split('\n'));
}

test('each optional part is loaded by the runs that use it, and by no other', async () => {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const config = join(DIR, 'config.json');
  writeFileSync(config, JSON.stringify({ probes: [{ tcp: `127.0.0.1:${port}` }] }));
  const cases: Array<[string, string[], string[]]> = [
    ['no probe', [], []],
    ['--tcp', ['--tcp', `127.0.0.1:${port}`], []],
    ['--http', ['--http', `http://127.0.0.1:${port}/`], []],
    ['--https', ['--http', `https://127.0.0.1:${port}/`], ['https', 'tls']],
    // execa is an ES module, required through Node's ESM loader.
    ['--exec', ['--exec', 'true'], ['execa', 'internal/modules/esm/module_job']],
    // undici loads tls, worker_threads and perf_hooks itself.
    ['--ws', ['--ws', `ws://127.0.0.1:${port}/`], ['undici', 'tls', 'worker_threads', 'perf_hooks']],
    ['--config', ['--config', config], ['zod', 'jsonc-parser']],
    // pino-pretty (outside the bundle) brings its own worker_threads.
    ['pretty logs', ['--log-format', 'pretty'], ['pino-pretty', 'worker_threads']],
    ['--watch-log', ['--watch-log', 'deadline has elapsed'], []],
    ['--metrics', ['--metrics', String(metricsPort)], ['prom-client/lib/registry']],
  ];
  for (const [name, args, expected] of cases) {
    const modules = await loaded(name.replace(/\W+/g, '-'), args);
    assert.deepEqual(
      OPTIONAL.filter((m) => modules.has(m)),
      expected,
      name,
    );
  }
});

test("the build's code cache is accepted by a fresh node (same bundle, same V8 flags)", () => {
  const bundle = join(REPO_ROOT, 'dist/sdwrap.cjs');
  const source = readFileSync(bundle, 'utf8');
  const cache = readFileSync(`${bundle}.cache`);
  const header = Buffer.from(`${source.slice(0, source.indexOf('\n'))}\n`);
  assert.ok(cache.subarray(0, header.length).equals(header), 'the cache names this build');
  const script = new Script(Module.wrap(source), { filename: bundle, cachedData: cache.subarray(header.length) });
  assert.equal(script.cachedDataRejected, false);
});
