/** One cell: text, and optionally a class, a title, or a custom element (a progress bar). */
export interface Cell {
  text: string;
  className?: string;
  title?: string;
  progress?: { value: number; max: number };
}

/**
 * A table body whose rows are kept by key: rendering creates, updates and removes only what
 * changed, and writes a cell only when its text, class or title differs. With 500 robots or
 * thousands of bags, an update that changes a few rows costs a few DOM writes, not a rebuild.
 */
export class KeyedTable<T> {
  readonly #body: HTMLTableSectionElement;
  readonly #rows = new Map<string, HTMLTableRowElement>();
  /** The item each row was last filled from: the same object again is not looked at. */
  readonly #filledFrom = new Map<string, T>();
  readonly #key: (item: T) => string;
  readonly #cells: (item: T) => Cell[];
  readonly #rowClass: ((item: T) => string) | undefined;

  constructor(
    table: HTMLTableElement,
    key: (item: T) => string,
    cells: (item: T) => Cell[],
    rowClass?: (item: T) => string,
  ) {
    const body = table.tBodies[0];
    if (!body) throw new Error(`table #${table.id} has no tbody`);
    this.#body = body;
    this.#key = key;
    this.#cells = cells;
    this.#rowClass = rowClass;
  }

  /**
   * Shows exactly `items`, in this order. A row whose item is the same object as last time is
   * left alone, unless `refill` (texts that age with the clock, such as "5 s ago").
   */
  render(items: readonly T[], refill = false): void {
    const wanted = new Set<string>();
    let previous: HTMLTableRowElement | null = null;
    for (const item of items) {
      const key = this.#key(item);
      wanted.add(key);
      let row = this.#rows.get(key);
      if (!row) {
        row = document.createElement('tr');
        row.dataset.key = key;
        this.#rows.set(key, row);
      }
      if (refill || this.#filledFrom.get(key) !== item) {
        this.#fill(row, item);
        this.#filledFrom.set(key, item);
      }
      const expected: ChildNode | null = previous ? previous.nextSibling : this.#body.firstChild;
      if (expected !== row) this.#body.insertBefore(row, expected);
      previous = row;
    }
    for (const [key, row] of this.#rows) {
      if (wanted.has(key)) continue;
      row.remove();
      this.#rows.delete(key);
      this.#filledFrom.delete(key);
    }
  }

  #fill(row: HTMLTableRowElement, item: T): void {
    const rowClass = this.#rowClass?.(item) ?? '';
    if (row.className !== rowClass) row.className = rowClass;
    const cells = this.#cells(item);
    while (row.cells.length < cells.length) row.insertCell();
    cells.forEach((cell, index) => {
      const td = row.cells[index];
      if (!td) return;
      if (cell.progress) {
        let bar = td.querySelector('progress');
        let label = td.querySelector('span');
        if (!bar || !label) {
          td.textContent = '';
          bar = document.createElement('progress');
          label = document.createElement('span');
          td.append(bar, label);
        }
        if (bar.max !== cell.progress.max) bar.max = cell.progress.max;
        // A new bar has no value attribute (indeterminate, reading 0): set even a 0 so it shows 0%.
        if (!bar.hasAttribute('value') || bar.value !== cell.progress.value) bar.value = cell.progress.value;
        if (label.textContent !== cell.text) label.textContent = cell.text;
      } else if (td.textContent !== cell.text) {
        td.textContent = cell.text;
      }
      const className = cell.className ?? '';
      if (td.className !== className) td.className = className;
      const title = cell.title ?? '';
      if (td.title !== title) td.title = title;
    });
  }
}
