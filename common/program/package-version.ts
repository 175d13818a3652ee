import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/**
 * The package version, from the package.json above this module (in the sources or in dist/),
 * read once. Both programs print it for --version, and the server's /health reports it.
 */
export function packageVersion(): string {
  cached ??= readVersion();
  return cached;
}

function readVersion(): string {
  let dir = new URL('.', import.meta.url);
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('package.json', dir)), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'ros2-upload-agent' && pkg.version) return pkg.version;
    } catch {
      // keep looking upwards
    }
    dir = new URL('..', dir);
  }
  return 'unknown';
}
