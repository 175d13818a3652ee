import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { FleetBus } from './fleet-bus.js';

/** The NOTIFY channel the replicas of one database share. */
const CHANNEL = 'ros2_upload_fleet';
/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more (by default). */
const MAX_PAYLOAD_BYTES = 7999;
/** Waits between reconnection attempts, growing to the last. */
const RECONNECT_MS = [250, 500, 1000, 2000, 5000];

/**
 * The fleet bus of replicas sharing PostgreSQL: LISTEN/NOTIFY on one connection of its own,
 * which both listens and publishes. A payload is `<member id> <message>`; PostgreSQL delivers a
 * notification to the sending connection too, so this member's own are dropped by id. A lost
 * connection is made again (with a growing wait) and the members listening for `onResync` are
 * told, since notifications sent meanwhile are gone; messages published while it is down are
 * dropped (the live view is a view: the database stays the truth).
 */
export class PostgresFleetBus implements FleetBus {
  readonly id = randomBytes(6).toString('hex');
  readonly peers = true;
  readonly maxMessageBytes = MAX_PAYLOAD_BYTES - 13;
  readonly #config: pg.ClientConfig;
  readonly #onError: (error: Error) => void;
  readonly #messageListeners: ((message: string, origin: string) => void)[] = [];
  readonly #resyncListeners: (() => void)[] = [];
  #client: pg.Client | undefined;
  #closed = false;
  #reconnecting: NodeJS.Timeout | undefined;
  #attempt = 0;

  private constructor(config: pg.ClientConfig, onError: (error: Error) => void) {
    this.#config = config;
    this.#onError = onError;
  }

  /** Connects and listens; `onError` hears of a lost connection (it is made again by itself). */
  static async open(config: pg.ClientConfig, onError: (error: Error) => void): Promise<PostgresFleetBus> {
    const bus = new PostgresFleetBus(config, onError);
    await bus.#connect();
    return bus;
  }

  async publish(message: string): Promise<void> {
    const client = this.#client;
    if (!client) return;
    const payload = `${this.id} ${message}`;
    if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES)
      throw new Error(`a fleet message of ${Buffer.byteLength(payload)} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
    await client.query('SELECT pg_notify($1, $2)', [CHANNEL, payload]);
  }

  onMessage(listener: (message: string, origin: string) => void): void {
    this.#messageListeners.push(listener);
  }

  onResync(listener: () => void): void {
    this.#resyncListeners.push(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#reconnecting);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    const client = new pg.Client(this.#config);
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, new Error('the connection ended')));
    client.on('notification', (notification) => {
      if (notification.channel !== CHANNEL || notification.payload === undefined) return;
      const space = notification.payload.indexOf(' ');
      if (space < 0) return;
      const origin = notification.payload.slice(0, space);
      if (origin === this.id) return;
      const message = notification.payload.slice(space + 1);
      for (const listener of this.#messageListeners) listener(message, origin);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (error) {
      client.removeAllListeners('end');
      client.on('error', () => undefined);
      await client.end().catch(() => undefined);
      throw error;
    }
    this.#client = client;
  }

  #lost(client: pg.Client, error: Error): void {
    if (this.#client !== client || this.#closed) return;
    this.#client = undefined;
    client.on('error', () => undefined);
    client.end().catch(() => undefined);
    this.#onError(error);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed) return;
    const wait = RECONNECT_MS[Math.min(this.#attempt, RECONNECT_MS.length - 1)];
    this.#attempt += 1;
    this.#reconnecting = setTimeout(() => {
      this.#connect().then(
        () => {
          this.#attempt = 0;
          if (this.#closed) {
            void this.close();
            return;
          }
          for (const listener of this.#resyncListeners) listener();
        },
        () => this.#scheduleReconnect(),
      );
    }, wait);
    this.#reconnecting.unref();
  }
}
