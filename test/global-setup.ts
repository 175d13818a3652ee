import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Several tests spawn the real programs (dist/server/cli/main.js, dist/agent/cli/main.js) as
 * child processes, so the compiled output must match the sources under test. The build is
 * incremental, so this costs little when nothing changed.
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
}
