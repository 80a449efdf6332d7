// Bundles src/ into one CommonJS file for start-up speed: node parses one file instead of resolving ~25 ESM
// modules, and CommonJS loads faster than ESM. Dependencies that only some runs need (undici, execa, zod, jsonc-parser,
// pino-pretty, prom-client, the sd-notify addon) stay external and are loaded when first used. Then V8's code cache for the
// bundle is made (build/code-cache.cjs), which bin/sdwrap.js uses when it matches this very build.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

/** Stand-ins, for pino and its sonic-boom only, for modules whose loading costs more than what sdwrap uses of them. */
const STUBS = {
  // pino.transport() runs a transport in a worker thread; sdwrap writes its own stderr and never asks for one.
  'thread-stream': "module.exports = class ThreadStream { constructor() { throw new Error('pino transports are not part of sdwrap') } };",
  // pino asks only whether it runs on the main thread, where sdwrap always does.
  worker_threads: 'module.exports = { isMainThread: true };',
  // sonic-boom checks one argument with node:assert, whose loading also sets up process.stderr for its colours.
  assert: 'module.exports = function assert(ok, message) { if (!ok) throw new Error(message); };',
};

/** Leaves pino's transport machinery (and with it worker_threads) and node:assert out of every run. */
const lighterPino = {
  name: 'lighter-pino',
  setup(b) {
    b.onResolve({ filter: /^(thread-stream|worker_threads|assert)$/ }, (args) =>
      /[\\/]node_modules[\\/](pino|sonic-boom)[\\/]/.test(args.importer) ? { path: args.path, namespace: 'stub' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'stub' }, (args) => ({ contents: STUBS[args.path], loader: 'js' }));
  },
};

const OUT = 'dist/sdwrap.cjs';
rmSync(`${OUT}.cache`, { force: true });
await build({
  entryPoints: ['src/cli.ts'],
  outfile: OUT,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: ['undici', 'execa', 'zod', 'jsonc-parser', 'pino-pretty', 'prom-client', 'sd-notify', 'node-unix-socket'],
  inject: ['build/import-meta-url.cjs'],
  define: { 'import.meta.url': 'importMetaUrl' },
  // The first line names this build: a code cache is used only with the bundle it was made from.
  banner: { js: `// sdwrap build ${randomUUID()}` },
  plugins: [lighterPino],
  // Whitespace and syntax only: names stay, so a stack trace still reads.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});

const cache = spawnSync(process.execPath, ['build/code-cache.cjs'], {
  stdio: ['ignore', 'ignore', 'pipe'],
  encoding: 'utf8',
  timeout: 60_000,
});
if (cache.status !== 0) {
  process.stderr.write(`build: no code cache made (sdwrap starts without it): ${(cache.stderr || cache.error?.message || '').trim()}\n`);
}
