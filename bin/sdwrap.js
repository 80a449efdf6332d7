#!/usr/bin/env node
// Entry point: src/ is bundled into dist/sdwrap.cjs (npm run build), one CommonJS file for a fast start.
// This file is CommonJS too (bin/package.json): an ES module entry would start Node's ESM loader, which
// costs start-up time and memory and loads nothing sdwrap needs.
'use strict';
require('../dist/sdwrap.cjs');
