import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * Everything a benchmark starts is registered here, so that it is removed whatever happens:
 * normal end, an exception, Ctrl-C (SIGINT), SIGTERM or SIGHUP. Children are killed with
 * SIGKILL (a benchmark's children hold nothing worth a graceful stop), temporary folders are
 * deleted. A benchmark killed with -9 cannot run this; its children then exit by themselves
 * (bench/support/exit-usage.mjs watches the parent), only its temporary folders stay behind.
 */
const children = new Set<ChildProcess>();
const folders = new Set<string>();
let installed = false;

export function trackChild(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** A fresh folder under os.tmpdir(), deleted by `removeTempDir` or at exit. */
export async function makeTempDir(prefix: string): Promise<string> {
  const folder = await mkdtemp(path.join(os.tmpdir(), `ros2-upload-bench-${prefix}-`));
  folders.add(folder);
  return folder;
}

export async function removeTempDir(folder: string): Promise<void> {
  await rm(folder, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  folders.delete(folder);
}

/** Kills every child still running (SIGKILL) and waits until they are gone. */
export async function killAllChildren(): Promise<void> {
  const running = [...children];
  await Promise.all(
    running.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) {
            resolve();
            return;
          }
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

function cleanupNow(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  for (const folder of folders) {
    try {
      rmSync(folder, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
    } catch {
      // best effort at exit
    }
  }
  folders.clear();
}

/** Installs the exit and signal handlers once. */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', cleanupNow);
  const onSignal = (signal: NodeJS.Signals, code: number): void => {
    process.stderr.write(`\nbench: ${signal}: stopping the children and removing temporary folders\n`);
    cleanupNow();
    process.exit(code);
  };
  process.once('SIGINT', () => onSignal('SIGINT', 130));
  process.once('SIGTERM', () => onSignal('SIGTERM', 143));
  process.once('SIGHUP', () => onSignal('SIGHUP', 129));
}
