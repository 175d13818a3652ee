/**
 * How server replicas tell each other what the fleet view shows live (uploads in progress,
 * robots, completions, failures, bags that changed): a broadcast of small text messages. One
 * process alone has no one to tell (LoneFleetBus: the fleet view then encodes nothing); replicas
 * sharing PostgreSQL use LISTEN/NOTIFY (postgres-fleet-bus.ts); InProcessFleetHub joins several
 * views of one process (library callers, tests).
 *
 * A bus delivers each message to every other member, never back to its sender; delivery is at
 * most once and may skip messages while a member is disconnected (`onResync` then tells it to
 * read again what the database knows).
 */
export interface FleetBus {
  /** This member's id (unique per process and start), as other members see it in `origin`. */
  readonly id: string;
  /** False when no other member can exist: publishing is pointless and is skipped. */
  readonly peers: boolean;
  /** The longest message (UTF-8 bytes) the transport carries. */
  readonly maxMessageBytes: number;
  publish(message: string): Promise<void>;
  /** Messages of the other members. */
  onMessage(listener: (message: string, origin: string) => void): void;
  /** Called after a lost connection is back: messages may have been missed meanwhile. */
  onResync(listener: () => void): void;
  close(): Promise<void>;
}

/** The bus of a server without replicas: no one else listens. */
export class LoneFleetBus implements FleetBus {
  readonly id = 'local';
  readonly peers = false;
  readonly maxMessageBytes = Number.POSITIVE_INFINITY;

  async publish(): Promise<void> {}
  onMessage(): void {}
  onResync(): void {}
  async close(): Promise<void> {}
}

/** Several fleet views of one process on one bus (each `join` is a member). */
export class InProcessFleetHub {
  readonly #members = new Set<InProcessMember>();
  #next = 1;

  join(maxMessageBytes = 8000): FleetBus {
    const member: InProcessMember = new InProcessMember(`member-${this.#next++}`, maxMessageBytes, this.#members);
    this.#members.add(member);
    return member;
  }
}

class InProcessMember implements FleetBus {
  readonly id: string;
  readonly peers = true;
  readonly maxMessageBytes: number;
  readonly listeners: ((message: string, origin: string) => void)[] = [];
  readonly #members: Set<InProcessMember>;

  constructor(id: string, maxMessageBytes: number, members: Set<InProcessMember>) {
    this.id = id;
    this.maxMessageBytes = maxMessageBytes;
    this.#members = members;
  }

  async publish(message: string): Promise<void> {
    if (Buffer.byteLength(message) > this.maxMessageBytes)
      throw new Error(`a fleet message of ${Buffer.byteLength(message)} bytes exceeds ${this.maxMessageBytes}`);
    // Delivered later, as a network transport would: never inside the publisher's own call.
    for (const member of this.#members) {
      if (member === this) continue;
      setImmediate(() => {
        for (const listener of member.listeners) listener(message, this.id);
      });
    }
  }

  onMessage(listener: (message: string, origin: string) => void): void {
    this.listeners.push(listener);
  }

  onResync(): void {}

  async close(): Promise<void> {
    this.#members.delete(this);
  }
}
