// CPU seconds for 1,000 HTTP probes: sdwrap (--interval 10ms, its own process only; the app is its child and not
// counted) against the classic watchdog script, a bash loop of `curl -fsS -o /dev/null URL && systemd-notify
// --no-block WATCHDOG=1` (bash and every curl and systemd-notify it forked and reaped). Both probe the counting
// server, which counts the requests it answered and closes each connection; sdwrap runs with NOTIFY_SOCKET and
// WATCHDOG_USEC set, as under systemd, and the loop's systemd-notify sends to the same listener.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { NotifyListener } from '../../test/helpers/notify-listener.js';
import { freePort } from '../../test/helpers/ports.js';
import { type BenchOptions, type Row, notMeasured } from '../lib/row.js';
import { ownCpu, parseCpu, readCpu, totalCpu, type CpuTimes } from '../lib/proc.js';
import { FIXTURES, Proc, startSdwrap } from '../lib/spawn.js';
import { round } from '../lib/stats.js';

const COUNTING_SERVER = path.join(FIXTURES, 'counting-server.mjs');

const LOOP = `
url=$1; n=$2; notify=$3; ok=0
for ((i = 0; i < n; i++)); do
  if curl -fsS -o /dev/null --max-time 2 "$url"; then
    if [ "$notify" = 1 ]; then systemd-notify --no-block WATCHDOG=1; fi
    ok=$((ok + 1))
  fi
done
read -r stat < /proc/$$/stat
echo "ok=$ok"
echo "stat $stat"
`;

function have(command: string): boolean {
  const r = spawnSync(command, ['--version'], { stdio: 'ignore', timeout: 5000 });
  return !r.error;
}

const hitOf = (text: string) => {
  const m = /^hit (\d+)$/.exec(text);
  return m ? Number(m[1]) : undefined;
};

interface Measured {
  probes: number;
  cpu: number;
  wallMs: number;
  times: CpuTimes;
}

export async function measureSdwrap(
  probes: number,
  listener: NotifyListener,
  say: (t: string) => void,
): Promise<Measured & { notifier: string | undefined; watchdogPings: number; appCpuWholeRun: number }> {
  const port = await freePort();
  const warmup = 50;
  const sd = startSdwrap(
    [
      '--http',
      `http://127.0.0.1:${port}/healthz`,
      '--interval',
      '10ms',
      '--timeout',
      '500ms',
      '--start-period',
      '10s',
      '--stop-timeout',
      '1s',
      '--',
      'node',
      COUNTING_SERVER,
      '--port',
      String(port),
    ],
    { NOTIFY_SOCKET: listener.address, WATCHDOG_USEC: '2000000' },
  );
  try {
    const pingsBefore = listener.all('WATCHDOG').length;
    const start = await sd.waitLine(
      'stdout',
      (l) => {
        const h = hitOf(l.text);
        return h !== undefined && h >= warmup ? { hit: h, at: l.at } : undefined;
      },
      30_000,
      `hit ${warmup}`,
    );
    const cpu0 = readCpu(sd.pid)!;
    const mono0 = process.hrtime.bigint();
    say(`probe cost: sdwrap warmed up (${start.hit} probes), measuring ${probes} more`);
    const endHit = await sd.waitLine(
      'stdout',
      (l) => {
        const h = hitOf(l.text);
        return h !== undefined && h >= start.hit + probes ? h : undefined;
      },
      120_000,
      `hit ${start.hit + probes}`,
    );
    const cpu1 = readCpu(sd.pid)!;
    const wallMs = Number(process.hrtime.bigint() - mono0) / 1e6;
    const spawned = sd.stderr.find((l) => l.json?.msg === 'spawned')?.json;
    const appPid = typeof spawned?.childPid === 'number' ? spawned.childPid : undefined;
    const appCpu = appPid ? readCpu(appPid) : undefined;
    const notifier = sd.stderr.find((l) => l.json?.msg === 'notifier in use')?.json?.notifier as string | undefined;
    const diff: CpuTimes = {
      utime: cpu1.utime - cpu0.utime,
      stime: cpu1.stime - cpu0.stime,
      cutime: cpu1.cutime - cpu0.cutime,
      cstime: cpu1.cstime - cpu0.cstime,
    };
    return {
      probes: endHit - start.hit,
      // Own CPU plus any reaped helper processes (systemd-notify, exec probes); the app is alive, so not in cutime.
      cpu: totalCpu(diff),
      wallMs,
      times: diff,
      notifier,
      watchdogPings: listener.all('WATCHDOG').length - pingsBefore,
      appCpuWholeRun: appCpu ? ownCpu(appCpu) : Number.NaN,
    };
  } finally {
    sd.kill('SIGTERM');
    await sd.waitExit(15_000);
  }
}

async function measureLoop(probes: number, listener: NotifyListener, notify: boolean): Promise<Measured & { ok: number }> {
  const port = await freePort();
  const server = new Proc(process.execPath, [COUNTING_SERVER, '--port', String(port)]);
  try {
    await server.waitStdout(/^counting-server listening/, 10_000);
    const mono0 = process.hrtime.bigint();
    const loop = new Proc('bash', ['-c', LOOP, 'watchdog-loop', `http://127.0.0.1:${port}/healthz`, String(probes), notify ? '1' : '0'], {
      env: { NOTIFY_SOCKET: listener.address },
    });
    const exit = await loop.waitExit(150_000);
    const wallMs = Number(exit.mono - mono0) / 1e6;
    const ok = Number(/^ok=(\d+)/.exec(loop.stdout.find((l) => l.text.startsWith('ok='))?.text ?? '')?.[1]);
    const stat = loop.stdout.find((l) => l.text.startsWith('stat '))?.text.slice(5);
    if (exit.code !== 0 || !stat) throw new Error(`watchdog loop failed (exit ${exit.code})\n${loop.tail()}`);
    const hits = server.stdout.filter((l) => hitOf(l.text) !== undefined).length;
    const times = parseCpu(stat);
    return { probes: hits, ok, cpu: totalCpu(times), wallMs, times };
  } finally {
    server.kill('SIGTERM');
    await server.waitExit(5000);
  }
}

export async function probeCostRow({ quick, say }: BenchOptions): Promise<Row> {
  const name = 'Probe cost: CPU seconds per 1,000 HTTP probes';
  const target = '≤ 0.05x (1/20) the bash loop';
  if (!have('curl'))
    return notMeasured('probe-cost', name, 's', target, 'not measured: curl is not installed (the baseline loop needs it)');
  const notify = have('systemd-notify');
  const probes = quick ? 200 : 1000;
  const listener = await NotifyListener.start();
  try {
    say(`probe cost: sdwrap, ${probes} probes at --interval 10ms`);
    const sd = await measureSdwrap(probes, listener, say);
    say(`probe cost: bash loop, ${probes} x curl${notify ? ' + systemd-notify' : ''}`);
    const loop = await measureLoop(probes, listener, notify);
    const per1000 = (m: Measured) => (m.cpu / m.probes) * 1000;
    const sdPer = per1000(sd);
    const loopPer = per1000(loop);
    const ratio = sdPer / loopPer;
    const notes = [
      `sdwrap: ${sd.probes} probes in ${round(sd.wallMs / 1000, 1)} s after 50 warm-up probes, CPU user ${round(sd.times.utime, 2)} s + sys ${round(sd.times.stime, 2)} s` +
        ` (+ reaped helpers ${round(sd.times.cutime + sd.times.cstime, 2)} s), notifier ${sd.notifier ?? 'none'}, ${sd.watchdogPings} WATCHDOG=1 sent (every WatchdogSec/2 = 1 s)`,
      `loop: ${loop.probes} requests in ${round(loop.wallMs / 1000, 1)} s, bash ${round(loop.times.utime + loop.times.stime, 2)} s + children ${round(loop.times.cutime + loop.times.cstime, 2)} s` +
        (notify ? `, ${loop.ok} x systemd-notify --no-block WATCHDOG=1` : ', systemd-notify missing: curl only'),
    ];
    if (quick) notes.push(`BENCH_QUICK: ${probes} probes, scaled to 1,000`);
    return {
      id: 'probe-cost',
      name,
      unit: 's',
      sdwrap: round(sdPer, 3),
      baselines: [{ name: notify ? 'bash loop: curl && systemd-notify --no-block' : 'bash loop: curl', value: round(loopPer, 3) }],
      ratio: round(ratio, 3),
      target,
      pass: ratio <= 0.05,
      notes,
      detail: { sdwrap: sd, loop },
    };
  } finally {
    await listener.close();
  }
}
