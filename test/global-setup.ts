import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Several tests spawn the real programs (dist/server/cli/main.js, dist/agent/cli/main.js) as
 * child processes, so the compiled output must match the sources under test. The build is
 * incremental, so this costs little when nothing changed. The dashboard page (vite, into
 * dist/dashboard/) is built when its sources are newer than the built page: the browser tests
 * load it from the real server.
 */
export default function setup(): void {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'pipe' });
  } catch (error) {
    // tsc still emits on type errors; `npm test` runs the type-check separately and fails there.
    const out = (error as { stdout?: Buffer }).stdout?.toString() ?? '';
    process.stderr.write(`global-setup: tsc reported problems (output was still emitted):\n${out.slice(0, 4000)}\n`);
  }
  buildDashboard(root);
}

function buildDashboard(root: string): void {
  const built = path.join(root, 'dist', 'dashboard', 'index.html');
  const sources = [
    path.join(root, 'server', 'dashboard-page'),
    path.join(root, 'common', 'protocol', 'fleet-views.ts'),
    path.join(root, 'common', 'protocol', 'errors', 'wire-errors.ts'),
  ];
  if (existsSync(built) && newest(sources) <= statSync(built).mtimeMs) return;
  const vite = path.join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  execFileSync(process.execPath, [vite, 'build', '--config', 'server/dashboard-page/vite.config.ts'], {
    cwd: root,
    stdio: 'pipe',
  });
}

function newest(paths: readonly string[]): number {
  let latest = 0;
  for (const item of paths) {
    const info = statSync(item);
    if (info.isDirectory()) {
      latest = Math.max(latest, newest(readdirSync(item).map((name) => path.join(item, name))));
    } else {
      latest = Math.max(latest, info.mtimeMs);
    }
  }
  return latest;
}
