#!/usr/bin/env node
// The demo app: an HTTP server that starts slowly, serves for a while, then fails the way real services
// do. Lives alternate: the 1st, 3rd, ... hang (process alive, event loop stuck, /healthz silent); the
// 2nd, 4th, ... crash. It counts its lives in a file keyed by its parent (sdwrap), so each restart
// picks the next failure. Plain Node, no dependencies.
//
//   node examples/flaky-server.mjs [--port 8787] [--start-ms 2000] [--fail-after-ms 8000]
import http from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const port = opt('port', 8787);
const startMs = opt('start-ms', 2000);
const failAfterMs = opt('fail-after-ms', 8000);

const livesFile = join(tmpdir(), `sdwrap-demo-lives-${process.ppid}`);
let life = 1;
try {
  life = Number(readFileSync(livesFile, 'utf8')) + 1;
} catch {
  // first life
}
writeFileSync(livesFile, String(life));
const failure = life % 2 === 1 ? 'hang' : 'crash';

const say = (text) => process.stdout.write(`[demo app, life ${life}] ${text}\n`);
const bootedAt = Date.now();
const server = http.createServer((req, res) => {
  res.setHeader('connection', 'close');
  if (req.url !== '/healthz') return res.writeHead(404).end('not found\n');
  if (Date.now() - bootedAt < startMs) return res.writeHead(503).end('starting\n');
  res.writeHead(200).end('ok\n');
});
server.listen(port, '127.0.0.1', () => {
  say(`listening on http://127.0.0.1:${port}, warming up for ${startMs} ms; will ${failure} in ${(startMs + failAfterMs) / 1000}s`);
});
setTimeout(() => {
  if (failure === 'hang') {
    say('hanging now: the process stays alive but stops answering');
    for (;;); // a deadlocked event loop
  }
  say('crashing now');
  process.exit(3);
}, startMs + failAfterMs);
process.on('SIGTERM', () => {
  say('got SIGTERM, shutting down');
  server.close(() => process.exit(0));
});
