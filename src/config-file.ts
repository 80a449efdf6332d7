// --config FILE: the same options as the command line, as JSON, plus probes with settings of their own.
// The file's shape is checked with zod (loaded only when a file is given); its values then go through the
// same validators as flags, so both speak with one voice. Flags given on the command line win.
import { readFileSync } from 'node:fs';
import { UsageError } from './errors.js';
import { requireOptional } from './optional.js';
import type { RawOptions, RawProbe } from './config.js';

/** A span or count may be written as a number (seconds, like systemd's bare numbers) or a string. */
const asText = (value: string | number | undefined) => (value === undefined ? undefined : String(value));

async function schema() {
  const { z } = requireOptional('zod') as typeof import('zod');
  const span = z.union([z.string(), z.number().nonnegative()], {
    error: 'expected a time span: a string like "5s" or a number of seconds',
  });
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
        method: z.string().optional(),
        requestHeaders: z.union([z.array(z.string()), z.record(z.string(), z.string())]).optional(),
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
      controlSocket: z.string().optional(),
      metrics: z.union([z.string(), z.number().int()], { error: 'expected a port (a number) or "host:port"' }).optional(),
      pidFile: z.string().optional(),
      notifyPassthrough: z.boolean().optional(),
    })
    .strict();
}

export interface FileOptions {
  options: RawOptions;
  command: string[] | undefined;
}

/** Line and column (both from 1) of an offset into the text, as editors count them. */
function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return `${line}:${offset - before.lastIndexOf('\n')}`;
}

/** "a.b[2].c" for a path of keys and indices. */
function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)), '');
}

/** The closest of the known names to a mistyped one, if it is close enough to be a likely typo. */
function didYouMean(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/** Levenshtein distance, one row at a time. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length]!;
}

/** Where things stand in the file, so a message can say "app.json:7:12". */
class Locator {
  readonly #tree: JsonNode | undefined;
  readonly #findNodeAtLocation: typeof import('jsonc-parser').findNodeAtLocation;

  constructor(
    readonly path: string,
    readonly text: string,
    jsonc: typeof import('jsonc-parser'),
  ) {
    this.#tree = jsonc.parseTree(text);
    this.#findNodeAtLocation = jsonc.findNodeAtLocation;
  }

  /** "--config app.json:7:12: probes[1].interval" (the key's position), or without the position if not found. */
  name(path: ReadonlyArray<string | number>): string {
    const node = this.#tree && this.#findNodeAtLocation(this.#tree, [...path]);
    // The value's parent is its "key": value pair; point at the key, where the reader looks.
    const at = node?.parent?.type === 'property' ? node.parent.offset : node?.offset;
    return `--config ${this.path}${at === undefined ? '' : `:${lineColumn(this.text, at)}`}: ${fieldPath(path) || 'top level'}`;
  }
}
type JsonNode = import('jsonc-parser').Node;

/** Reads and checks a config file; throws UsageError naming the file, the line:column and the bad field. */
export async function loadConfigFile(path: string): Promise<FileOptions> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`--config ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const jsonc = requireOptional('jsonc-parser') as typeof import('jsonc-parser');
  // Strict JSON: no comments, no trailing commas. Only where and what kind of mistake, never the text around
  // it, which may hold a secret URL.
  const syntax: import('jsonc-parser').ParseError[] = [];
  jsonc.parse(text, syntax, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
  const first = syntax[0];
  if (first) {
    const what = jsonc
      .printParseErrorCode(first.error)
      .replace(/([a-z])([A-Z])/g, '$1 $2')
      .toLowerCase();
    throw new UsageError(`--config ${path}:${lineColumn(text, first.offset)}: not valid JSON (${what})`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new UsageError(`--config ${path}: not valid JSON`);
  }
  const locator = new Locator(path, text, jsonc);
  const shape = await schema();
  const result = shape.safeParse(data);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const at = issue.path.filter((k): k is string | number => typeof k !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      const key = issue.keys[0]!;
      const hint = didYouMean(key, knownKeys(shape, data, at));
      throw new UsageError(`${locator.name([...at, key])}: unknown key${hint ? `; did you mean '${hint}'?` : ''}`);
    }
    throw new UsageError(`${locator.name(at)}: ${issue.message}`);
  }
  const f = result.data;
  const probes: RawProbe[] | undefined = f.probes?.map((p, i) => {
    const source = `--config ${path}: probes[${i}]`;
    const where = (field: string) => locator.name(['probes', i, ...field.split('.')]);
    const timing = {
      interval: asText(p.interval),
      timeout: asText(p.timeout),
      failureThreshold: asText(p.failureThreshold),
      successThreshold: asText(p.successThreshold),
    };
    if (p.http !== undefined) {
      const h = typeof p.http === 'string' ? { url: p.http } : p.http;
      return {
        source,
        where,
        role: p.role,
        kind: 'http',
        target: h.url,
        ...timing,
        http: {
          method: h.method,
          requestHeaders: headerLines(h.requestHeaders),
          status: asText(h.status),
          headers: headerLines(h.headers),
          body: h.body,
          json: typeof h.json === 'string' ? [h.json] : h.json,
          followRedirects: h.followRedirects,
        },
      };
    }
    if (p.ws !== undefined) {
      const w = typeof p.ws === 'string' ? { url: p.ws } : p.ws;
      return { source, where, role: p.role, kind: 'ws', target: w.url, ws: { send: w.send, expect: w.expect }, ...timing };
    }
    if (p.tcp !== undefined) return { source, where, role: p.role, kind: 'tcp', target: p.tcp, ...timing };
    return { source, where, role: p.role, kind: 'exec', target: p.exec!, ...timing };
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
    controlSocket: f.controlSocket,
    metrics: asText(f.metrics),
    pidFile: f.pidFile,
    notifyPassthrough: f.notifyPassthrough,
  };
  const present = dropUndefined(options);
  // Top-level values are checked later, with the flags' validators: name them by where they stand in the file.
  const fileNames: RawOptions['fileNames'] = {};
  for (const key of Object.keys(present) as Array<keyof RawOptions>) {
    if (key !== 'probes') fileNames[key] = locator.name(FILE_FIELD[key] ?? [key]);
  }
  return { options: { ...present, fileNames }, command: f.command };
}

/** Headers as a list of "Name: value" lines or as an object, turned into the lines the flags take. */
function headerLines(headers: string[] | Record<string, string> | undefined): string[] | undefined {
  if (headers === undefined || Array.isArray(headers)) return headers;
  return Object.entries(headers).map(([name, value]) => `${name}: ${value}`);
}

/** Where an option's value stands in the file, when its key is not the option's own name. */
const FILE_FIELD: Partial<Record<keyof RawOptions, string[]>> = {
  watchLog: ['watchLog', 'pattern'],
  watchLogMax: ['watchLog', 'max'],
  watchLogWindow: ['watchLog', 'window'],
  systemd: ['noSystemd'],
};

/** The keys the schema allows at a path (for did-you-mean), found by walking the schema along the data. */
function knownKeys(shape: unknown, data: unknown, path: ReadonlyArray<string | number>): string[] {
  let node: unknown = shape;
  let value: unknown = data;
  for (const key of path) {
    value = (value as Record<string | number, unknown>)?.[key];
    node = childSchema(node, key, value);
    if (!node) return [];
  }
  const object = objectSchema(node, value);
  return object ? Object.keys(object.shape) : [];
}

type AnySchema = {
  def?: { type?: string; options?: unknown[]; element?: unknown; innerType?: unknown; in?: unknown; shape?: unknown };
  shape?: Record<string, unknown>;
};

/** The object schema within unions, optionals and refinements that matches an object value. */
function objectSchema(node: unknown, value: unknown): { shape: Record<string, unknown> } | undefined {
  const s = node as AnySchema | undefined;
  const def = s?.def;
  if (!def) return undefined;
  if (def.type === 'object') return s as { shape: Record<string, unknown> };
  if (def.type === 'optional' || def.type === 'nullable' || def.type === 'default') return objectSchema(def.innerType, value);
  if (def.type === 'pipe') return objectSchema(def.in, value);
  if (def.type === 'union' && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    for (const option of def.options ?? []) {
      const found = objectSchema(option, value);
      if (found) return found;
    }
  }
  return undefined;
}

function childSchema(node: unknown, key: string | number, value: unknown): unknown {
  const s = node as AnySchema | undefined;
  const def = s?.def;
  if (!def) return undefined;
  if (def.type === 'optional' || def.type === 'nullable' || def.type === 'default') return childSchema(def.innerType, key, value);
  if (def.type === 'pipe') return childSchema(def.in, key, value);
  if (def.type === 'array' && typeof key === 'number') return def.element;
  if (def.type === 'union') {
    for (const option of def.options ?? []) {
      const found = childSchema(option, key, value);
      if (found) return found;
    }
    return undefined;
  }
  if (def.type === 'object' && typeof key === 'string') return (s!.shape as Record<string, unknown>)[key];
  return undefined;
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
