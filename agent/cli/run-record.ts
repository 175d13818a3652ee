import path from 'node:path';
import { makeDirectorySync } from '../../common/fs/make-directory.js';
import { readReplacedFileSync, replaceFileSync } from '../../common/fs/replace-file.js';
import { agentOptions } from '../app/agent-options.js';
import type { RunInfo } from '../app/control-socket.js';

/** What the last run said about itself, in its state directory (for `status` once it stopped). */
export const RUN_RECORD = 'last-run.json';
/** In the default state directory: which state directory the last run used, when it was another. */
export const LAST_STATE_DIR = 'last-state-dir.json';

/** The default state directory (where `status` looks first). */
export function defaultStateDir(): string {
  return path.resolve(agentOptions.defaults().stateDir);
}

/** Writes the run record (atomically), and points the default state directory at this one (best effort). */
export function recordRun(info: RunInfo, pointFrom: string): void {
  writeJson(path.join(info.stateDir, RUN_RECORD), info);
  const home = defaultStateDir();
  if (path.resolve(pointFrom) === home) return;
  try {
    makeDirectorySync(home, 0o700);
    writeJson(path.join(home, LAST_STATE_DIR), {
      stateDir: path.resolve(pointFrom),
      command: info.command,
      startedAt: info.startedAt,
    });
  } catch {
    // A read-only home (a hardened systemd unit): `status` then needs --state-dir.
  }
}

export function readRunRecord(stateDir: string): RunInfo | undefined {
  return readJson<RunInfo>(path.join(stateDir, RUN_RECORD));
}

/** The state directory the last run used, as the default state directory remembers it. */
export function lastStateDir(): { stateDir: string; command: string; startedAt: string } | undefined {
  return readJson(path.join(defaultStateDir(), LAST_STATE_DIR));
}

function writeJson(file: string, value: unknown): void {
  replaceFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readReplacedFileSync(file)) as T;
  } catch {
    return undefined;
  }
}
