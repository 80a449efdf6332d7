#!/usr/bin/env node
// EXPERIMENT, not sdwrap (CommonJS twin of floor.mjs): the least a Node supervisor does for `-- true`, with no dependencies: parse argv
// with node:util parseArgs, one JSON log line per event written synchronously, spawn the child in its own
// process group, wait for it, check its group is empty (kill -0, no /proc scan), exit with its status.
// bench/profile-startup.ts times it as the floor sdwrap's start-up could reach on Node.
const { spawn } = require('node:child_process');
const { writeSync } = require('node:fs');
const { parseArgs } = require('node:util');

const { positionals } = parseArgs({
  options: { http: { type: 'string' }, interval: { type: 'string' }, 'log-level': { type: 'string' } },
  allowPositionals: true,
});
const log = (level, msg, fields = {}) => writeSync(2, `${JSON.stringify({ level, time: Date.now(), ...fields, msg })}\n`);
const [command, ...args] = positionals;
const child = spawn(command, args, { stdio: 'inherit', detached: true });
log('info', 'spawned', { pid: child.pid, command: positionals });
log('info', 'ready', { detail: 'no probe configured, app started' });
child.once('exit', (code, signal) => {
  log('info', 'child exited', signal ? { signal } : { code });
  try {
    process.kill(-child.pid, 0);
  } catch {
    // the group is empty: nothing left to kill
  }
  process.exit(code ?? 1);
});
