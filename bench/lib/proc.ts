// /proc readers: CPU time and peak memory of one process (Linux only).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clkTck: number | undefined;

/** Clock ticks per second (getconf CLK_TCK; 100 on practically every Linux). */
export function clockTicks(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

export interface CpuTimes {
  /** Seconds. */
  utime: number;
  stime: number;
  /** Reaped, waited-for children (seconds). */
  cutime: number;
  cstime: number;
}

/** Parses utime, stime, cutime, cstime (fields 14-17 of /proc/PID/stat) into seconds. */
export function parseCpu(stat: string): CpuTimes {
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state): field N is f[N - 3].
  const tck = clockTicks();
  return {
    utime: Number(f[11]) / tck,
    stime: Number(f[12]) / tck,
    cutime: Number(f[13]) / tck,
    cstime: Number(f[14]) / tck,
  };
}

export function readCpu(pid: number): CpuTimes | undefined {
  try {
    return parseCpu(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

export function ownCpu(t: CpuTimes): number {
  return t.utime + t.stime;
}

export function totalCpu(t: CpuTimes): number {
  return t.utime + t.stime + t.cutime + t.cstime;
}

export interface MemStatus {
  /** Peak resident set, KiB. */
  vmHWM: number;
  /** Current resident set, KiB. */
  vmRSS: number;
}

/** VmHWM and VmRSS from /proc/PID/status, in KiB. */
export function readMem(pid: number): MemStatus | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const get = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { vmHWM: get('VmHWM'), vmRSS: get('VmRSS') };
}
