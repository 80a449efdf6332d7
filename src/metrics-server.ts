// The --metrics endpoint: GET /metrics on node:http. It shares sdwrap's one thread with the probes and the
// watchdog, so it must never hold them up: few connections at a time, short timeouts that drop slow or
// silent clients, a small request, and an answer rendered from counters in memory (no I/O but /proc reads).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ListenAddress } from './config.js';
import { UsageError } from './errors.js';
import type { Logger } from './logger.js';

/** Connections served at once; more are closed as they arrive. Prometheus uses one per target. */
export const MAX_CONNECTIONS = 8;
/** A client that sends or reads nothing for this long is dropped (a scrape takes milliseconds). */
export const IDLE_TIMEOUT_MS = 5000;
/** The whole request, headers included, must arrive within this. */
const REQUEST_TIMEOUT_MS = 5000;
/** Prometheus sends a few hundred bytes of headers. */
const MAX_HEADER_BYTES = 8192;

export interface MetricsServer {
  /** http://host:port/metrics */
  readonly url: string;
  /** Stops serving and drops every connection; safe to call twice. */
  close(): Promise<void>;
}

type Render = () => Promise<{ contentType: string; body: string }>;

/** "127.0.0.1:9464", "[::1]:9464". */
export function formatAddress(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Binds the address and serves the metrics. Throws UsageError, naming the flag and the address, when it cannot bind. */
export async function serveMetrics(address: ListenAddress, render: Render, log: Logger): Promise<MetricsServer> {
  const shown = formatAddress(address.host, address.port);
  const served = new WeakSet<Socket>();
  const server = createServer(
    {
      requestTimeout: REQUEST_TIMEOUT_MS,
      headersTimeout: REQUEST_TIMEOUT_MS,
      maxHeaderSize: MAX_HEADER_BYTES,
      // Node checks the two timeouts above only this often (30 s by default).
      connectionsCheckingInterval: 1000,
    },
    (request, response) => {
      // One request per connection: pipelined GETs, which Node parses from one read and would answer each with
      // a render, end the connection instead. Prometheus opens a new one when it needs to.
      if (served.has(request.socket)) return void request.socket.destroy();
      served.add(request.socket);
      response.shouldKeepAlive = false;
      void answer(request, response, render, log);
    },
  );
  server.maxConnections = MAX_CONNECTIONS;
  // A client that stops reading leaves its answer in the socket's buffers: dropped once idle, it cannot pile up.
  server.setTimeout(IDLE_TIMEOUT_MS, (socket) => socket.destroy());
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(new UsageError(`${address.flag} ${shown}: ${bindProblem(error)}`)));
    server.listen({ host: address.host, port: address.port, exclusive: true }, resolve);
  });
  // Errors after the bind are about one connection: never fatal to the supervisor.
  server.on('error', (error) => log.warn({ err: error.message }, 'metrics endpoint error'));
  const url = `http://${shown}/metrics`;
  log.info({ metrics: url }, 'serving metrics');
  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function answer(request: IncomingMessage, response: ServerResponse, render: Render, log: Logger): Promise<void> {
  const path = (request.url ?? '').split('?')[0];
  if (path !== '/metrics') return plain(response, 404, 'not found: the metrics are at /metrics\n');
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('allow', 'GET, HEAD');
    return plain(response, 405, 'method not allowed: use GET\n');
  }
  try {
    const { contentType, body } = await render();
    response.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    response.end(request.method === 'HEAD' ? undefined : body);
  } catch (error) {
    log.warn({ err: (error as Error).message }, 'metrics: cannot render');
    plain(response, 500, 'cannot render the metrics\n');
  }
}

function plain(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

/** What a failed bind means for the user, in words. */
function bindProblem(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'EADDRINUSE':
      return 'the address is in use (another process listens there): choose another port';
    case 'EADDRNOTAVAIL':
      return 'not an address of this host: give one of its addresses, 127.0.0.1 (the default for a bare port), or 0.0.0.0 for all';
    case 'EACCES':
      return 'permission denied: a port below 1024 needs CAP_NET_BIND_SERVICE; choose a port from 1024 up';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
      return 'cannot resolve the host name: give an IP address';
    default:
      return `cannot listen there (${error.code ?? error.message})`;
  }
}
