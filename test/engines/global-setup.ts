import { existsSync, readFileSync, rmSync } from 'node:fs';
import { chmod, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { ENGINES, startEngine, stopEngine, stopEngineSync, type EngineEnv, type EngineName } from './engine-scripts.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Base URL of the engine broker below; test/engines/engines.ts asks it for engines. */
    engineBroker: string;
  }
}

/**
 * Starts each engine at most once per vitest run, and only when a test file asks for it: a run
 * of test/server/*.test.ts alone never pays Ceph's start-up. A globalSetup runs in vitest's main
 * process before any worker, so it is the one place that outlives every test file; the files
 * (in forked workers) reach it over a loopback HTTP "broker" whose address `provide` hands them.
 * A start is shared by every file that asks while it runs, and so is its failure (each file
 * then fails with the script's reason instead of starting Ceph again).
 *
 * The engines live in one run folder under the temporary directory. Teardown stops them and
 * removes it, whatever the tests did. Vitest ends the process on SIGINT/SIGTERM without a
 * teardown, so an 'exit' handler stops them then; and a run killed outright leaves an `owner`
 * file naming a dead process, which the next run finds and cleans up.
 */
const RUN_PREFIX = 'ros2-upload-engines-';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await cleanAbandonedRuns();
  const runDir = await mkdtemp(path.join(os.tmpdir(), RUN_PREFIX));
  // Searchable by others: run as root, PostgreSQL runs as its own user and must reach its folder.
  await chmod(runDir, 0o711);
  await writeFile(path.join(runDir, 'owner'), processIdentity(process.pid) ?? String(process.pid));
  const starts = new Map<EngineName, Promise<EngineEnv>>();

  const stopAllNow = (): void => {
    for (const name of starts.keys()) stopEngineSync(name, path.join(runDir, name));
    rmSync(runDir, { recursive: true, force: true });
  };
  process.on('exit', stopAllNow);

  const start = (name: EngineName): Promise<EngineEnv> => {
    let starting = starts.get(name);
    if (!starting) {
      const began = performance.now();
      starting = startEngine(name, path.join(runDir, name));
      starting.then(
        () =>
          process.stderr.write(`engines: ${name} started in ${((performance.now() - began) / 1000).toFixed(1)} s\n`),
        () => {},
      );
      starts.set(name, starting);
    }
    return starting;
  };

  const broker = http.createServer((request, response) => {
    const name = /^\/engines\/([a-z-]+)$/.exec(request.url ?? '')?.[1] as EngineName | undefined;
    const reply = (status: number, body: unknown): void => {
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (request.method !== 'POST' || !name || !ENGINES.includes(name))
      return reply(404, { error: `no engine at ${request.method} ${request.url}; engines: ${ENGINES.join(', ')}` });
    start(name).then(
      (env) => reply(200, { env }),
      (error: Error) => reply(503, { error: error.message }),
    );
  });
  // Starting Ceph takes longer than Node's default request timeout allows.
  broker.requestTimeout = 0;
  broker.headersTimeout = 0;
  await new Promise<void>((resolve) => broker.listen(0, '127.0.0.1', resolve));
  project.provide('engineBroker', `http://127.0.0.1:${(broker.address() as { port: number }).port}`);

  return async () => {
    broker.close();
    const stops = [...starts].map(async ([name, starting]) => {
      // A start still running is waited for: its daemons would outlive the stop otherwise.
      await starting.catch(() => {});
      const began = performance.now();
      await stopEngine(name, path.join(runDir, name));
      process.stderr.write(`engines: ${name} stopped in ${((performance.now() - began) / 1000).toFixed(1)} s\n`);
    });
    const results = await Promise.allSettled(stops);
    await rm(runDir, { recursive: true, force: true });
    process.off('exit', stopAllNow);
    const failures = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failures.length > 0)
      throw new AggregateError(
        failures.map((failure) => failure.reason),
        'engines: stopping failed; daemons may still run',
      );
  };
}

/** "pid start-time": the start time (from /proc) tells a live owner from a reused pid. */
function processIdentity(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return `${pid} ${startTime}`;
  } catch {
    return undefined;
  }
}

/** Run folders whose vitest process died without its teardown (kill -9, a crashed machine session). */
async function cleanAbandonedRuns(): Promise<void> {
  if (!existsSync('/proc/self/stat')) return; // no way to tell a live owner: leave them
  const entries = await readdir(os.tmpdir()).catch(() => [] as string[]);
  for (const entry of entries.filter((name) => name.startsWith(RUN_PREFIX))) {
    const runDir = path.join(os.tmpdir(), entry);
    const ownerFile = path.join(runDir, 'owner');
    if (existsSync(ownerFile)) {
      const owner = readFileSync(ownerFile, 'utf8').trim();
      if (processIdentity(Number(owner.split(' ')[0])) === owner) continue;
    } else {
      // No owner yet: a run that is just starting, unless the folder is old.
      const age = Date.now() - (await stat(runDir)).mtimeMs;
      if (age < 10 * 60_000) continue;
    }
    for (const name of ENGINES) {
      if (existsSync(path.join(runDir, name))) await stopEngine(name, path.join(runDir, name)).catch(() => {});
    }
    await rm(runDir, { recursive: true, force: true });
  }
}
