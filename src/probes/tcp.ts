// TCP probe: healthy when a connection opens.
import { connect } from 'node:net';
import { errorText } from '../errors.js';
import type { Probe, ProbeOutcome } from './probe.js';

export function tcpProbe(host: string, port: number): Probe {
  return {
    description: `TCP ${host.includes(':') ? `[${host}]` : host}:${port}`,
    run: (signal) =>
      new Promise<ProbeOutcome>((resolve) => {
        const socket = connect({ host, port });
        const finish = (outcome: ProbeOutcome) => {
          signal.removeEventListener('abort', onAbort);
          socket.destroy();
          resolve(outcome);
        };
        const onAbort = () => finish({ ok: false, detail: '' });
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        socket.once('connect', () => finish({ ok: true, detail: 'connected' }));
        socket.once('error', (error) => finish({ ok: false, detail: errorText(error) }));
      }),
    close: async () => {},
  };
}
