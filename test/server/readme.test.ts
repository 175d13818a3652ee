import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { serverOptionsTable } from './scripts/print-options-table.js';

describe('README', () => {
  it('holds the server option table generated from the option specs', async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(serverOptionsTable());
  });
});
