#!/usr/bin/env node
// EXPERIMENT, not sdwrap: the least a Node process does to relay a child's stdout: spawn it with a pipe,
// write every chunk to our stdout with writeSync, no line scanning. bench's log-relay row uses it as the
// floor a Node relay can reach, beside `| cat` and the child writing directly.
//   node relay-floor.mjs <command> [args...]
import { spawn } from 'node:child_process';
import { writeSync } from 'node:fs';

const child = spawn(process.argv[2], process.argv.slice(3), { stdio: ['ignore', 'pipe', 'inherit'] });
child.stdout.on('data', (chunk) => {
  let off = 0;
  while (off < chunk.length) off += writeSync(1, chunk, off);
});
child.on('close', (code) => process.exit(code ?? 1));
