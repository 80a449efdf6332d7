// Makes dist/sdwrap.cjs.cache: V8's code cache for the bundle, taken after a run of `sdwrap -- true`, so it holds
// the compiled code of the start path (argument parsing, the logger, the spawn, the exit), not just the top level.
// The file starts with the bundle's first line (its build id); bin/sdwrap.js uses it only when they agree, and V8
// itself rejects it under another Node version or other V8 flags.
'use strict';
const { writeFileSync } = require('node:fs');
const path = require('node:path');

const bin = path.join(__dirname, '..', 'bin', 'sdwrap.js');
// V8 writes its flags' hash into the cache and rejects a cache made under other flags: sdwrap sets some for its
// run (src/v8-flags.ts), which a fresh process has not yet when it loads the bundle. Here they stay as they are.
require('node:v8').setFlagsFromString = () => {};
process.argv = [process.argv[0], bin, '--', 'true'];
const { runBundle, BUNDLE } = require(bin);
const { script, buildLine } = runBundle();
process.on('exit', () => {
  writeFileSync(`${BUNDLE}.cache`, Buffer.concat([Buffer.from(`${buildLine}\n`), script.createCachedData()]));
});
