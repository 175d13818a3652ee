import net from 'node:net';

/**
 * A fault-injecting TCP proxy for tests (node:net, no HTTP knowledge): put it between a client
 * and a server and break the link the way real uplinks break.
 *
 * ```ts
 * const proxy = await FaultProxy.start({ port: server.port });
 * proxy.setFaults({ dropAfter: { bytes: 300_000, times: 3 } }); // cut 3 connections mid-transfer
 * client.connect(proxy.port); ...; proxy.stats.bytesUp           // what reached the server
 * await proxy.close();
 * ```
 *
 * Faults (change them at any time with `setFaults`; they apply to new and open connections):
 * - `dropAfter {bytes, times?, direction?}`: a connection that has forwarded `bytes` in
 *   `direction` ('up' = client→server, the default) is destroyed on both sides; applies to the
 *   next `times` connections that get there (default: every one).
 * - `stallAfter {bytes, times?, direction?}`: after `bytes`, the connection stops forwarding in
 *   both directions and stops reading (the client's buffers fill); it hangs until a side
 *   closes it.
 * - `flipBitAt {offset, bit?, times?, direction?}`: flips one bit of the byte at `offset` of a
 *   connection's stream (offset counts from the start of each connection).
 * - `flipInPattern [{pattern, bit?, times?, direction?}]`: flips one bit (default bit 0) of the
 *   LAST byte of the next occurrence of `pattern` in the stream (a path, a chunk index, a header
 *   value), for the next `times` occurrences (default 1), whichever connection carries them. A
 *   pattern split across two reads is still found (the last byte is always in the newer one).
 * - `delayMs`: every piece of data is delivered this much later (order kept).
 * - `setDown(true)`: the proxy stops listening (connects are refused) and drops every
 *   connection; `setDown(false)` listens again on the same port.
 *
 * `stats` counts connections, bytes forwarded each way, and the faults that fired.
 * `setTarget` re-points new connections (for a server restarted on another port).
 */
export type Direction = 'up' | 'down';

export interface ByteFault {
  bytes: number;
  /** How many connections it fires on; default unlimited. */
  times?: number;
  direction?: Direction;
}

export interface FlipFault {
  offset: number;
  /** Bit 0..7 of that byte; default 0. */
  bit?: number;
  times?: number;
  direction?: Direction;
}

export interface PatternFlip {
  pattern: string | Buffer;
  bit?: number;
  /** How many occurrences it damages; default 1. */
  times?: number;
  direction?: Direction;
}

export interface Faults {
  dropAfter?: ByteFault | undefined;
  stallAfter?: ByteFault | undefined;
  flipBitAt?: FlipFault | undefined;
  flipInPattern?: PatternFlip[] | undefined;
  delayMs?: number | undefined;
}

export interface ProxyStats {
  connections: number;
  bytesUp: number;
  bytesDown: number;
  drops: number;
  stalls: number;
  flips: number;
}

export interface ProxyTarget {
  host?: string;
  port: number;
}

interface Link {
  client: net.Socket;
  server: net.Socket;
  forwarded: Record<Direction, number>;
  stalled: boolean;
  /** Whether each one-shot fault already fired on this connection. */
  fired: { drop: boolean; stall: boolean; flip: boolean };
  queues: Record<Direction, Promise<void>>;
  /** The last bytes seen each way (a pattern may span two reads). */
  tails: Record<Direction, Buffer>;
}

export class FaultProxy {
  readonly stats: ProxyStats = { connections: 0, bytesUp: 0, bytesDown: 0, drops: 0, stalls: 0, flips: 0 };
  #server: net.Server;
  #target: Required<ProxyTarget>;
  #faults: Faults = {};
  #remaining = { drop: Infinity, stall: Infinity, flip: Infinity };
  /** Occurrences each pattern flip may still damage. */
  #patternsLeft: number[] = [];
  #links = new Set<Link>();
  #port = 0;
  #host: string;
  #down = false;

  private constructor(target: ProxyTarget, host: string) {
    this.#target = { host: target.host ?? '127.0.0.1', port: target.port };
    this.#host = host;
    this.#server = this.#makeServer();
  }

  /** Starts a proxy on `host` (127.0.0.1) and a free port, forwarding to `target`. */
  static async start(target: ProxyTarget, options: { host?: string; port?: number } = {}): Promise<FaultProxy> {
    const proxy = new FaultProxy(target, options.host ?? '127.0.0.1');
    await proxy.#listen(options.port ?? 0);
    return proxy;
  }

  get port(): number {
    return this.#port;
  }

  get host(): string {
    return this.#host;
  }

  /** `http://127.0.0.1:<port>` (or https). */
  url(protocol: 'http' | 'https' = 'http'): string {
    return `${protocol}://${this.#host}:${this.#port}`;
  }

  /** Open connections now. */
  get openConnections(): number {
    return this.#links.size;
  }

  setTarget(target: ProxyTarget): void {
    this.#target = { host: target.host ?? '127.0.0.1', port: target.port };
  }

  /** Replaces the faults (fields left out are cleared) and restarts their `times` counters. */
  setFaults(faults: Faults): void {
    this.#faults = { ...faults };
    this.#remaining = {
      drop: faults.dropAfter?.times ?? Infinity,
      stall: faults.stallAfter?.times ?? Infinity,
      flip: faults.flipBitAt?.times ?? Infinity,
    };
    this.#patternsLeft = (faults.flipInPattern ?? []).map((fault) => fault.times ?? 1);
    for (const link of this.#links) link.fired = { drop: false, stall: false, flip: false };
  }

  clearFaults(): void {
    this.setFaults({});
  }

  resetStats(): void {
    Object.assign(this.stats, { connections: 0, bytesUp: 0, bytesDown: 0, drops: 0, stalls: 0, flips: 0 });
  }

  /** Destroys every open connection (a link reset), without changing faults. */
  dropConnections(): void {
    for (const link of [...this.#links]) this.#destroy(link);
  }

  /** Down: refuse connections and drop the open ones. Up: listen again on the same port. */
  async setDown(down: boolean): Promise<void> {
    if (down === this.#down) return;
    this.#down = down;
    if (down) {
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      this.dropConnections();
      await closed;
    } else {
      this.#server = this.#makeServer();
      await this.#listen(this.#port);
    }
  }

  async close(): Promise<void> {
    this.dropConnections();
    if (this.#down) return;
    this.#down = true;
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #makeServer(): net.Server {
    return net.createServer((client) => this.#accept(client));
  }

  #listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, this.#host, () => {
        this.#server.off('error', reject);
        this.#port = (this.#server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  #accept(client: net.Socket): void {
    this.stats.connections += 1;
    const server = net.connect(this.#target.port, this.#target.host);
    const link: Link = {
      client,
      server,
      forwarded: { up: 0, down: 0 },
      stalled: false,
      fired: { drop: false, stall: false, flip: false },
      queues: { up: Promise.resolve(), down: Promise.resolve() },
      tails: { up: Buffer.alloc(0), down: Buffer.alloc(0) },
    };
    this.#links.add(link);
    client.setNoDelay(true);
    server.setNoDelay(true);
    const end = (): void => this.#destroy(link);
    client.on('error', end).on('close', end);
    server.on('error', end).on('close', end);
    client.on('data', (data: Buffer) => this.#onData(link, 'up', data));
    server.on('data', (data: Buffer) => this.#onData(link, 'down', data));
  }

  #onData(link: Link, direction: Direction, incoming: Buffer): void {
    if (link.stalled) return;
    let data = incoming;
    const start = link.forwarded[direction];
    const flip = this.#faults.flipBitAt;
    if (
      flip &&
      (flip.direction ?? 'up') === direction &&
      !link.fired.flip &&
      this.#remaining.flip > 0 &&
      flip.offset >= start &&
      flip.offset < start + data.length
    ) {
      data = Buffer.from(data);
      const at = flip.offset - start;
      data[at] = data[at]! ^ (1 << (flip.bit ?? 0));
      link.fired.flip = true;
      this.#remaining.flip -= 1;
      this.stats.flips += 1;
    }
    data = this.#flipPatterns(link, direction, data);
    let cut: 'drop' | 'stall' | undefined;
    for (const [kind, fault] of [
      ['drop', this.#faults.dropAfter],
      ['stall', this.#faults.stallAfter],
    ] as const) {
      if (!fault || (fault.direction ?? 'up') !== direction || link.fired[kind] || this.#remaining[kind] <= 0) continue;
      if (start + data.length >= fault.bytes) {
        data = data.subarray(0, Math.max(0, fault.bytes - start));
        link.fired[kind] = true;
        this.#remaining[kind] -= 1;
        cut = kind;
        break;
      }
    }
    link.forwarded[direction] += data.length;
    const deliver = (): void => {
      const to = direction === 'up' ? link.server : link.client;
      if (cut === 'drop') {
        // Deliver the bytes before the cut, then reset both sides.
        this.stats.drops += 1;
        const other = direction === 'up' ? link.client : link.server;
        this.#links.delete(link);
        other.destroy();
        if (data.length > 0 && !to.destroyed) {
          if (direction === 'up') this.stats.bytesUp += data.length;
          else this.stats.bytesDown += data.length;
          to.write(data, () => to.destroy());
        } else {
          to.destroy();
        }
        return;
      }
      if (data.length > 0 && !link.stalled) {
        if (!to.destroyed) {
          if (!to.write(data)) {
            // Backpressure: stop reading the sender until the receiver drains.
            const from = direction === 'up' ? link.client : link.server;
            from.pause();
            to.once('drain', () => {
              if (!link.stalled) from.resume();
            });
          }
          if (direction === 'up') this.stats.bytesUp += data.length;
          else this.stats.bytesDown += data.length;
        }
      }
      if (cut === 'stall') {
        this.stats.stalls += 1;
        link.stalled = true;
        link.client.pause();
        link.server.pause();
      }
    };
    const delay = this.#faults.delayMs ?? 0;
    if (delay > 0) {
      const due = performance.now() + delay;
      link.queues[direction] = link.queues[direction].then(
        () =>
          new Promise<void>((resolve) =>
            setTimeout(
              () => {
                deliver();
                resolve();
              },
              Math.max(0, due - performance.now()),
            ),
          ),
      );
    } else {
      deliver();
    }
  }

  /** Damages the last byte of each pattern occurrence that ends in `data` (while the fault has occurrences left). */
  #flipPatterns(link: Link, direction: Direction, incoming: Buffer): Buffer {
    const faults = this.#faults.flipInPattern ?? [];
    let data = incoming;
    const tail = link.tails[direction];
    for (const [index, fault] of faults.entries()) {
      if ((fault.direction ?? 'up') !== direction) continue;
      const pattern = typeof fault.pattern === 'string' ? Buffer.from(fault.pattern) : fault.pattern;
      let from = 0;
      while ((this.#patternsLeft[index] ?? 0) > 0) {
        const window = Buffer.concat([tail, data]);
        const found = window.indexOf(pattern, from);
        if (found < 0) break;
        const last = found + pattern.length - 1 - tail.length;
        from = found + 1;
        if (last < 0) continue; // already forwarded in an earlier read
        if (data === incoming) data = Buffer.from(incoming);
        data[last] = data[last]! ^ (1 << (fault.bit ?? 0));
        this.#patternsLeft[index] = (this.#patternsLeft[index] ?? 0) - 1;
        this.stats.flips += 1;
      }
    }
    const keep = Math.max(0, ...faults.map((fault) => Buffer.byteLength(fault.pattern) - 1));
    const joined = keep > 0 ? Buffer.concat([tail, data]) : Buffer.alloc(0);
    link.tails[direction] = Buffer.from(joined.subarray(Math.max(0, joined.length - keep)));
    return data;
  }

  #destroy(link: Link): void {
    if (!this.#links.delete(link)) return;
    link.client.destroy();
    link.server.destroy();
  }
}
