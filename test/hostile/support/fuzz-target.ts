import { mkdir, readFile, realpath, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SERVER_BIN, spawnServer, type ServerProcess } from '../../helpers/spawn-server.js';
import { diffSnapshots, findMarked, snapshotTree, type TreeSnapshot } from './fs-snapshot.js';
import { MARK, SYMLINK_DIR, SYMLINK_FILE } from './hostile-values.js';
import { RawHttp } from './raw-http.js';
import { testToken } from '../../helpers/tokens.js';

/**
 * The servers a hostile test attacks, each a real child process (dist/server/cli/main.js) with
 * its storage root inside a temp folder that also holds decoys: a sibling file next to the
 * root, and an `outside/` folder that symlinks planted inside the root point to. Everything in
 * the temp folder except the roots is snapshotted, so a write outside a root is seen.
 *
 * ```
 * <temp>/outside/target.bin          decoy the planted links point at
 * <temp>/box-A/sibling.txt           decoy next to the root
 * <temp>/box-A/storage/              server A's storage root
 *              completed/<uploader>/escape-dir -> <temp>/outside
 *              completed/<uploader>/evil.bin   -> <temp>/outside/target.bin
 *              compressed/<uploader>/escape-dir -> <temp>/outside
 * ```
 */

export const UPLOADERS = ['robot1', 'robot2'] as const;
export type TokenUploader = (typeof UPLOADERS)[number];

export interface FuzzServer {
  readonly name: string;
  readonly process: ServerProcess;
  readonly url: string;
  /** The storage root (real path). */
  readonly root: string;
  readonly client: RawHttp;
  readonly tokens: Record<TokenUploader, string>;
  /** Requests without a token are accepted (as `anonymous`). */
  readonly anonymous: boolean;
}

export interface FuzzLayout {
  readonly base: string;
  readonly outside: string;
  readonly targetFile: string;
}

const DECOY = 'decoy: must never change\n';

export async function createLayout(base: string): Promise<FuzzLayout> {
  const real = await realpath(base);
  const outside = path.join(real, 'outside');
  await mkdir(outside, { recursive: true });
  const targetFile = path.join(outside, 'target.bin');
  await writeFile(targetFile, DECOY);
  return { base: real, outside, targetFile };
}

/**
 * Spawns a server on 127.0.0.1:0 with tokens for robot1 and robot2 (and, with `anonymous`,
 * `--allow-anonymous`), rate limits off, then plants the symlink traps in its root.
 */
export async function startFuzzServer(
  layout: FuzzLayout,
  name: string,
  options: { anonymous: boolean; args?: string[] },
): Promise<FuzzServer> {
  const box = path.join(layout.base, `box-${name}`);
  const root = path.join(box, 'storage');
  await mkdir(root, { recursive: true });
  await writeFile(path.join(box, 'sibling.txt'), DECOY);
  const tokens: Record<TokenUploader, string> = {
    robot1: testToken(`fuzz ${name} robot1`),
    robot2: testToken(`fuzz ${name} robot2`),
  };
  const args = [
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--upload-dir',
    root,
    '--no-rate-limit',
    ...(options.anonymous ? ['--allow-anonymous'] : []),
    ...(options.args ?? []),
  ];
  const process = await spawnServer(args, {
    env: { UPLOAD_SERVER_TOKENS: UPLOADERS.map((u) => `${u}=${tokens[u]}`).join(',') },
  });
  for (const uploader of ['anonymous', ...UPLOADERS]) {
    for (const area of ['completed', 'compressed']) {
      const folder = path.join(root, area, uploader);
      await mkdir(folder, { recursive: true });
      await symlink(layout.outside, path.join(folder, SYMLINK_DIR));
      if (area === 'completed') await symlink(layout.targetFile, path.join(folder, SYMLINK_FILE));
    }
  }
  return {
    name,
    process,
    url: process.url,
    root: await realpath(root),
    client: new RawHttp(process.url),
    tokens,
    anonymous: options.anonymous,
  };
}

/** Remembers everything outside the roots, to compare later. */
export class OutsideWatch {
  readonly #layout: FuzzLayout;
  readonly #roots: string[];
  #before: TreeSnapshot | undefined;

  constructor(layout: FuzzLayout, roots: string[]) {
    this.#layout = layout;
    this.#roots = roots;
  }

  async start(): Promise<void> {
    this.#before = await snapshotTree(this.#layout.base, this.#roots);
  }

  /**
   * Problems found: entries added or changed in the temp folder outside the roots, a changed
   * decoy, or a marked file in /, the temp dir or the server's working folder.
   */
  async problems(): Promise<string[]> {
    const after = await snapshotTree(this.#layout.base, this.#roots);
    const problems = diffSnapshots(this.#before!, after);
    if ((await readFile(this.#layout.targetFile, 'utf8')) !== DECOY)
      problems.push(`the decoy ${this.#layout.targetFile} was changed`);
    const stray = await findMarked(
      ['/', os.tmpdir(), path.dirname(SERVER_BIN), path.dirname(this.#layout.base), process.cwd()],
      MARK,
    );
    problems.push(...stray.map((file) => `a fuzzer-named file outside the roots: ${file}`));
    return problems;
  }
}
