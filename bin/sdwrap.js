#!/usr/bin/env node
// Entry point: src/ is bundled into dist/sdwrap.cjs (npm run build), one CommonJS file for a fast start.
// require(), not import: importing CommonJS from ESM runs a lexer over the whole bundle first.
import { createRequire } from 'node:module';

createRequire(import.meta.url)('../dist/sdwrap.cjs');
