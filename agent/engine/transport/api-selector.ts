import type { HealthResponse } from '../../../common/protocol/native-protocol.js';
import { errorDetails } from './http-errors.js';
import type { AttemptLimits, HttpTransport } from './http-transport.js';
import { LegacyClient } from './legacy-client.js';
import { SessionClient } from './session-client.js';
import type { UploadTransport } from './upload-transport.js';

/** The feature a server lists in /health when it speaks the native protocol. */
const NATIVE_FEATURE = 'native-protocol-v1';

/**
 * Which API one connection target (server URL and credentials: one HttpTransport) speaks. The
 * native protocol is assumed, at no cost: a native server is never probed for it. A native call
 * answered 404 as by a server without the native API (`forget()`), or a reconnect, makes the
 * next upload ask GET /health once (shared by every upload asking meanwhile), and the answer is
 * kept: `protocol` (or the native feature) means the native protocol; an answer without them
 * (the Python dashboard's /health, or ours with its native API switched off) means the legacy
 * API only. A server without /health (404/405) is taken as native, as before.
 */
export class ApiSelector {
  readonly #http: HttpTransport;
  readonly #onLegacy: (server: string) => void;
  #native: SessionClient;
  #legacy: LegacyClient | undefined;
  #chosen: UploadTransport;
  /** The next upload asks /health first. */
  #unsure = false;
  #detecting: Promise<UploadTransport> | undefined;
  #probes = 0;

  /** `onLegacy`: called each time a probe finds a legacy-only server (the caller logs it). */
  constructor(http: HttpTransport, onLegacy: (server: string) => void) {
    this.#http = http;
    this.#onLegacy = onLegacy;
    this.#native = new SessionClient(http);
    this.#chosen = this.#native;
  }

  /** The native client (health checks, cancelling sessions). */
  get native(): SessionClient {
    return this.#native;
  }

  /** The transport for the API found (or assumed). */
  get chosen(): UploadTransport {
    return this.#chosen;
  }

  /** /health requests made to find the API (for tests and diagnostics). */
  get probes(): number {
    return this.#probes;
  }

  /** The transport for this target: the one found (or assumed), or after forget() the answer of one probe. */
  resolve(limits: Omit<AttemptLimits, 'signal' | 'onStall'>): Promise<UploadTransport> {
    if (!this.#unsure) return Promise.resolve(this.#chosen);
    this.#detecting ??= this.#detect(limits).finally(() => {
      this.#detecting = undefined;
    });
    return this.#detecting;
  }

  /** Takes a /health answer got elsewhere (the reachability probe) as the answer for this target. */
  learn(health: unknown): void {
    this.#choose(health);
  }

  /**
   * The next upload asks /health again. `seen`: the transport the failed call went through; when
   * another was chosen since (uploads that began together all meet the same 404), nothing changes.
   */
  forget(seen?: UploadTransport): void {
    if (seen !== undefined && seen !== this.#chosen) return;
    this.#unsure = true;
  }

  async #detect(limits: Omit<AttemptLimits, 'signal' | 'onStall'>): Promise<UploadTransport> {
    this.#probes += 1;
    let health: HealthResponse | undefined;
    try {
      health = await this.#native.health(limits);
    } catch (error) {
      const { status } = errorDetails(error);
      // No /health at all (or a front that hides it): the native protocol, as before detection existed.
      if (status !== 404 && status !== 405) throw error;
    }
    return this.#choose(health);
  }

  #choose(health: unknown): UploadTransport {
    this.#unsure = false;
    if (isLegacyOnly(health)) {
      const wasLegacy = this.#chosen.api === 'legacy';
      this.#legacy ??= new LegacyClient(this.#http);
      this.#chosen = this.#legacy;
      if (!wasLegacy) this.#onLegacy(this.#http.base.href);
    } else {
      // A server found native again (after a legacy spell) starts with a fresh view of its routes.
      if (this.#chosen.api === 'legacy') this.#native = new SessionClient(this.#http);
      this.#chosen = this.#native;
    }
    return this.#chosen;
  }
}

/** A /health answer of a server that offers only the legacy API: `status: "ok"`, no `protocol`, no native feature. */
export function isLegacyOnly(health: unknown): boolean {
  if (!health || typeof health !== 'object') return false;
  const body = health as Record<string, unknown>;
  if (body.status !== 'ok') return false;
  if (typeof body.protocol === 'number' && body.protocol >= 1) return false;
  return !(Array.isArray(body.features) && body.features.includes(NATIVE_FEATURE));
}
