import {
  FAILURE_MESSAGE_CHARS,
  type BagDelta,
  type CompletionDelta,
  type FailureDelta,
  type FleetDeltas,
  type UploadDelta,
} from './fleet-deltas.js';

/** Completions and failures carried per report at most (counters carry the rest). */
const LISTED_PER_REPORT = 50;

/**
 * What this replica saw since its last report to the others (FleetView sends one a second):
 * per uploader the sums, the ended sessions, a bounded list of completions and failures, and
 * the bags that changed. Upload progress is taken from the view itself when the report is made,
 * so a report carries one item per upload however many chunks arrived.
 */
export class FleetOutbox {
  readonly #robots = new Map<string, { lastSeen: number; bytes: number; files: number; errors: number }>();
  #ended: string[] = [];
  #completions: CompletionDelta[] = [];
  #failures: FailureDelta[] = [];
  readonly #bags = new Map<string, BagDelta>();

  seen(uploader: string, now: number): void {
    this.#robot(uploader).lastSeen = now;
  }

  received(uploader: string, bytes: number, now: number): void {
    const robot = this.#robot(uploader);
    robot.bytes += bytes;
    robot.lastSeen = now;
  }

  completed(completion: CompletionDelta): void {
    this.#robot(completion[0]).files += 1;
    if (this.#completions.length < LISTED_PER_REPORT) this.#completions.push(completion);
  }

  failed(uploader: string | null, code: string, status: number, message: string, route: string, at: number): void {
    if (uploader !== null) this.#robot(uploader).errors += 1;
    if (this.#failures.length < LISTED_PER_REPORT)
      this.#failures.push([uploader, code, status, message.slice(0, FAILURE_MESSAGE_CHARS), route.slice(0, 200), at]);
  }

  ended(sessionId: string): void {
    this.#ended.push(sessionId);
  }

  bagChanged(uploader: string, bag: string): void {
    this.#bags.set(`${uploader}\0${bag}`, [uploader, bag]);
  }

  /** The report with `uploads` (the progress to tell), emptying the outbox. */
  take(uploads: UploadDelta[]): FleetDeltas {
    const deltas: FleetDeltas = {};
    if (this.#ended.length > 0) deltas.e = this.#ended;
    if (uploads.length > 0) deltas.u = uploads;
    if (this.#robots.size > 0)
      deltas.r = [...this.#robots].map(([uploader, r]) => [uploader, r.lastSeen, r.bytes, r.files, r.errors]);
    if (this.#completions.length > 0) deltas.c = this.#completions;
    if (this.#failures.length > 0) deltas.f = this.#failures;
    if (this.#bags.size > 0) deltas.b = [...this.#bags.values()];
    this.#robots.clear();
    this.#bags.clear();
    this.#ended = [];
    this.#completions = [];
    this.#failures = [];
    return deltas;
  }

  #robot(uploader: string): { lastSeen: number; bytes: number; files: number; errors: number } {
    let robot = this.#robots.get(uploader);
    if (!robot) {
      robot = { lastSeen: 0, bytes: 0, files: 0, errors: 0 };
      this.#robots.set(uploader, robot);
    }
    return robot;
  }
}
