import { describe, expect, it } from 'vitest';
import { SlotQueue, type Slot } from '../../agent/engine/queue/slot-queue.js';
import { waitFor } from '../helpers/wait-for.js';

describe('SlotQueue', () => {
  it('grants slots by seed priority (1 first), FIFO within a priority', async () => {
    const queue = new SlotQueue(1);
    const granted: { name: string; slot: Slot }[] = [];
    const requests: [string, number][] = [['a5', 5], ['b1', 1], ['c5', 5], ['d3', 3], ['e1', 1], ['f10', 10]];
    requests.forEach(([name, priority], seq) => void queue.acquire(priority, seq + 1).then((slot) => granted.push({ name, slot })));
    queue.open();
    for (let i = 0; i < requests.length; i += 1) {
      await waitFor(() => granted.length === i + 1, `grant ${i + 1}`);
      expect(queue.held).toBe(1);
      granted[i]!.slot.release();
    }
    expect(granted.map((g) => g.name)).toEqual(['b1', 'e1', 'd3', 'a5', 'c5', 'f10']);
  });

  it('a file that gives its slot back gets it again before files queued after it', async () => {
    const queue = new SlotQueue(1);
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
    const queue = new SlotQueue(2);
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
    const queue = new SlotQueue(1);
    queue.open();
    let granted = 0;
    for (let i = 0; i < 3; i += 1) void queue.acquire(5, i).then(() => (granted += 1));
    await waitFor(() => granted === 1, 'the condition');
    queue.concurrency = 3;
    await waitFor(() => granted === 3, 'the condition');
  });
});
