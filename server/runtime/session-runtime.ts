import { type HashFork, NodePrefixHash, type PrefixHash } from '../integrity/prefix-hash.js';
import type { ChunkRecord, CompletionResult, SessionRecord } from '../sessions/session-record.js';
import { type Lock, Mutex } from './mutex.js';

/** A chunk request being received; a newer request for the same index aborts it and waits. */
export interface InFlightChunk {
  abort(reason: Error): void;
  done: Promise<void>;
  /** Bytes of its body received so far; absent while it waits for its turn (it is not stalled then). */
  received?: () => number;
  /** Set when a chunk waiting for it saw it receive nothing for a while: no chunk waits for it again. */
  stalled?: boolean;
  /**
   * A chunk hashed in order: resolves once its body was written and checked, while it is still
   * being acknowledged, so that the chunk after it can stream in meanwhile (never when it fails).
   */
  verified?: Promise<VerifiedChunk>;
}

/** A chunk whose body was written and checked, with the fork that hashed it and the hash it goes into. */
export interface VerifiedChunk {
  fork: HashFork;
  length: number;
  into: PrefixHash;
}

/**
 * The in-memory state of one loaded session: its record, the chunks it holds, the running
 * prefix hash, the chunk requests in flight, the background hash pump and a completion in
 * progress. Loaded from the store on first use (so after a restart the hash is rebuilt from
 * the staged data by the pump), dropped when the session ends or has been idle for a while
 * (runtime-registry.ts: loaded again, hash rebuilt, when it is used again). It is what one server
 * process knows of a session; for server replicas it is a fresh copy of what the shared store
 * holds, hash state included, loaded per request (shared-runtimes.ts).
 */
export class SessionRuntime {
  record: SessionRecord;
  readonly chunks: Map<number, ChunkRecord>;
  hash: PrefixHash;
  /** The chunk requests this process is receiving for the session. */
  readonly inFlight: Map<number, InFlightChunk>;
  /**
   * Serialises changes to the session's staged data (the legacy API's appends and chunk
   * replacements, placing spooled chunks); for replicas a lock shared by all of them, which
   * reloads the session when taken.
   */
  readonly lock: Lock;
  /** The background catch-up of the prefix hash, while it runs. */
  pump: Promise<void> | undefined;
  /** Set when the pump hit an error; completion then re-verifies from the staged data. */
  pumpError: Error | undefined;
  /** A completion in progress; concurrent completes share it. */
  completion: Promise<CompletionResult> | undefined;
  /** Last 10% step logged. */
  loggedDecile = 0;
  /** Bytes of legacy form parts being received for this session, not yet held as chunks (bounded by its size). */
  legacySpooling = 0;
  /** Set once the session was cancelled or expired while a request was using it. */
  ended = false;
  /** When a request last looked the session up (epoch ms): an idle runtime is dropped from memory. */
  lastUsed = Date.now();

  constructor(
    record: SessionRecord,
    chunks: readonly ChunkRecord[],
    parts: { hash?: PrefixHash; lock?: Lock; inFlight?: Map<number, InFlightChunk> } = {},
  ) {
    this.record = record;
    this.chunks = new Map(chunks.map((chunk) => [chunk.index, chunk]));
    this.hash = parts.hash ?? new NodePrefixHash(record.api === 'legacy');
    this.lock = parts.lock ?? new Mutex();
    this.inFlight = parts.inFlight ?? new Map();
  }

  /** Takes over a newer state of the session (replicas: loaded from the shared store). */
  refresh(record: SessionRecord, chunks: readonly ChunkRecord[], hash: PrefixHash): void {
    this.record = record;
    this.chunks.clear();
    for (const chunk of chunks) this.chunks.set(chunk.index, chunk);
    this.hash = hash;
  }

  get id(): string {
    return this.record.id;
  }

  /** True while anything works with the session: chunks being received, its hash pump, a completion, a lock held. */
  get busy(): boolean {
    return (
      this.inFlight.size > 0 ||
      this.pump !== undefined ||
      this.completion !== undefined ||
      this.legacySpooling > 0 ||
      this.lock.busy === true
    );
  }

  receivedIndexes(): number[] {
    return [...this.chunks.keys()].sort((a, b) => a - b);
  }

  receivedBytes(): number {
    let total = 0;
    for (const chunk of this.chunks.values()) total += chunk.size;
    return total;
  }

  missingIndexes(): number[] {
    const missing: number[] = [];
    for (let index = 0; index < this.record.chunkCount; index += 1) if (!this.chunks.has(index)) missing.push(index);
    return missing;
  }
}
