import { UploadError } from '../../../common/errors/upload-error.js';
import type { AgentController, AgentStatus, EnqueueResult, HeldBackFile } from '../../../agent/app/agent-controller.js';
import { agentOptions } from '../../../agent/app/agent-options.js';
import type { UploadSnapshot } from '../../../agent/engine/upload-events.js';

/**
 * An AgentController for driving the ROS node in tests (the seam exception: the real agent needs
 * a server, a watcher and a journal, which other tests cover). It keeps the interface's
 * contract: setOption validates with the shared schema and throws an UploadError when refused,
 * the old value staying; onChange fires on every change; stop() drains.
 */
export class FakeAgent implements AgentController {
  readonly uploads = new Map<string, UploadSnapshot>();
  readonly config: Record<string, unknown> = { ...agentOptions.defaults() };
  online = true;
  paused = false;
  freeDiskBytes: number | undefined = 40e9;
  lowDisk = false;
  heldBack: HeldBackFile[] = [];
  problems: AgentStatus['problems'] = [];
  /** Options the fake refuses to change at run time (as a real agent may for stateDir). */
  readonly fixedAtRunTime = new Set<string>(['stateDir']);
  readonly calls = {
    pause: 0,
    resume: 0,
    retryFailed: 0,
    stop: 0,
    enqueue: [] as { path: string; options: { priority?: number; metadata?: Record<string, unknown> } | undefined }[],
    markClosed: [] as string[],
    setOption: [] as { key: string; value: unknown }[],
  };
  /** What enqueue answers; default: accepted with one id. */
  enqueueResult: (path: string) => Promise<EnqueueResult> = async (path) => ({
    accepted: true,
    message: `queued ${path}`,
    uploadIds: [`id-${this.calls.enqueue.length}`],
  });
  /** What stop() waits for; default: nothing. */
  stopWork: () => Promise<void> = async () => {};
  readonly #listeners = new Set<(upload: UploadSnapshot | undefined) => void>();

  status(): AgentStatus {
    const uploads = [...this.uploads.values()].map((upload) => ({ ...upload }));
    return {
      online: this.online,
      paused: this.paused,
      bandwidthLimit: this.config.bandwidthLimit as number,
      uploads,
      bytesPending: uploads
        .filter((u) => u.state !== 'completed' && u.state !== 'failed')
        .reduce((sum, u) => sum + (u.bytesTotal - u.bytesSent), 0),
      freeDiskBytes: this.freeDiskBytes,
      lowDisk: this.lowDisk,
      heldBack: this.heldBack,
      problems: this.problems.map((problem) => ({ ...problem })),
    };
  }

  pause(): void {
    this.calls.pause += 1;
    this.paused = true;
    this.#emit(undefined);
  }

  resume(): void {
    this.calls.resume += 1;
    this.paused = false;
    this.#emit(undefined);
  }

  async enqueue(
    path: string,
    options?: { priority?: number; metadata?: Record<string, unknown> },
  ): Promise<EnqueueResult> {
    this.calls.enqueue.push({ path, options });
    return this.enqueueResult(path);
  }

  retryFailed(): number {
    this.calls.retryFailed += 1;
    const failed = [...this.uploads.values()].filter((upload) => upload.state === 'failed');
    for (const upload of failed)
      this.update(upload.id, { state: 'queued', lastError: undefined, errorCode: undefined });
    return failed.length;
  }

  setOption(key: string, value: unknown): void {
    this.calls.setOption.push({ key, value });
    if (!Object.hasOwn(agentOptions.specs, key))
      throw new UploadError('CONFIG_UNKNOWN_OPTION', `Unknown option "${key}"`);
    const parsed = agentOptions.parseValue(key as keyof typeof agentOptions.specs & string, value, 'ROS parameter');
    if (this.fixedAtRunTime.has(key))
      throw new UploadError('CONFIG_INVALID', `${key} cannot change while the agent runs; restart it`);
    this.config[key] = parsed;
    this.#emit(undefined);
  }

  markClosed(filePath: string): void {
    this.calls.markClosed.push(filePath);
  }

  onChange(listener: (upload: UploadSnapshot | undefined) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async stop(): Promise<void> {
    this.calls.stop += 1;
    await this.stopWork();
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }

  // ---- test driver ----

  /** Adds or changes an upload and reports it, as the engine does. */
  update(id: string, patch: Partial<UploadSnapshot>): UploadSnapshot {
    const previous = this.uploads.get(id) ?? snapshot(id);
    const next = { ...previous, ...patch };
    this.uploads.set(id, next);
    this.#emit({ ...next });
    return next;
  }

  #emit(upload: UploadSnapshot | undefined): void {
    for (const listener of this.#listeners) listener(upload);
  }
}

export function snapshot(id: string, patch: Partial<UploadSnapshot> = {}): UploadSnapshot {
  return {
    id,
    localPath: `/data/bags/run1/${id}.mcap`,
    remotePath: `run1/${id}.mcap`,
    bagName: 'run1',
    state: 'queued',
    priority: 5,
    bytesSent: 0,
    bytesTotal: 10_000_000,
    rate: 0,
    etaSeconds: undefined,
    attempt: 1,
    lastError: undefined,
    sha256: undefined,
    metadata: undefined,
    queuedAt: '2026-01-01T00:00:00.000Z',
    startedAt: undefined,
    finishedAt: undefined,
    ...patch,
  };
}
