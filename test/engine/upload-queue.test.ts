import { describe, expect, it } from 'vitest';
import { UploadQueue, type Slot } from '../../agent/engine/queue/upload-queue.js';
import { waitFor } from '../helpers/wait-for.js';

interface Item {
  name: string;
  priority: number;
  seq: number;
  size?: number;
}

/** A queue whose backlog grants are recorded by name, with their slots. */
function recordingQueue(
  concurrency: number,
  sharing?: { uploads: number; bytes: number; fileBytes: number },
): { queue: UploadQueue<Item>; granted: { name: string; slot: Slot }[] } {
  const granted: { name: string; slot: Slot }[] = [];
  const queue = new UploadQueue<Item>(
    concurrency,
    (item, slot) => granted.push({ name: item.name, slot }),
    sharing ? { sizeOf: (item) => item.size ?? 0, limits: () => sharing } : undefined,
  );
  return { queue, granted };
}

/** Backlog items named and sized as given, in that queue order (priority 5). */
function enqueueAll(queue: UploadQueue<Item>, sizes: [string, number][]): void {
  for (const [index, [name, size]] of sizes.entries()) queue.enqueue({ name, priority: 5, seq: index + 1, size });
}

describe('UploadQueue', () => {
  it('grants slots by priority (1 first), FIFO within a priority', async () => {
    const { queue } = recordingQueue(1);
    const granted: { name: string; slot: Slot }[] = [];
    const requests: [string, number][] = [
      ['a5', 5],
      ['b1', 1],
      ['c5', 5],
      ['d3', 3],
      ['e1', 1],
      ['f10', 10],
    ];
    requests.forEach(
      ([name, priority], seq) => void queue.acquire(priority, seq + 1).then((slot) => granted.push({ name, slot })),
    );
    queue.open();
    for (let i = 0; i < requests.length; i += 1) {
      await waitFor(() => granted.length === i + 1, `grant ${i + 1}`);
      expect(queue.held).toBe(1);
      granted[i]!.slot.release();
    }
    expect(granted.map((g) => g.name)).toEqual(['b1', 'e1', 'd3', 'a5', 'c5', 'f10']);
  });

  it('a file that gives its slot back gets it again before files queued after it', async () => {
    const { queue } = recordingQueue(1);
    queue.open();
    const a = await queue.acquire(5, 1);
    const order: string[] = [];
    const slots = new Map<string, Slot>();
    const want = (name: string, seq: number): void =>
      void queue.acquire(5, seq).then((slot) => {
        order.push(name);
        slots.set(name, slot);
      });
    want('b', 3);
    want('c', 4);
    a.release(); // a waits (a backoff): b gets the slot
    await waitFor(() => order.length === 1, 'the condition');
    want('a', 1); // a is back, while c still waits
    slots.get('b')!.release();
    await waitFor(() => order.length === 2, 'the condition');
    slots.get(order[1]!)!.release();
    await waitFor(() => order.length === 3, 'the condition');
    expect(order).toEqual(['b', 'a', 'c']);
  });

  it('grants nothing while closed, and an abandoned request neither blocks nor holds a slot', async () => {
    const { queue } = recordingQueue(2);
    let granted = 0;
    const controller = new AbortController();
    const abandoned = queue.acquire(1, 1, controller.signal);
    void queue.acquire(5, 2).then(() => (granted += 1));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(granted).toBe(0);
    controller.abort(new Error('gone'));
    await expect(abandoned).rejects.toThrow('gone');
    queue.open();
    await waitFor(() => granted === 1, 'the condition');
    await waitFor(() => queue.held === 1, 'the abandoned request to give its slot back');
  });

  it('concurrency can change at run time', async () => {
    const { queue } = recordingQueue(1);
    queue.open();
    let granted = 0;
    for (let i = 0; i < 3; i += 1) void queue.acquire(5, i).then(() => (granted += 1));
    await waitFor(() => granted === 1, 'the condition');
    queue.concurrency = 3;
    await waitFor(() => granted === 3, 'the condition');
  });

  it('feeds the backlog in order, one slot at a time, and a raised priority moves an upload forward', async () => {
    const { queue, granted } = recordingQueue(1);
    const items: Item[] = [
      { name: 'q5', priority: 5, seq: 1 },
      { name: 'r5', priority: 5, seq: 2 },
      { name: 's3', priority: 3, seq: 3 },
      { name: 't7', priority: 7, seq: 4 },
    ];
    for (const item of items) queue.enqueue(item);
    queue.enqueue(items[0]!); // queued once only
    expect(queue.waiting).toBe(4);
    queue.open();
    await waitFor(() => granted.length === 1, 'the first grant');
    expect(granted[0]!.name).toBe('s3');
    // t7 is raised to 1 while it waits: it goes next.
    items[3]!.priority = 1;
    queue.reprioritize(items[3]!);
    granted[0]!.slot.release();
    await waitFor(() => granted.length === 2, 'the second grant');
    expect(granted[1]!.name).toBe('t7');
    for (let i = 2; i < 4; i += 1) {
      granted[i - 1]!.slot.release();
      await waitFor(() => granted.length === i + 1, `grant ${i + 1}`);
    }
    expect(granted.map((g) => g.name)).toEqual(['s3', 't7', 'q5', 'r5']);
    expect(queue.waiting).toBe(0);
  });

  it('ready uploads and the backlog share the slots in one order', async () => {
    const { queue, granted } = recordingQueue(2);
    const order: string[] = [];
    queue.enqueue({ name: 'backlog-p5', priority: 5, seq: 10 });
    queue.enqueue({ name: 'backlog-p2', priority: 2, seq: 11 });
    void queue.acquire(3, 1).then(() => order.push('ready-p3'));
    void queue.acquire(5, 2).then(() => order.push('ready-p5-seq2'));
    queue.open();
    await waitFor(() => queue.held === 2, 'two slots granted');
    await new Promise((resolve) => setTimeout(resolve, 20));
    // The best two: backlog-p2, then ready-p3; the rest wait.
    expect(granted.map((g) => g.name)).toEqual(['backlog-p2']);
    expect(order).toEqual(['ready-p3']);
    granted[0]!.slot.release();
    await waitFor(() => order.length === 2, 'the third grant');
    // p5: the ready upload (seq 2) before the backlog's (seq 10).
    expect(order).toEqual(['ready-p3', 'ready-p5-seq2']);
    expect(granted.map((g) => g.name)).toEqual(['backlog-p2']);
  });

  it('small backlog uploads share a slot, next in order, within a count and a byte total', async () => {
    const { queue, granted } = recordingQueue(1, { uploads: 3, bytes: 100, fileBytes: 40 });
    enqueueAll(queue, [
      ['a', 10],
      ['b', 10],
      ['c', 10],
      ['d', 40],
      ['e', 40],
      ['f', 40],
      ['large', 41],
      ['g', 10],
    ]);
    queue.open();
    await waitFor(() => granted.length === 3, 'three uploads in the first slot');
    expect(granted.map((g) => g.name)).toEqual(['a', 'b', 'c']);
    expect(queue.held).toBe(1);
    // The slot is free once each of them gave its share back.
    granted[0]!.slot.release();
    granted[1]!.slot.release();
    granted[1]!.slot.release(); // idempotent: it does not give c's share back
    expect(queue.held).toBe(1);
    granted[2]!.slot.release();
    // d and e (80 bytes); f would pass 100.
    await waitFor(() => granted.length === 5, 'd and e');
    expect(granted.slice(3).map((g) => g.name)).toEqual(['d', 'e']);
    granted[3]!.slot.release();
    granted[4]!.slot.release();
    // f alone: the next, over the per-file size, never rides along, and nothing behind it passes it.
    await waitFor(() => granted.length === 6, 'f');
    expect(granted[5]!.name).toBe('f');
    granted[5]!.slot.release();
    await waitFor(() => granted.length === 7, 'large');
    expect(granted[6]!.name).toBe('large');
    expect(queue.held).toBe(1);
    granted[6]!.slot.release();
    await waitFor(() => granted.length === 8, 'g');
    expect(queue.waiting).toBe(0);
  });

  it('nothing rides along in a slot while a ready upload waits for one', async () => {
    const { queue, granted } = recordingQueue(1, { uploads: 8, bytes: 100, fileBytes: 40 });
    queue.open();
    const first = await queue.acquire(5, 1);
    const order: string[] = [];
    let ready: Slot | undefined;
    // A ready upload (it ran before) waits, ranked between the two small backlog uploads.
    void queue.acquire(5, 3).then((slot) => {
      order.push('ready');
      ready = slot;
    });
    queue.enqueue({ name: 'a', priority: 5, seq: 2, size: 10 });
    queue.enqueue({ name: 'b', priority: 5, seq: 4, size: 10 });
    first.release();
    await waitFor(() => granted.length === 1, 'a');
    expect(queue.held).toBe(1);
    order.push(...granted.map((g) => g.name));
    // a went alone: b does not ride past the ready upload.
    granted[0]!.slot.release();
    await waitFor(() => ready !== undefined, 'the ready upload');
    ready!.release();
    await waitFor(() => granted.length === 2, 'b');
    order.push(granted[1]!.name);
    expect(order).toEqual(['a', 'ready', 'b']);
  });
});
