#!/usr/bin/env node
// Entry point: src/ is bundled into dist/sdwrap.cjs (npm run build), one CommonJS file for a fast start.
// require(), not import: importing CommonJS from ESM runs a lexer over the whole bundle first.
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';

// undici parses HTTP with a WebAssembly module; V8's optimising tier-up of it costs ~35 MiB of peak
// memory for no gain at one probe a second. Liftoff's baseline code is plenty (see bench/README.md).
setFlagsFromString('--liftoff-only');
createRequire(import.meta.url)('../dist/sdwrap.cjs');
