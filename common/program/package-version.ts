import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;
let cachedRoot: string | null | undefined;

/**
 * The package version, from the package.json above this module (in the sources or in dist/),
 * read once. Both programs print it for --version, and the server's /health reports it.
 */
export function packageVersion(): string {
  cached ??= readVersion();
  return cached;
}

/**
 * The folder of this package (where its package.json is), in the sources or above dist/;
 * undefined if it cannot be found. The server finds its built dashboard page under it
 * (dist/dashboard/); messages name it where a command must run there (`npm run ros:setup`).
 */
export function packageRoot(): string | undefined {
  if (cachedRoot === undefined) cachedRoot = findPackage()?.root ?? null;
  return cachedRoot ?? undefined;
}

function readVersion(): string {
  return findPackage()?.version ?? 'unknown';
}

function findPackage(): { root: string; version: string } | undefined {
  let dir = new URL('.', import.meta.url);
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('package.json', dir)), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'ros2-upload-agent' && pkg.version) return { root: fileURLToPath(dir), version: pkg.version };
    } catch {
      // keep looking upwards
    }
    dir = new URL('..', dir);
  }
  return undefined;
}
