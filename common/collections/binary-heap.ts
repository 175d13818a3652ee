/**
 * A binary min-heap over a caller's order (`before(a, b)`: a goes first). It holds the items
 * themselves, one array slot each, so a long backlog costs no object per entry.
 */
export class BinaryHeap<T extends object> {
  readonly #items: T[] = [];
  readonly #before: (a: T, b: T) => boolean;

  constructor(before: (a: T, b: T) => boolean) {
    this.#before = before;
  }

  get size(): number {
    return this.#items.length;
  }

  peek(): T | undefined {
    return this.#items[0];
  }

  push(item: T): void {
    this.#items.push(item);
    this.#siftUp(this.#items.length - 1);
  }

  pop(): T | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      this.#siftDown(0);
    }
    return top;
  }

  /** Restores the order after `item` moved forward (its key became smaller); O(n) to find it. */
  movedForward(item: T): void {
    const index = this.#items.indexOf(item);
    if (index >= 0) this.#siftUp(index);
  }

  // Both sifts carry the moving item in a local and write it once where it stops (the items it
  // passes move one level), which is the same order as swapping it step by step.

  #siftUp(start: number): void {
    const items = this.#items;
    const item = items[start];
    if (item === undefined) return;
    let index = start;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      const above = items[parent];
      if (above === undefined || !this.#before(item, above)) break;
      items[index] = above;
      index = parent;
    }
    items[index] = item;
  }

  #siftDown(start: number): void {
    const items = this.#items;
    const item = items[start];
    if (item === undefined) return;
    let index = start;
    for (;;) {
      let first = index;
      let firstItem = item;
      const left = items[2 * index + 1];
      if (left !== undefined && this.#before(left, firstItem)) {
        first = 2 * index + 1;
        firstItem = left;
      }
      const right = items[2 * index + 2];
      if (right !== undefined && this.#before(right, firstItem)) {
        first = 2 * index + 2;
        firstItem = right;
      }
      if (first === index) break;
      items[index] = firstItem;
      index = first;
    }
    items[index] = item;
  }
}
