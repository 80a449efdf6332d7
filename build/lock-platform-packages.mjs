// Completes package-lock.json for node-unix-socket's per-platform packages. node-unix-socket names seven of
// them as optional dependencies, but the registry serves only some (linux x64), and npm then leaves the rest
// out of the lock, where `npm ci` finds them missing and refuses to install. Each one is written in, marked
// with its platform, so `npm ci` skips it wherever it does not apply. Run after any `npm install` that
// rewrites the lock: `node build/lock-platform-packages.mjs`.
import { readFileSync, writeFileSync } from 'node:fs';

const LOCK = new URL('../package-lock.json', import.meta.url);
const PLATFORMS = {
  'darwin-arm64': { os: ['darwin'], cpu: ['arm64'] },
  'darwin-x64': { os: ['darwin'], cpu: ['x64'] },
  'linux-arm-gnueabihf': { os: ['linux'], cpu: ['arm'], libc: ['glibc'] },
  'linux-arm64-gnu': { os: ['linux'], cpu: ['arm64'], libc: ['glibc'] },
  'linux-arm64-musl': { os: ['linux'], cpu: ['arm64'], libc: ['musl'] },
  'linux-x64-gnu': { os: ['linux'], cpu: ['x64'], libc: ['glibc'] },
  'linux-x64-musl': { os: ['linux'], cpu: ['x64'], libc: ['musl'] },
};

const lock = JSON.parse(readFileSync(LOCK, 'utf8'));
const parent = lock.packages['node_modules/node-unix-socket'];
if (!parent) throw new Error('node-unix-socket is not in package-lock.json');
let added = 0;
for (const [platform, fields] of Object.entries(PLATFORMS)) {
  const key = `node_modules/node-unix-socket-${platform}`;
  if (lock.packages[key]) continue;
  lock.packages[key] = { version: parent.version, ...fields, license: 'MIT', optional: true };
  added++;
}
const sorted = Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0));
lock.packages = Object.fromEntries(sorted);
writeFileSync(LOCK, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`package-lock.json: ${added} platform package(s) of node-unix-socket written in`);
