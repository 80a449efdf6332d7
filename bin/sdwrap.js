#!/usr/bin/env node
// Entry point: src/ is bundled into dist/sdwrap.cjs (npm run build), one CommonJS file for a fast start, and run
// here as a CommonJS module would be, with V8's code cache from the build (dist/sdwrap.cjs.cache) when it matches:
// compiling the bundle's start path is then skipped. This file is CommonJS too (bin/package.json): an ES module
// entry would start Node's ESM loader, which costs start-up time and memory and loads nothing sdwrap needs.
'use strict';
const { readFileSync } = require('node:fs');
const Module = require('node:module');
const path = require('node:path');
const { Script } = require('node:vm');

const BUNDLE = path.join(__dirname, '..', 'dist', 'sdwrap.cjs');

/** The code cache made from this very bundle (its first line, the build id, starts the file), if there is one. */
function matchingCache(buildLine) {
  let file;
  try {
    file = readFileSync(`${BUNDLE}.cache`);
  } catch {
    return undefined;
  }
  const header = Buffer.from(`${buildLine}\n`);
  return file.subarray(0, header.length).equals(header) ? file.subarray(header.length) : undefined;
}

/** Runs the bundle; returns its vm.Script (for build/code-cache.cjs) and build line. */
function runBundle() {
  const source = readFileSync(BUNDLE, 'utf8');
  const buildLine = source.slice(0, source.indexOf('\n'));
  const script = new Script(Module.wrap(source), { filename: BUNDLE, cachedData: matchingCache(buildLine) });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, Module.createRequire(BUNDLE), module, BUNDLE, path.dirname(BUNDLE));
  return { script, buildLine };
}

if (require.main === module) runBundle();
else module.exports = { runBundle, BUNDLE };
