import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HELD_BACK_FILE, readHeldBack } from '../../agent/app/held-back-file.js';
import { readReplacedFileSync, replaceFileSync } from '../../common/fs/replace-file.js';

/**
 * The agent's own state files (held-back list, run record) are read without following a link:
 * whoever can plant a link in the state directory must not make the agent parse another file as
 * its state (the threat model's hostile local user).
 */
const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

function tempRoot(): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'state-links-'));
  roots.push(root);
  return root;
}

const snapshot = { updatedAt: '2026-12-05T00:00:00.000Z', files: [] };

describe('state files are read without following links', () => {
  it('reads the held-back list the agent wrote', () => {
    const stateDir = tempRoot();
    replaceFileSync(path.join(stateDir, HELD_BACK_FILE), JSON.stringify(snapshot));
    expect(readHeldBack(stateDir)).toEqual(snapshot);
  });

  it('a link planted at the held-back list is not read through', () => {
    const stateDir = tempRoot();
    const elsewhere = path.join(tempRoot(), 'planted.json');
    writeFileSync(elsewhere, JSON.stringify(snapshot));
    symlinkSync(elsewhere, path.join(stateDir, HELD_BACK_FILE));
    expect(readHeldBack(stateDir)).toBeUndefined();
  });

  it('refuses a link and a FIFO by name, without blocking', () => {
    const dir = tempRoot();
    const target = path.join(dir, 'target.json');
    writeFileSync(target, '{}');
    symlinkSync(target, path.join(dir, 'link.json'));
    expect(() => readReplacedFileSync(path.join(dir, 'link.json'))).toThrow(/ELOOP/);
    execFileSync('mkfifo', [path.join(dir, 'fifo.json')]);
    expect(() => readReplacedFileSync(path.join(dir, 'fifo.json'))).toThrow(/not a regular file/);
    expect(readReplacedFileSync(target)).toBe('{}');
  });
});
