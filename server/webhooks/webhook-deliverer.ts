import { createHmac } from 'node:crypto';
import { packageVersion } from '../../common/program/package-version.js';
import type { Logger } from '../logging/logger.js';
import type { WebhookDelivery, WebhookHook } from '../sessions/fleet-records.js';
import type { SessionStore } from '../sessions/session-store.js';

export interface WebhookDelivererOptions {
  store: SessionStore;
  log: Logger;
  /** The URL of each configured hook. */
  urls: Partial<Record<WebhookHook, string>>;
  /** Signs each body (X-Webhook-Signature: sha256=<HMAC-SHA256 hex>) when set. */
  secret: string | undefined;
  /** How long one POST may take, in ms. */
  timeoutMs: number;
  /** How long an undelivered event is retried, in ms. */
  retentionMs: number;
  /** Reports each attempt's outcome (metrics). */
  onAttempt?: (hook: WebhookHook, outcome: 'delivered' | 'failed' | 'given_up') => void;
}

/** First retry delay; it doubles per attempt up to MAX_DELAY_MS. */
const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 5 * 60_000;
/** Deliveries in flight at once. */
const PARALLEL = 4;

/**
 * Sends the queued webhook deliveries (see bag-tracker.ts): a POST of the event's JSON to the
 * hook's URL. A 2xx answer delivers it (the delivery is then deleted); anything else, a timeout
 * or a connection failure is retried with exponential backoff (1 s doubling to 5 min, with
 * jitter) until it arrives or is older than the retention. Deliveries are in the session store,
 * so they survive restarts: at least once, each with its stable event id (X-Event-Id and `id`
 * in the body), in no guaranteed order.
 */
export class WebhookDeliverer {
  readonly #o: WebhookDelivererOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #abort = new AbortController();

  constructor(options: WebhookDelivererOptions) {
    this.#o = options;
  }

  /** Deletes the deliveries of hooks no longer configured, then starts sending. */
  async start(): Promise<void> {
    for (const hook of ['file', 'bag'] as const) {
      if (this.#o.urls[hook] !== undefined) continue;
      const dropped = await this.#o.store.fleet.dropDeliveries(hook);
      if (dropped > 0) {
        this.#o.log.warn(
          { event: 'webhook_dropped', hook, dropped },
          `${dropped} pending ${hook} webhook deliveries dropped: no URL is configured for them any more`,
        );
      }
    }
    this.kick();
  }

  /** Looks for due deliveries now (new ones were queued). */
  kick(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#running = this.#run().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.kick();
      }
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#abort.abort();
    await this.#running;
    await Promise.allSettled(this.#inFlight);
  }

  async #run(): Promise<void> {
    const { store, log } = this.#o;
    try {
      for (;;) {
        const due = await store.fleet.dueDeliveries(Date.now(), PARALLEL * 4);
        if (due.length === 0 || this.#closed) break;
        for (const delivery of due) {
          while (this.#inFlight.size >= PARALLEL) await Promise.race(this.#inFlight);
          if (this.#closed) return;
          const sending: Promise<void> = this.#deliver(delivery).finally(() => this.#inFlight.delete(sending));
          this.#inFlight.add(sending);
        }
        await Promise.allSettled(this.#inFlight);
      }
      const next = await store.fleet.nextDeliveryAt();
      if (next !== undefined && !this.#closed) this.#schedule(next - Date.now());
    } catch (error) {
      log.error({ event: 'webhook_queue_failed', err: error }, 'Could not read the webhook queue; retrying');
      this.#schedule(FIRST_DELAY_MS * 5);
    }
  }

  #schedule(delayMs: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.kick(), Math.max(0, Math.min(delayMs, MAX_DELAY_MS)));
    this.#timer.unref();
  }

  async #deliver(delivery: WebhookDelivery): Promise<void> {
    const { store, log } = this.#o;
    const url = this.#o.urls[delivery.hook];
    if (url === undefined) {
      await store.fleet.deleteDelivery(delivery.id);
      return;
    }
    const attempt = delivery.attempts + 1;
    const failure = await this.#post(url, delivery, attempt);
    if (failure === undefined) {
      await store.fleet.deleteDelivery(delivery.id);
      this.#o.onAttempt?.(delivery.hook, 'delivered');
      log.info(
        { event: 'webhook_delivered', hook: delivery.hook, eventId: delivery.id, attempt },
        `Delivered the ${delivery.hook} event ${delivery.id} to its webhook`,
      );
      return;
    }
    const now = Date.now();
    if (now - delivery.createdAt >= this.#o.retentionMs) {
      await store.fleet.deleteDelivery(delivery.id);
      this.#o.onAttempt?.(delivery.hook, 'given_up');
      log.error(
        { event: 'webhook_given_up', hook: delivery.hook, eventId: delivery.id, attempts: attempt, reason: failure },
        `Gave up delivering the ${delivery.hook} event ${delivery.id} after ${attempt} attempts: ${failure}`,
      );
      return;
    }
    const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.min(attempt - 1, 20));
    const next = now + Math.round(delay * (0.8 + Math.random() * 0.4));
    await store.fleet.rescheduleDelivery(delivery.id, attempt, next, failure);
    this.#o.onAttempt?.(delivery.hook, 'failed');
    log.warn(
      { event: 'webhook_failed', hook: delivery.hook, eventId: delivery.id, attempt, reason: failure },
      `The ${delivery.hook} webhook did not take event ${delivery.id} (${failure}); retrying in ${Math.round(
        (next - now) / 1000,
      )} s`,
    );
  }

  /** POSTs one delivery; resolves with undefined when it arrived, else the reason. */
  async #post(url: string, delivery: WebhookDelivery, attempt: number): Promise<string | undefined> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': `ros2-upload-server/${packageVersion()}`,
      'x-event-id': delivery.id,
      'x-event-type': delivery.hook === 'file' ? 'file.completed' : 'bag.completed',
      'x-delivery-attempt': String(attempt),
    };
    if (this.#o.secret !== undefined) {
      headers['x-webhook-signature'] =
        `sha256=${createHmac('sha256', this.#o.secret).update(delivery.body).digest('hex')}`;
    }
    try {
      // undici is loaded with the first delivery: a server without webhooks never needs it.
      const { request } = await import('undici');
      const answer = await request(url, {
        method: 'POST',
        headers,
        body: delivery.body,
        headersTimeout: this.#o.timeoutMs,
        bodyTimeout: this.#o.timeoutMs,
        signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#o.timeoutMs)]),
      });
      await answer.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
      return answer.statusCode >= 200 && answer.statusCode < 300 ? undefined : `HTTP ${answer.statusCode}`;
    } catch (error) {
      const reason = error as Error & { code?: string };
      return reason.code ? `${reason.code}: ${reason.message}` : reason.message;
    }
  }
}
