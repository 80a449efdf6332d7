// Peak memory. sdwrap with one HTTP probe every 1 s, and sdwrap with one TCP probe every 1 s (each
// against test/fixtures/server.mjs, its child), beside a bare `node -e "setInterval(()=>{},1000)"`, all three
// running at once for 60 s; then VmHWM (the peak resident set) of each one's own process.
import path from 'node:path';
import { freePort } from '../../test/helpers/ports.js';
import { type BenchOptions, type Row, sleep } from '../lib/row.js';
import { readMem } from '../lib/proc.js';
import { Proc, startSdwrap, TEST_FIXTURES } from '../lib/spawn.js';
import { round } from '../lib/stats.js';

const BARE = 'node -e "setInterval(()=>{},1000)"';

async function probed(kind: 'http' | 'tcp'): Promise<Proc> {
  const port = await freePort();
  const target = kind === 'http' ? ['--http', `http://127.0.0.1:${port}/healthz`] : ['--tcp', `127.0.0.1:${port}`];
  // The start period only keeps a slow start of the server (a loaded machine) from ending the run.
  return startSdwrap([
    ...target,
    '--interval',
    '1s',
    '--timeout',
    '1s',
    '--start-period',
    '30s',
    '--',
    'node',
    path.join(TEST_FIXTURES, 'server.mjs'),
    '--port',
    String(port),
  ]);
}

export async function memoryRows({ quick, say }: BenchOptions): Promise<Row[]> {
  const runMs = quick ? 15_000 : 60_000;
  say(`memory: sdwrap --http and sdwrap --tcp, one probe every 1 s, beside a bare node, for ${runMs / 1000} s`);
  const started = Date.now();
  const http = await probed('http');
  const tcp = await probed('tcp');
  const bare = new Proc(process.execPath, ['-e', 'setInterval(()=>{},1000)']);
  try {
    await Promise.all([http.waitLog('ready', 30_000), tcp.waitLog('ready', 30_000)]);
    await sleep(Math.max(0, started + runMs - Date.now()));
    const seconds = Math.round((Date.now() - started) / 1000);
    const bareMem = readMem(bare.pid);
    const rows: Row[] = [];
    for (const [id, name, sd, limit] of [
      ['memory-http', 'Memory: peak RSS (VmHWM) of sdwrap with one HTTP probe every 1 s', http, 1.2],
      ['memory-tcp', 'Memory: peak RSS (VmHWM) of sdwrap with one TCP probe every 1 s', tcp, 1.15],
    ] as const) {
      const mem = readMem(sd.pid);
      if (!mem || !bareMem) throw new Error('a process under measurement is gone');
      const ratio = mem.vmHWM / bareMem.vmHWM;
      rows.push({
        id,
        name,
        unit: 'MiB',
        sdwrap: round(mem.vmHWM / 1024, 1),
        baselines: [{ name: BARE, value: round(bareMem.vmHWM / 1024, 1) }],
        ratio: round(ratio, 3),
        target: `≤ ${limit}x bare node`,
        pass: ratio <= limit,
        notes: [
          `${seconds} s, all three at once (~${seconds} probes each); sdwrap's own process only; VmRSS at the end: sdwrap ${round(mem.vmRSS / 1024, 1)} MiB, node ${round(bareMem.vmRSS / 1024, 1)} MiB`,
        ],
        detail: { runMs, sdwrapKiB: mem, bareNodeKiB: bareMem },
      });
    }
    return rows;
  } finally {
    for (const p of [http, tcp, bare]) p.kill('SIGTERM');
    await Promise.all([http.waitExit(15_000), tcp.waitExit(15_000), bare.waitExit(5000)]);
  }
}
