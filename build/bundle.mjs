// Bundles src/ into one CommonJS file for start-up speed: node parses one file instead of resolving ~25 ESM
// modules, and CommonJS loads faster than ESM. Dependencies that only some runs need (undici, execa, zod, jsonc-parser,
// pino-pretty, the sd-notify addon) stay external and are loaded when first used.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/cli.ts'],
  outfile: 'dist/sdwrap.cjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: ['undici', 'execa', 'zod', 'jsonc-parser', 'pino-pretty', 'sd-notify'],
  inject: ['build/import-meta-url.cjs'],
  define: { 'import.meta.url': 'importMetaUrl' },
  // Whitespace and syntax only: names stay, so a stack trace still reads.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});
