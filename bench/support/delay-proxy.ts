import net from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * A TCP proxy on 127.0.0.1 that adds a fixed one-way delay in each direction, for the
 * benchmarks over a long link where `tc netem` is not available (no sch_netem module, no
 * namespaces). Each read is stamped with its arrival time and written to the other side at
 * arrival + delay, in order; there is no per-packet serialisation, so the path keeps the
 * bandwidth of loopback and only its round trip grows by 2 × delay. Each leg is a loopback TCP
 * connection of its own, so the delay does not slow TCP's congestion window growth as a real
 * long link would: the figures are about the latency the protocol waits out, not TCP.
 *
 * The delay holds up to bandwidth × delay bytes per direction in memory (it is the "wire").
 * Back-pressure: when the side it writes to does not keep up, the side it reads from is paused
 * until it drained, so memory stays bounded by the delay window.
 */
export class DelayProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #delayMs: number;
  #port = 0;

  private constructor(targetPort: number, delayMs: number) {
    this.#delayMs = delayMs;
    this.#server = net.createServer((client) => {
      const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
      for (const socket of [client, upstream]) {
        socket.setNoDelay(true);
        this.#sockets.add(socket);
        socket.on('close', () => this.#sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      this.#pipe(client, upstream);
      this.#pipe(upstream, client);
    });
  }

  /** Starts a proxy in front of 127.0.0.1:`targetPort` with `oneWayMs` of delay each way. */
  static async start(targetPort: number, oneWayMs: number): Promise<DelayProxy> {
    const proxy = new DelayProxy(targetPort, oneWayMs);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    proxy.#port = (proxy.#server.address() as net.AddressInfo).port;
    return proxy;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Round trip added, ms. */
  get addedRttMs(): number {
    return 2 * this.#delayMs;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Forwards `from` → `to`, each read at its arrival time + delay. */
  #pipe(from: net.Socket, to: net.Socket): void {
    const queue: { due: number; data: Buffer }[] = [];
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    let blocked = false;
    const flush = (): void => {
      timer = undefined;
      const now = performance.now();
      while (queue.length > 0 && queue[0]!.due <= now + 0.5) {
        const { data } = queue.shift()!;
        if (!to.destroyed && !to.write(data) && !blocked) {
          // The receiving side is slower than the link: stop reading until it drained.
          blocked = true;
          from.pause();
          to.once('drain', () => {
            blocked = false;
            if (!from.destroyed) from.resume();
          });
        }
      }
      if (queue.length > 0) timer = setTimeout(flush, Math.max(0, queue[0]!.due - performance.now()));
      else if (ended) to.end();
    };
    from.on('data', (data: Buffer) => {
      queue.push({ due: performance.now() + this.#delayMs, data });
      timer ??= setTimeout(flush, Math.max(0, queue[0]!.due - performance.now()));
    });
    from.on('end', () => {
      ended = true;
      timer ??= setTimeout(flush, Math.max(0, (queue[0]?.due ?? 0) - performance.now()));
    });
    from.on('close', () => {
      // A reset (not a clean end) reaches the other side after the delay too.
      if (!ended) setTimeout(() => to.destroy(), this.#delayMs);
    });
  }
}
