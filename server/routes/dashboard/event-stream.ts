import type { RequestHandler, Response } from 'express';
import type { FleetUpdate } from '../../../common/protocol/fleet-views.js';
import type { FleetView } from '../../fleet/fleet-view.js';
import { viewerOf } from '../../http/viewer-access.js';
import type { Logger } from '../../logging/logger.js';

/** A client that falls this far behind (bytes not yet sent) is dropped; it reconnects to a fresh snapshot. */
const MAX_BACKLOG_BYTES = 8 * 1024 * 1024;
/** Comment lines keep idle connections (and proxies) alive between updates. */
const HEARTBEAT_MS = 15_000;
/** The browser's EventSource waits this long before it reconnects. */
const RETRY_MS = 2000;

interface Client {
  res: Response;
  /** Updates that arrive while the snapshot is being made wait here. */
  pending: string[] | undefined;
}

/**
 * GET /v1/events: the fleet view as server-sent events. Each connection gets a `snapshot`
 * event, then `update` events (at most one a second, serialised once for all clients). The
 * browser's EventSource reconnects by itself (`retry:`), and gets a new snapshot; a client too
 * slow to keep up is dropped the same way rather than buffered without bound.
 */
export class EventStreamHub {
  readonly #fleet: FleetView;
  readonly #log: Logger;
  readonly #clients = new Set<Client>();
  #unsubscribe: (() => void) | undefined;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(fleet: FleetView, log: Logger) {
    this.#fleet = fleet;
    this.#log = log;
  }

  get clients(): number {
    return this.#clients.size;
  }

  route(): RequestHandler {
    return (req, res) => {
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-store',
        Connection: 'keep-alive',
        // nginx would otherwise buffer the stream.
        'X-Accel-Buffering': 'no',
      });
      res.write(`retry: ${RETRY_MS}\n\n`);
      req.socket.setNoDelay(true);
      // The socket's idle timeout does not apply: heartbeats flow, and a dead peer fails a write.
      req.socket.setTimeout(0);
      const client: Client = { res, pending: [] };
      this.#clients.add(client);
      this.#subscribe();
      const remove = (): void => {
        this.#clients.delete(client);
        if (this.#clients.size === 0) this.#stop();
      };
      res.once('close', remove);
      this.#fleet.snapshot(viewerOf(res) ?? '').then(
        (snapshot) => {
          const waiting = client.pending ?? [];
          client.pending = undefined;
          this.#send(client, `event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`);
          for (const text of waiting) this.#send(client, text);
        },
        (error: unknown) => {
          this.#log.error({ event: 'snapshot_failed', err: error }, 'Could not build the fleet snapshot');
          res.end();
        },
      );
    };
  }

  /** Ends every stream (the server is closing; pages reconnect to whatever comes next). */
  closeAll(): void {
    for (const client of this.#clients) client.res.end();
    this.#clients.clear();
    this.#stop();
  }

  #subscribe(): void {
    if (this.#unsubscribe) return;
    this.#unsubscribe = this.#fleet.subscribe((update) => this.#broadcast(update));
    this.#heartbeat = setInterval(() => {
      for (const client of this.#clients) if (!client.pending) this.#send(client, ': heartbeat\n\n');
    }, HEARTBEAT_MS);
    this.#heartbeat.unref();
  }

  #stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearInterval(this.#heartbeat);
  }

  #broadcast(update: FleetUpdate): void {
    const text = `event: update\ndata: ${JSON.stringify(update)}\n\n`;
    for (const client of this.#clients) {
      if (client.pending) client.pending.push(text);
      else this.#send(client, text);
    }
  }

  #send(client: Client, text: string): void {
    const { res } = client;
    if (res.writableEnded || res.destroyed) return;
    if (res.writableLength > MAX_BACKLOG_BYTES) {
      this.#log.warn(
        { event: 'stream_dropped', backlog: res.writableLength },
        'Dropped a dashboard stream that fell behind',
      );
      res.destroy();
      return;
    }
    res.write(text);
  }
}
