// HTTP probe: healthy when GET answers 200-399. Redirects are not followed (a 3xx is an answer).
import { Agent, request } from 'undici';
import { errorText, type Probe } from './probe.js';

export function httpProbe(url: string): Probe {
  // A fresh connection for every probe (reset: true) sees what a new client sees: a server whose accept
  // loop is dead fails the probe even if an old kept-alive connection would still be served.
  const agent = new Agent({ connections: 1, pipelining: 0 });
  let closed = false;
  return {
    description: `GET ${url}`,
    async run(signal) {
      try {
        const res = await request(url, {
          method: 'GET',
          signal,
          dispatcher: agent,
          reset: true,
          headers: { 'user-agent': 'sdwrap-probe', accept: '*/*' },
        });
        // Always consume the body, or the socket is never released.
        await res.body.dump({ signal, limit: 64 * 1024 });
        const ok = res.statusCode >= 200 && res.statusCode <= 399;
        return { ok, detail: `HTTP ${res.statusCode}` };
      } catch (error) {
        if (signal.aborted) return { ok: false, detail: 'no answer in time' };
        return { ok: false, detail: errorText(error) };
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await agent.destroy();
    },
  };
}
