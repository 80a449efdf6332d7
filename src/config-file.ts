// --config FILE: the same options as the command line, as JSON, plus probes with settings of their own.
// The file's shape is checked with zod (loaded only when a file is given); its values then go through the
// same validators as flags, so both speak with one voice. Flags given on the command line win.
import { readFileSync } from 'node:fs';
import { UsageError } from './errors.js';
import type { RawOptions, RawProbe } from './config.js';

/** A span or count may be written as a number (seconds, like systemd's bare numbers) or a string. */
const asText = (value: string | number | undefined) => (value === undefined ? undefined : String(value));

async function schema() {
  const { z } = await import('zod');
  const span = z.union([z.string(), z.number().nonnegative()], { error: 'expected a time span: a string like "5s" or a number of seconds' });
  const count = z.union([z.number().int(), z.string()], { error: 'expected a whole number' });
  const timing = {
    interval: span.optional(),
    timeout: span.optional(),
    failureThreshold: count.optional(),
    successThreshold: count.optional(),
  };
  const http = z.union([
    z.string(),
    z
      .object({
        url: z.string(),
        status: z.union([z.string(), z.number().int()]).optional(),
        headers: z.union([z.array(z.string()), z.record(z.string(), z.string())]).optional(),
        body: z.string().optional(),
        json: z.union([z.string(), z.array(z.string())]).optional(),
        followRedirects: z.boolean().optional(),
      })
      .strict(),
  ]);
  const ws = z.union([z.string(), z.object({ url: z.string(), send: z.string().optional(), expect: z.string().optional() }).strict()]);
  const probe = z
    .object({
      role: z.enum(['readiness', 'liveness', 'both']).optional(),
      http: http.optional(),
      tcp: z.string().optional(),
      exec: z.string().optional(),
      ws: ws.optional(),
      ...timing,
    })
    .strict()
    .refine((p) => [p.http, p.tcp, p.exec, p.ws].filter((k) => k !== undefined).length === 1, {
      message: 'needs exactly one of http, tcp, exec, ws',
    });
  return z
    .object({
      command: z.array(z.string()).min(1).optional(),
      probes: z.array(probe).optional(),
      ...timing,
      startPeriod: span.optional(),
      stopTimeout: span.optional(),
      onUnhealthy: z.enum(['kill', 'watchdog']).optional(),
      watchLog: z.object({ pattern: z.string(), max: count.optional(), window: span.optional() }).strict().optional(),
      heartbeatUrl: z.string().optional(),
      heartbeatEvery: span.optional(),
      logLevel: z.string().optional(),
      logFormat: z.string().optional(),
      notifier: z.string().optional(),
      noSystemd: z.boolean().optional(),
      restart: z.string().optional(),
      restartDelay: span.optional(),
      restartMaxDelay: span.optional(),
      maxRestarts: count.optional(),
      restartWindow: span.optional(),
      restartReset: span.optional(),
    })
    .strict();
}

export interface FileOptions {
  options: RawOptions;
  command: string[] | undefined;
}

/** Reads and checks a config file; throws UsageError naming the file and the bad field. */
export async function loadConfigFile(path: string): Promise<FileOptions> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`--config ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    // Only where, not what: V8 quotes the text around the error, which may be a secret URL.
    const at = /position (\d+)/.exec((error as Error).message);
    throw new UsageError(`--config ${path}: not valid JSON${at ? ` (at character ${at[1]})` : ''}`);
  }
  const result = (await schema()).safeParse(data);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.reduce<string>((acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)), '');
    throw new UsageError(`--config ${path}: ${field || 'top level'}: ${issue.message}`);
  }
  const f = result.data;
  const probes: RawProbe[] | undefined = f.probes?.map((p, i) => {
    const source = `${path}: probes[${i}]`;
    const timing = {
      interval: asText(p.interval),
      timeout: asText(p.timeout),
      failureThreshold: asText(p.failureThreshold),
      successThreshold: asText(p.successThreshold),
    };
    if (p.http !== undefined) {
      const h = typeof p.http === 'string' ? { url: p.http } : p.http;
      const headers = Array.isArray(h.headers) ? h.headers : h.headers && Object.entries(h.headers).map(([k, v]) => `${k}: ${v}`);
      return {
        source, role: p.role, kind: 'http', target: h.url, ...timing,
        http: { status: asText(h.status), headers, body: h.body, json: typeof h.json === 'string' ? [h.json] : h.json, followRedirects: h.followRedirects },
      };
    }
    if (p.ws !== undefined) {
      const w = typeof p.ws === 'string' ? { url: p.ws } : p.ws;
      return { source, role: p.role, kind: 'ws', target: w.url, ws: { send: w.send, expect: w.expect }, ...timing };
    }
    if (p.tcp !== undefined) return { source, role: p.role, kind: 'tcp', target: p.tcp, ...timing };
    return { source, role: p.role, kind: 'exec', target: p.exec!, ...timing };
  });
  const options: RawOptions = {
    probes,
    interval: asText(f.interval),
    timeout: asText(f.timeout),
    failureThreshold: asText(f.failureThreshold),
    successThreshold: asText(f.successThreshold),
    startPeriod: asText(f.startPeriod),
    stopTimeout: asText(f.stopTimeout),
    onUnhealthy: f.onUnhealthy,
    watchLog: f.watchLog?.pattern,
    watchLogMax: asText(f.watchLog?.max),
    watchLogWindow: asText(f.watchLog?.window),
    heartbeatUrl: f.heartbeatUrl,
    heartbeatEvery: asText(f.heartbeatEvery),
    logLevel: f.logLevel,
    logFormat: f.logFormat,
    notifier: f.notifier,
    systemd: f.noSystemd === undefined ? undefined : !f.noSystemd,
    restart: f.restart,
    restartDelay: asText(f.restartDelay),
    restartMaxDelay: asText(f.restartMaxDelay),
    maxRestarts: asText(f.maxRestarts),
    restartWindow: asText(f.restartWindow),
    restartReset: asText(f.restartReset),
  };
  return { options: dropUndefined(options), command: f.command };
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
