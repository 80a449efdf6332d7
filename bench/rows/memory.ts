// Peak memory. sdwrap with one HTTP probe every 1 s, and sdwrap with one TCP probe every 1 s (each
// against test/fixtures/server.mjs, its child), beside a bare `node -e "setInterval(()=>{},1000)"`, and
// sdwrap with the same HTTP probe and --metrics, scraped every 1 s, all four running at once for 60 s; then
// VmHWM (the peak resident set) of each one's own process.
import path from 'node:path';
import { scrape } from '../../test/helpers/metrics.js';
import { freePort } from '../../test/helpers/ports.js';
import { type BenchOptions, type Row, sleep } from '../lib/row.js';
import { readMem } from '../lib/proc.js';
import { Proc, startSdwrap, TEST_FIXTURES } from '../lib/spawn.js';
import { round } from '../lib/stats.js';

const BARE = 'node -e "setInterval(()=>{},1000)"';

async function probed(kind: 'http' | 'tcp', extra: string[] = []): Promise<Proc> {
  const port = await freePort();
  const target = kind === 'http' ? ['--http', `http://127.0.0.1:${port}/healthz`] : ['--tcp', `127.0.0.1:${port}`];
  // The start period only keeps a slow start of the server (a loaded machine) from ending the run.
  return startSdwrap([
    ...extra,
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
  say(
    `memory: sdwrap --http, --tcp and --http --metrics (scraped every 1 s), one probe every 1 s, beside a bare node, for ${runMs / 1000} s`,
  );
  const started = Date.now();
  const http = await probed('http');
  const tcp = await probed('tcp');
  const metricsPort = await freePort();
  const metrics = await probed('http', ['--metrics', String(metricsPort)]);
  const bare = new Proc(process.execPath, ['-e', 'setInterval(()=>{},1000)']);
  try {
    await Promise.all([http.waitLog('ready', 30_000), tcp.waitLog('ready', 30_000), metrics.waitLog('ready', 30_000)]);
    // A scrape a second, as a Prometheus with scrape_interval: 1s (15 s is its default): bounded by the run's length.
    let scrapes = 0;
    while (Date.now() < started + runMs) {
      const { status } = await scrape(metricsPort);
      if (status !== 200) throw new Error(`--metrics answered ${status}`);
      scrapes++;
      await sleep(Math.min(1000, Math.max(0, started + runMs - Date.now())));
    }
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
          `${seconds} s, all four at once (~${seconds} probes each); sdwrap's own process only; VmRSS at the end: sdwrap ${round(mem.vmRSS / 1024, 1)} MiB, node ${round(bareMem.vmRSS / 1024, 1)} MiB`,
        ],
        detail: { runMs, sdwrapKiB: mem, bareNodeKiB: bareMem },
      });
    }
    const withMetrics = readMem(metrics.pid);
    const without = readMem(http.pid);
    if (!withMetrics || !without || !bareMem) throw new Error('a process under measurement is gone');
    const extraMiB = (withMetrics.vmHWM - without.vmHWM) / 1024;
    rows.push({
      id: 'memory-metrics',
      name: 'Memory: peak RSS (VmHWM) of sdwrap with one HTTP probe every 1 s and --metrics, scraped every 1 s',
      unit: 'MiB',
      sdwrap: round(withMetrics.vmHWM / 1024, 1),
      baselines: [
        { name: 'the same sdwrap without --metrics', value: round(without.vmHWM / 1024, 1) },
        { name: BARE, value: round(bareMem.vmHWM / 1024, 1) },
      ],
      ratio: round(withMetrics.vmHWM / without.vmHWM, 3),
      target: '≤ +3 MiB over sdwrap without --metrics',
      pass: extraMiB <= 3,
      notes: [`+${round(extraMiB, 1)} MiB for --metrics; ${scrapes} scrapes; VmRSS at the end: ${round(withMetrics.vmRSS / 1024, 1)} MiB`],
      detail: { runMs, scrapes, withMetricsKiB: withMetrics, withoutKiB: without },
    });
    return rows;
  } finally {
    for (const p of [http, tcp, metrics, bare]) p.kill('SIGTERM');
    await Promise.all([http.waitExit(15_000), tcp.waitExit(15_000), metrics.waitExit(15_000), bare.waitExit(5000)]);
  }
}
