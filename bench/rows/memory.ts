// Row 2: peak RSS (VmHWM) of sdwrap's own process, idling with an HTTP probe every second against the
// fixture server, against a bare `node -e "setInterval(()=>{},1000)"`, both sampled after the same time.
import path from 'node:path';
import { freePort } from '../../test/helpers/ports.js';
import { type BenchOptions, type Row, sleep } from '../lib/row.js';
import { readMem } from '../lib/proc.js';
import { Proc, startSdwrap, TEST_FIXTURES } from '../lib/spawn.js';
import { round } from '../lib/stats.js';

export async function memoryRow({ quick, say }: BenchOptions): Promise<Row> {
  const settleMs = quick ? 3000 : 5000;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/healthz`;
  say(`memory: sdwrap --http ${url} --interval 1s and a bare node, sampled after ${settleMs / 1000} s`);
  const started = Date.now();
  const sd = startSdwrap(['--http', url, '--interval', '1s', '--timeout', '1s', '--', 'node', path.join(TEST_FIXTURES, 'server.mjs'), '--port', String(port)]);
  const bare = new Proc(process.execPath, ['-e', 'setInterval(()=>{},1000)']);
  try {
    await sd.waitLog('ready', 10_000);
    await sleep(Math.max(0, started + settleMs - Date.now()));
    const probes = Math.floor((Date.now() - started) / 1000);
    const sdMem = readMem(sd.pid);
    const bareMem = readMem(bare.pid);
    if (!sdMem || !bareMem) throw new Error('a process under measurement is gone');
    const ratio = sdMem.vmHWM / bareMem.vmHWM;
    return {
      id: 'memory',
      name: 'Memory: peak RSS (VmHWM) of sdwrap idling with an HTTP probe every 1 s',
      unit: 'MiB',
      sdwrap: round(sdMem.vmHWM / 1024, 1),
      baselines: [{ name: 'node -e "setInterval(()=>{},1000)"', value: round(bareMem.vmHWM / 1024, 1) }],
      ratio: round(ratio, 2),
      target: '≤ 1.3x bare node',
      pass: ratio <= 1.3,
      notes: [`sampled after ${settleMs / 1000} s (~${probes} probes); sdwrap's own process only; VmRSS now: sdwrap ${round(sdMem.vmRSS / 1024, 1)} MiB, node ${round(bareMem.vmRSS / 1024, 1)} MiB`],
      detail: { settleMs, sdwrapKiB: sdMem, bareNodeKiB: bareMem },
    };
  } finally {
    sd.kill('SIGTERM');
    bare.kill('SIGTERM');
    await Promise.all([sd.waitExit(15_000), bare.waitExit(5000)]);
  }
}
