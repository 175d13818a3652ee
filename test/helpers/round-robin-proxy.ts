import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the proxy passed it on. */
export interface ProxiedRequest {
  method: string;
  url: string;
  /** Index of the replica that got it. */
  replica: number;
  /** The replica's status, or 502 when the replica could not be reached or broke off. */
  status: number;
  /** From the request's arrival to its answer's last byte, in milliseconds. */
  ms: number;
  /** The order in which the proxy chose replicas (the log is in the order answers began). */
  picked: number;
}

export interface RoundRobinProxy {
  readonly url: string;
  /** Every request so far, in the order they were sent on. */
  readonly log: ProxiedRequest[];
  /**
   * Every choice of a replica for an upload session's request, in the order made: refused
   * connections and requests the client gave up on before an answer included.
   */
  readonly choices: { session: string; replica: number }[];
  /** Replaces a replica's address (after a restart on a new port). */
  setReplica(index: number, url: string | undefined): void;
  close(): Promise<void>;
}

/**
 * A load balancer for tests: an HTTP proxy that sends each request (not each connection: a
 * keep-alive client's requests too) to the next replica in turn, and each request of a native
 * upload session to another replica than the session's previous one (whatever other uploads
 * interleave), skipping replicas marked down (undefined) or that refuse the connection. A
 * replica that breaks off mid-request (kill -9)
 * costs that request a 502, as with a real load balancer; the client retries.
 */
export async function startRoundRobinProxy(replicas: (string | undefined)[]): Promise<RoundRobinProxy> {
  const targets = [...replicas];
  const log: ProxiedRequest[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  let next = 0;
  let picks = 0;

  /** The replica that got each upload session's last request: its next one goes elsewhere. */
  const lastOfSession = new Map<string, number>();
  const choices: { session: string; replica: number }[] = [];
  const pick = (tried: Set<number>, session: string | undefined): number | undefined => {
    const last = session === undefined ? undefined : lastOfSession.get(session);
    const from = last === undefined ? next : last + 1;
    for (let step = 0; step < targets.length; step += 1) {
      const index = (from + step) % targets.length;
      if (targets[index] && !tried.has(index) && (index !== last || step === targets.length - 1)) {
        next = index + 1;
        if (session !== undefined) {
          lastOfSession.set(session, index);
          choices.push({ session, replica: index });
        }
        return index;
      }
    }
    return undefined;
  };

  const server = http.createServer((req, res) => {
    const tried = new Set<number>();
    const arrived = performance.now();
    const elapsed = (): number => performance.now() - arrived;
    const session = /^\/v1\/sessions\/([^/?]+)/.exec(req.url ?? '')?.[1];
    const forward = (): void => {
      const index = pick(tried, session);
      const picked = picks++;
      if (index === undefined) {
        log.push({ method: req.method ?? '', url: req.url ?? '', replica: -1, status: 502, ms: elapsed(), picked });
        res.writeHead(502, { 'content-type': 'application/json', connection: 'close' });
        res.end(JSON.stringify({ success: false, error: 'no replica is up', code: 'INTERNAL' }));
        return;
      }
      tried.add(index);
      const target = new URL(req.url ?? '/', targets[index]);
      let sent = false;
      const upstream = http.request(
        target,
        { method: req.method, headers: { ...req.headers, host: target.host }, agent },
        (answer) => {
          const entry = {
            method: req.method ?? '',
            url: req.url ?? '',
            replica: index,
            status: answer.statusCode ?? 0,
            ms: 0,
            picked,
          };
          log.push(entry);
          answer.once('end', () => {
            entry.ms = elapsed();
          });
          const headers = { ...answer.headers };
          delete headers.connection;
          delete headers['keep-alive'];
          res.writeHead(answer.statusCode ?? 502, headers);
          answer.pipe(res);
          answer.on('error', () => res.destroy());
        },
      );
      upstream.on('socket', (socket) => {
        const start = (): void => {
          if (sent) return;
          sent = true;
          req.pipe(upstream);
        };
        if (socket.connecting) socket.once('connect', start);
        else start();
      });
      upstream.on('error', (error: NodeJS.ErrnoException) => {
        if (!sent && error.code === 'ECONNREFUSED') return forward(); // nothing sent yet: the next replica
        if (res.headersSent) return res.destroy();
        log.push({ method: req.method ?? '', url: req.url ?? '', replica: index, status: 502, ms: elapsed(), picked });
        res.writeHead(502, { 'content-type': 'application/json', connection: 'close' });
        res.end(JSON.stringify({ success: false, error: `replica ${index}: ${error.message}`, code: 'INTERNAL' }));
        req.resume();
      });
    };
    forward();
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    choices,
    setReplica: (index, url) => {
      targets[index] = url;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
