import net from 'node:net';

/**
 * Slowloris-style clients: connections that send a request a few bytes at a time and never
 * finish it. Each records when and how the server ended it (closed, and what it answered).
 */
export interface Trickler {
  readonly socket: net.Socket;
  /** True once the server closed (or reset) the connection. */
  closed: boolean;
  /** What the server sent, if anything (a 408 answer, or the answer to a refused request). */
  received: string;
  /** Bytes this client managed to send. */
  sent: number;
}

export interface TrickleOptions {
  port: number;
  /** Sent at once after connecting (request line, headers...). */
  opening: string;
  /** Sent one piece every `everyMs`, for ever (until the server closes). */
  piece: string;
  everyMs: number;
}

/** Opens one trickling connection. */
export function trickle(options: TrickleOptions): Promise<Trickler> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port: options.port, host: '127.0.0.1' });
    const state: Trickler = { socket, closed: false, received: '', sent: 0 };
    let timer: NodeJS.Timeout | undefined;
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => (state.received += text));
    socket.on('error', () => undefined);
    socket.once('close', () => {
      state.closed = true;
      clearInterval(timer);
    });
    socket.once('connect', () => {
      socket.write(options.opening);
      state.sent += Buffer.byteLength(options.opening);
      timer = setInterval(() => {
        if (socket.destroyed) return;
        socket.write(options.piece);
        state.sent += Buffer.byteLength(options.piece);
      }, options.everyMs);
      resolve(state);
    });
    socket.once('error', reject);
  });
}

/** Opens `count` trickling connections, a few at a time. */
export async function trickleMany(count: number, options: TrickleOptions): Promise<Trickler[]> {
  const all: Trickler[] = [];
  for (let i = 0; i < count; i += 10)
    all.push(...(await Promise.all(Array.from({ length: Math.min(10, count - i) }, () => trickle(options)))));
  return all;
}

export function stillOpen(tricklers: readonly Trickler[]): number {
  return tricklers.filter((t) => !t.closed).length;
}

export function destroyAll(tricklers: readonly Trickler[]): void {
  for (const t of tricklers) t.socket.destroy();
}
