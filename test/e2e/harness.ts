/**
 * End-to-end harness: boots a real systemd (Debian bookworm, minbase) in a
 * systemd-nspawn container and drives it with nsenter.
 *
 * - The root file system is debootstrapped once and cached under
 *   /var/cache/sdwrap-e2e/bookworm-v<ROOTFS_VERSION> (built into a .tmp dir and
 *   renamed, so a failed build is never cached). Bump ROOTFS_VERSION when the
 *   package list changes.
 * - Each run boots that root with `--volatile=overlay`: the cached tree is
 *   mounted read-only under a tmpfs overlay, so nothing a run writes reaches the
 *   cache and nothing has to be copied (measured here: ~2 s to "running",
 *   against ~4 s for `--ephemeral`, which copies the tree on ext4).
 * - The repository the tests run from is bound read-only at /opt/sdwrap, and
 *   the host's node binary at /usr/bin/node (Debian bookworm libc on both sides).
 * - `--private-network`: the container has its own loopback, so the fixture's
 *   ports never collide with the host's.
 * - Commands run inside with `nsenter -t <container PID 1> -a`.
 *
 * Requirements: Linux, root, systemd-nspawn (package systemd-container), nsenter
 * (util-linux) and, when no cached root exists, debootstrap plus network access
 * to the Debian mirror.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { isCI } from '../helpers/ci.js';

export const ROOTFS_VERSION = 1;
export const ROOTFS_SUITE = 'bookworm';
export const ROOTFS_PACKAGES = ['systemd', 'systemd-sysv', 'dbus'];
export const CACHE_DIR = process.env.SDWRAP_E2E_CACHE || '/var/cache/sdwrap-e2e';
export const ROOTFS_DIR = path.join(CACHE_DIR, `${ROOTFS_SUITE}-v${ROOTFS_VERSION}`);

/** The repository the tests run from (test/e2e/harness.ts -> repo root). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Where the repository appears inside the container. */
export const IN_CONTAINER_REPO = '/opt/sdwrap';
export const IN_CONTAINER_NODE = '/usr/bin/node';
export const IN_CONTAINER_SDWRAP = `${IN_CONTAINER_REPO}/bin/sdwrap.js`;
export const IN_CONTAINER_FIXTURE = `${IN_CONTAINER_REPO}/test/fixtures/server.mjs`;

const CONTAINER_ENV: NodeJS.ProcessEnv = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
  TERM: 'dumb',
  SYSTEMD_PAGER: '',
  SYSTEMD_COLORS: '0',
  SYSTEMD_LESS: '',
};

// ---------------------------------------------------------------------------
// Prerequisites, skip-or-fail policy
// ---------------------------------------------------------------------------

export function which(cmd: string): string | null {
  for (const dir of (process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = path.join(dir, cmd);
    if (existsSync(p)) return p;
  }
  return null;
}

/** Why the container scenarios cannot run here, or null when they can. */
export function containerProblem(): string | null {
  if (process.platform !== 'linux') return 'the e2e suite needs Linux';
  if (process.getuid?.() !== 0) return 'the e2e suite needs root (systemd-nspawn, nsenter)';
  if (!which('systemd-nspawn')) return 'systemd-nspawn not found (apt-get install systemd-container)';
  if (!which('nsenter')) return 'nsenter not found (apt-get install util-linux)';
  if (!existsSync(ROOTFS_DIR) && !which('debootstrap'))
    return `no cached root at ${ROOTFS_DIR} and debootstrap not found (apt-get install debootstrap)`;
  return null;
}

/** Why the systemd-analyze checks cannot run here, or null when they can. */
export function analyzeProblem(): string | null {
  if (process.platform !== 'linux') return 'systemd-analyze needs Linux';
  if (!which('systemd-analyze')) return 'systemd-analyze not found (apt-get install systemd)';
  return null;
}

/**
 * The `skip` option for a suite: the reason when it cannot run and we are not
 * in CI; `false` otherwise (in CI the suite's `before` hook must then throw, see
 * failIfProblem).
 */
export function skipUnlessCI(problem: string | null): string | false {
  if (problem === null || isCI()) return false;
  return `skipped: ${problem} (set CI=1 to make this a failure)`;
}

export function failIfProblem(problem: string | null): void {
  if (problem !== null) throw new Error(`e2e prerequisites missing (CI is set, so this fails instead of skipping): ${problem}`);
}

// ---------------------------------------------------------------------------
// Small process helpers (host side)
// ---------------------------------------------------------------------------

export interface ExecResult {
  argv: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
}

export interface ExecOptions {
  input?: string;
  /** Hard bound; the command is SIGKILLed past it (default 30 s). */
  timeoutMs?: number;
  /** Throw unless the command exits 0 (default false). */
  check?: boolean;
  env?: NodeJS.ProcessEnv;
}

export function run(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), {
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${argv.join(' ')}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const res: ExecResult = {
        argv,
        code,
        signal,
        stdout,
        stderr,
        durationMs: performance.now() - t0,
        timedOut,
      };
      if (opts.check && (code !== 0 || timedOut)) reject(new Error(describeFailure(res)));
      else resolve(res);
    });
  });
}

export function describeFailure(r: ExecResult): string {
  const how = r.timedOut ? 'timed out' : r.signal ? `died of ${r.signal}` : `exited ${r.code}`;
  return `command ${how} after ${Math.round(r.durationMs)} ms: ${r.argv.join(' ')}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== null && v !== false) return v as T;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) {
      const tail = lastErr ? ` (last error: ${lastErr instanceof Error ? lastErr.message : String(lastErr)})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${tail}`);
    }
    await delay(intervalMs);
  }
}

function readPpid(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[1]);
  } catch {
    return null;
  }
}

function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

function readComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

function childrenOfHostPid(ppid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    if (readPpid(Number(name)) === ppid) out.push(Number(name));
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// Root file system
// ---------------------------------------------------------------------------

/**
 * Returns the cached root, debootstrapping it first when missing (~1 min on a
 * fresh machine). Builds into <root>.tmp-<pid> and renames on success only.
 */
export async function ensureRootfs(log: (msg: string) => void = () => {}): Promise<string> {
  if (existsSync(path.join(ROOTFS_DIR, 'usr/lib/systemd/systemd'))) return ROOTFS_DIR;
  if (existsSync(ROOTFS_DIR)) throw new Error(`${ROOTFS_DIR} exists but holds no systemd: remove it to rebuild`);
  const debootstrap = which('debootstrap');
  if (!debootstrap) throw new Error(`no cached root at ${ROOTFS_DIR} and debootstrap is not installed`);
  mkdirSync(CACHE_DIR, { recursive: true });
  const tmp = `${ROOTFS_DIR}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  log(`building ${ROOTFS_DIR} with debootstrap (once; about a minute)`);
  const argv = [debootstrap, '--variant=minbase', `--include=${ROOTFS_PACKAGES.join(',')}`, ROOTFS_SUITE, tmp];
  if (process.env.SDWRAP_E2E_MIRROR) argv.push(process.env.SDWRAP_E2E_MIRROR);
  const r = await run(argv, { timeoutMs: 15 * 60_000 });
  if (r.code !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`debootstrap failed\n${describeFailure(r).slice(-4000)}`);
  }
  // Trim what a test container never needs from the cache.
  rmSync(path.join(tmp, 'var/cache/apt/archives'), { recursive: true, force: true });
  mkdirSync(path.join(tmp, 'var/cache/apt/archives/partial'), { recursive: true });
  try {
    renameSync(tmp, ROOTFS_DIR);
  } catch (err) {
    // Another run won the race: keep its root, drop ours.
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(ROOTFS_DIR)) throw err;
  }
  return ROOTFS_DIR;
}

/**
 * A second cached root: the bookworm root plus systemd from bookworm-backports
 * (254), for what systemd 252 lacks (Type=notify-reload came in 253). Built
 * from a copy of the plain root (cp -a, ~1 s) by apt-get inside a
 * non-booted systemd-nspawn (~15 s, needs the Debian mirror), into a .tmp dir
 * renamed on success. Bump BACKPORTS_VERSION when what it installs changes.
 */
export const BACKPORTS_VERSION = 1;
export const BACKPORTS_PACKAGES = ['systemd', 'systemd-sysv'];
export const BACKPORTS_ROOTFS_DIR = path.join(CACHE_DIR, `${ROOTFS_SUITE}-v${ROOTFS_VERSION}-backports-v${BACKPORTS_VERSION}`);

export async function ensureBackportsRootfs(log: (msg: string) => void = () => {}): Promise<string> {
  const dir = BACKPORTS_ROOTFS_DIR;
  if (existsSync(path.join(dir, 'usr/lib/systemd/systemd'))) return dir;
  if (existsSync(dir)) throw new Error(`${dir} exists but holds no systemd: remove it to rebuild`);
  const base = await ensureRootfs(log);
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  log(`building ${dir}: ${ROOTFS_SUITE} root + ${BACKPORTS_PACKAGES.join(' ')} from ${ROOTFS_SUITE}-backports (once; ~15 s)`);
  const fail = (what: string, r?: ExecResult): never => {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`building the backports root failed: ${what}${r ? `\n${describeFailure(r).slice(-4000)}` : ''}`);
  };
  const cp = await run(['cp', '-a', base, tmp], { timeoutMs: 5 * 60_000 });
  if (cp.code !== 0) fail('cp', cp);
  // The same mirror as the base root's (debootstrap wrote it to sources.list).
  let mirror = process.env.SDWRAP_E2E_MIRROR || 'http://deb.debian.org/debian';
  try {
    const m = new RegExp(`^deb\\s+(\\S+)\\s+${ROOTFS_SUITE}\\s`, 'm').exec(readFileSync(path.join(tmp, 'etc/apt/sources.list'), 'utf8'));
    if (m) mirror = m[1]!;
  } catch {
    /* no sources.list: the default mirror */
  }
  const list = `deb ${mirror} ${ROOTFS_SUITE}-backports main\n`;
  const script = [
    `printf '%s' '${list}' > /etc/apt/sources.list.d/backports.list`,
    'apt-get -q update',
    `apt-get -y -q -t ${ROOTFS_SUITE}-backports install --no-install-recommends ${BACKPORTS_PACKAGES.join(' ')}`,
    'apt-get clean',
    'rm -rf /var/lib/apt/lists/*',
  ].join(' && ');
  const r = await run(
    [
      which('systemd-nspawn') ?? 'systemd-nspawn',
      '-q',
      '-D',
      tmp,
      '--register=no',
      '--keep-unit',
      '--resolv-conf=off',
      '--timezone=off',
      '--link-journal=no',
      '--pipe',
      '-E',
      'DEBIAN_FRONTEND=noninteractive',
      '--',
      '/bin/sh',
      '-c',
      script,
    ],
    { timeoutMs: 10 * 60_000, env: CONTAINER_ENV },
  );
  if (r.code !== 0 || !existsSync(path.join(tmp, 'usr/lib/systemd/systemd'))) fail('apt-get', r);
  try {
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(dir)) throw err;
  }
  return dir;
}

// ---------------------------------------------------------------------------
// Container
// ---------------------------------------------------------------------------

export interface ShowMap {
  [prop: string]: string;
}

export interface ContainerProcess {
  pid: number;
  ppid: number;
  state: string;
  cmdline: string;
}

/**
 * Containers this process started: nspawn pid -> container init pid (host
 * view), or 0 until known. Killing systemd-nspawn with SIGKILL does NOT take
 * the container down (its init is reparented), so the last-resort path kills
 * the init too: PID 1 of a pid namespace takes every process in it along.
 */
const liveContainers = new Map<number, number>();
/** Temporary directories of live containers, removed on the last-resort path too. */
const liveWorkDirs = new Set<string>();

function killContainersNow(): void {
  for (const [nspawnPid, initPid] of liveContainers) {
    for (const pid of [initPid, nspawnPid]) {
      if (pid <= 0) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  liveContainers.clear();
  for (const dir of liveWorkDirs) rmSync(dir, { recursive: true, force: true });
  liveWorkDirs.clear();
}

process.once('exit', killContainersNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    // Runner interrupted: never leave a container behind, then die of the same signal.
    killContainersNow();
    process.kill(process.pid, sig);
  });
}

export interface BootOptions {
  repoRoot?: string;
  /** The root file system to boot (default: ensureRootfs(), the plain bookworm root). */
  root?: string;
  bootTimeoutMs?: number;
  log?: (msg: string) => void;
}

export class Container {
  private constructor(
    readonly name: string,
    readonly nspawn: ChildProcess,
    readonly nspawnPid: number,
    readonly pid1: number,
    readonly workDir: string,
    readonly consoleLog: string,
  ) {}

  static async boot(opts: BootOptions = {}): Promise<Container> {
    const log = opts.log ?? (() => {});
    const repoRoot = opts.repoRoot ?? REPO_ROOT;
    const root = opts.root ?? (await ensureRootfs(log));
    const workDir = mkdtempSync(path.join(tmpdir(), 'sdwrap-e2e-'));
    liveWorkDirs.add(workDir);
    const consoleLog = path.join(workDir, 'console.log');
    const name = `sdwrap-e2e-${process.pid}`;
    const fd = openSync(consoleLog, 'w');
    const argv = [
      '-D',
      root,
      '--volatile=overlay',
      '--register=no',
      '--keep-unit',
      '--private-network',
      '--link-journal=no',
      '--resolv-conf=off',
      '--timezone=off',
      '--console=read-only',
      `--machine=${name}`,
      `--bind-ro=${repoRoot}:${IN_CONTAINER_REPO}`,
      `--bind-ro=${process.execPath}:${IN_CONTAINER_NODE}`,
      '--boot',
    ];
    const nspawn = spawn(which('systemd-nspawn') ?? 'systemd-nspawn', argv, {
      stdio: ['ignore', fd, fd],
      env: CONTAINER_ENV,
    });
    closeSync(fd);
    const nspawnPid = nspawn.pid;
    if (nspawnPid === undefined) throw new Error('systemd-nspawn did not start');
    liveContainers.set(nspawnPid, 0);
    let exited: string | null = null;
    nspawn.on('exit', (code, signal) => {
      exited = `systemd-nspawn exited (code ${code}, signal ${signal})`;
    });
    const consoleTail = () => {
      try {
        return readFileSync(consoleLog, 'utf8').split('\n').slice(-40).join('\n');
      } catch {
        return '';
      }
    };
    const bootTimeout = opts.bootTimeoutMs ?? 60_000;
    const t0 = Date.now();
    try {
      const pid1 = await waitFor(
        'the container init (child of systemd-nspawn)',
        () => {
          if (exited) throw new Error(exited);
          return childrenOfHostPid(nspawnPid).find((p) => readComm(p) === 'systemd');
        },
        bootTimeout,
        50,
      );
      liveContainers.set(nspawnPid, pid1);
      const c = new Container(name, nspawn, nspawnPid, pid1, workDir, consoleLog);
      const state = await waitFor(
        'systemctl is-system-running to say running or degraded',
        async () => {
          if (exited) throw new Error(exited);
          const r = await c.exec(['systemctl', 'is-system-running'], { timeoutMs: 5_000 });
          const s = r.stdout.trim();
          if (s === 'running' || s === 'degraded') return s;
          if (s === 'stopping' || s === 'offline') throw new Error(`system is ${s}`);
          return undefined;
        },
        Math.max(5_000, bootTimeout - (Date.now() - t0)),
        100,
      );
      const nodeCheck = await c.exec([IN_CONTAINER_NODE, '--version'], { timeoutMs: 10_000 });
      if (nodeCheck.code !== 0) throw new Error(`the host's node does not run in the container:\n${describeFailure(nodeCheck)}`);
      log(`container ${name} up in ${Date.now() - t0} ms (${state}, node ${nodeCheck.stdout.trim()})`);
      return c;
    } catch (err) {
      await stopNspawn(nspawn, nspawnPid, liveContainers.get(nspawnPid) ?? 0);
      rmSync(workDir, { recursive: true, force: true });
      liveWorkDirs.delete(workDir);
      throw new Error(`container boot failed: ${err instanceof Error ? err.message : String(err)}\n--- console\n${consoleTail()}`);
    }
  }

  /** Runs argv inside the container (all namespaces of its PID 1). */
  exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return run(['nsenter', '-t', String(this.pid1), '-a', '--', ...argv], {
      ...opts,
      env: { ...CONTAINER_ENV, ...(opts.env ?? {}) },
    }).then((r) => ({ ...r, argv }));
  }

  sh(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.exec(['/bin/sh', '-c', script], opts);
  }

  /** Runs a node script inside the container; resolves with its stdout. */
  async node(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.exec([IN_CONTAINER_NODE, '-e', script], opts);
  }

  systemctl(args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return this.exec(['systemctl', '--no-pager', '--no-ask-password', ...args], opts);
  }

  async show(unit: string, props: string[]): Promise<ShowMap> {
    const r = await this.systemctl(['show', ...props.flatMap((p) => ['-p', p]), unit], { check: true, timeoutMs: 10_000 });
    const out: ShowMap = {};
    for (const line of r.stdout.split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
    }
    return out;
  }

  async writeFile(pathInContainer: string, content: string): Promise<void> {
    await this.exec(['/bin/sh', '-c', 'mkdir -p "$(dirname "$1")" && cat > "$1"', 'sh', pathInContainer], {
      input: content,
      check: true,
      timeoutMs: 10_000,
    });
  }

  /** Writes /etc/systemd/system/<name> and reloads the manager. */
  async installUnit(name: string, content: string): Promise<void> {
    await this.writeFile(`/etc/systemd/system/${name}`, content);
    await this.systemctl(['daemon-reload'], { check: true, timeoutMs: 30_000 });
  }

  /** Stops a unit and clears its failed state and restart counters (best effort, bounded). */
  async cleanupUnit(name: string): Promise<void> {
    await this.systemctl(['stop', name], { timeoutMs: 40_000 });
    await this.systemctl(['reset-failed', name], { timeoutMs: 10_000 });
  }

  async journal(unit: string, extra: string[] = []): Promise<string> {
    const r = await this.exec(['journalctl', '--no-pager', '-u', unit, '-o', 'short-monotonic', ...extra], {
      timeoutMs: 15_000,
    });
    return r.stdout + (r.stderr.trim() ? `\n[journalctl stderr] ${r.stderr}` : '');
  }

  /** Only the messages (no prefix), for matching. */
  async journalMessages(unit: string): Promise<string[]> {
    const r = await this.exec(['journalctl', '--no-pager', '-u', unit, '-o', 'cat'], { timeoutMs: 15_000 });
    return r.stdout.split('\n').filter((l) => l !== '');
  }

  async waitJournal(unit: string, re: RegExp, timeoutMs: number): Promise<string> {
    return waitFor(
      `journal of ${unit} to match ${re}`,
      async () => (await this.journalMessages(unit)).find((l) => re.test(l)),
      timeoutMs,
      200,
    );
  }

  /** `systemctl status` plus the unit's journal, for failure reports. */
  async diagnostics(unit: string): Promise<string> {
    const parts: string[] = [];
    try {
      const st = await this.systemctl(['status', '-l', '--lines=0', unit], { timeoutMs: 10_000 });
      parts.push(`--- systemctl status ${unit}\n${st.stdout}${st.stderr}`);
      const sh = await this.systemctl(
        ['show', '-p', 'ActiveState,SubState,Result,NRestarts,MainPID,ExecMainCode,ExecMainStatus,StatusText,ControlGroup', unit],
        { timeoutMs: 10_000 },
      );
      parts.push(`--- systemctl show\n${sh.stdout}`);
      parts.push(`--- journalctl -u ${unit}\n${await this.journal(unit, ['-n', '300'])}`);
    } catch (err) {
      parts.push(`(diagnostics failed: ${err instanceof Error ? err.message : String(err)})`);
    }
    return parts.join('\n');
  }

  /** Every process inside the container (from its own /proc). */
  async processes(): Promise<ContainerProcess[]> {
    const r = await this.node(
      `const fs=require('fs');const out=[];for(const n of fs.readdirSync('/proc')){if(!/^\\d+$/.test(n))continue;try{const st=fs.readFileSync('/proc/'+n+'/stat','utf8');const rest=st.slice(st.lastIndexOf(')')+2).split(' ');const cmd=fs.readFileSync('/proc/'+n+'/cmdline','utf8').split('\\0').join(' ').trim();out.push({pid:+n,ppid:+rest[1],state:rest[0],cmdline:cmd})}catch{}}console.log(JSON.stringify(out.filter(p=>p.pid!==process.pid)))`,
      { check: true, timeoutMs: 15_000 },
    );
    return JSON.parse(r.stdout) as ContainerProcess[];
  }

  async processesMatching(substr: string): Promise<ContainerProcess[]> {
    return (await this.processes()).filter((p) => p.cmdline.includes(substr));
  }

  /** Descendants of pid (container pid namespace), depth-first. */
  async descendants(pid: number): Promise<ContainerProcess[]> {
    const all = await this.processes();
    const out: ContainerProcess[] = [];
    const walk = (p: number) => {
      for (const c of all.filter((x) => x.ppid === p)) {
        out.push(c);
        walk(c.pid);
      }
    };
    walk(pid);
    return out;
  }

  async kill(pid: number, signal: string): Promise<void> {
    await this.sh(`kill -${signal} ${pid}`, { check: true, timeoutMs: 5_000 });
  }

  /** HTTP GET from inside the container: the status code, or an error string. */
  async httpGet(url: string, timeoutMs = 2_000): Promise<number | string> {
    const r = await this.node(
      `fetch(${JSON.stringify(url)},{signal:AbortSignal.timeout(${timeoutMs})}).then(r=>{console.log(r.status)},e=>{console.log('error: '+(e.cause?.code||e.name||e.message))})`,
      { timeoutMs: timeoutMs + 10_000 },
    );
    const s = r.stdout.trim();
    return /^\d+$/.test(s) ? Number(s) : s || `error: ${r.stderr.trim()}`;
  }

  async shutdown(): Promise<void> {
    await stopNspawn(this.nspawn, this.nspawnPid, this.pid1);
    rmSync(this.workDir, { recursive: true, force: true });
    liveWorkDirs.delete(this.workDir);
  }
}

async function stopNspawn(child: ChildProcess, pid: number, initPid: number): Promise<void> {
  const nspawnGone = () => child.exitCode !== null || child.signalCode !== null || !alive(pid);
  const initGone = () => initPid <= 0 || !alive(initPid) || procState(initPid) === 'Z';
  if (!nspawnGone()) {
    // systemd-nspawn turns SIGTERM into an orderly poweroff of the container.
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    await waitFor('systemd-nspawn to exit after SIGTERM', () => nspawnGone(), 20_000, 100).catch(() => {});
  }
  if (!nspawnGone() || !initGone()) {
    // Hard stop: the init first (it takes its pid namespace along), then nspawn.
    for (const p of [initPid, pid]) {
      try {
        if (p > 0) process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await waitFor('the container to go away after SIGKILL', () => nspawnGone() && initGone(), 10_000, 100).catch(() => {});
  }
  liveContainers.delete(pid);
}

// ---------------------------------------------------------------------------
// Unit files
// ---------------------------------------------------------------------------

export interface UnitSection {
  name: string;
  entries: Array<[string, string]>;
}

/** Parses a unit file into sections of key/value pairs (comments dropped, continuations joined). */
export function parseUnit(text: string): UnitSection[] {
  const sections: UnitSection[] = [];
  let current: UnitSection | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + ' ' + lines[++i]!.trim();
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      current = { name: sec[1]!, entries: [] };
      sections.push(current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0 || !current) throw new Error(`unparseable unit line: ${line}`);
    current.entries.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return sections;
}

export function renderUnit(sections: UnitSection[]): string {
  return sections.map((s) => `[${s.name}]\n${s.entries.map(([k, v]) => `${k}=${v}`).join('\n')}\n`).join('\n');
}

/** All values of a key in a section (last one wins for single-valued keys). */
export function unitValues(sections: UnitSection[], section: string, key: string): string[] {
  return sections.filter((s) => s.name === section).flatMap((s) => s.entries.filter(([k]) => k === key).map(([, v]) => v));
}

export type UnitOverrides = Record<string, Record<string, string | string[] | null>>;

/**
 * Copies a unit, replacing keys: a string or list replaces every existing
 * assignment of the key; null removes it. Sections are created as needed.
 */
export function deriveUnit(template: string, overrides: UnitOverrides): string {
  const sections = parseUnit(template);
  for (const [secName, keys] of Object.entries(overrides)) {
    let sec = sections.find((s) => s.name === secName);
    if (!sec) {
      sec = { name: secName, entries: [] };
      sections.push(sec);
    }
    for (const [key, value] of Object.entries(keys)) {
      const at = sec.entries.findIndex(([k]) => k === key);
      sec.entries = sec.entries.filter(([k]) => k !== key);
      if (value === null) continue;
      const vals = Array.isArray(value) ? value : [value];
      const newEntries = vals.map((v) => [key, v] as [string, string]);
      sec.entries.splice(at < 0 ? sec.entries.length : at, 0, ...newEntries);
    }
  }
  return renderUnit(sections);
}

/** Quotes one argument for an ExecStart= line. */
export function execArg(a: string): string {
  // % starts a specifier and $ a variable in ExecStart=: double them.
  const e = a.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(e) ? e : `"${e.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}
