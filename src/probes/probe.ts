// The shape every probe has: run once under an abort signal (the per-probe timeout, or shutdown).
import type { ProbeTarget } from '../config.js';

export interface ProbeOutcome {
  ok: boolean;
  /** What it saw ("HTTP 200") or why it failed ("connect ECONNREFUSED 127.0.0.1:8080"). */
  detail: string;
}

export interface Probe {
  /** For logs and STATUS: "GET http://127.0.0.1:8080/healthz". */
  readonly description: string;
  /** Must settle promptly once `signal` aborts, with everything it started (sockets, processes) released. */
  run(signal: AbortSignal): Promise<ProbeOutcome>;
  /** Releases what the probe keeps between runs; safe to call twice. */
  close(): Promise<void>;
}

/** Builds the probe for a target; each kind loads its code (undici, execa) only when used. */
export async function createProbe(target: ProbeTarget, env: NodeJS.ProcessEnv): Promise<Probe> {
  switch (target.kind) {
    case 'http':
      return (await import('./http.js')).httpProbe(target);
    case 'tcp':
      return (await import('./tcp.js')).tcpProbe(target.host, target.port);
    case 'exec':
      return (await import('./exec.js')).execProbe(target.command, env);
    case 'ws':
      return (await import('./ws.js')).wsProbe({ url: target.url, send: target.send, expect: target.expect });
  }
}
