import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSHA256 } from 'hash-wasm';
import { replicaCommand } from '../../test/helpers/cluster.js';
import { startRoundRobinProxy } from '../../test/helpers/round-robin-proxy.js';
import type { FleetSpec } from '../children/fleet.js';
import type { Benchmark, BenchContext, BenchResult } from '../support/benchmark.js';
import { makeTempDir, removeTempDir } from '../support/cleanup.js';
import { flushDisks, writeRandomFile } from '../support/data.js';
import { type BenchEngines, startEngines } from '../support/engines.js';
import { SERVER_PROGRAM, spawnNode, startAgentUpload, startServerProgram } from '../support/processes.js';
import { statusKiB } from '../support/proc-usage.js';
import { fig, formatBytes, GiB, MiB, mibPerSecond } from '../support/units.js';

const FULL_UPLOADERS = 50;
const FULL_SIZE = 20 * MiB;
const QUICK_SIZE = 8 * MiB;
const FULL_FILE = GiB;
const QUICK_FILE = 256 * MiB;
const FLEET = fileURLToPath(new URL('../children/fleet.ts', import.meta.url));

interface FanInRun {
  mibps: number;
  p99ChunkMs: number;
  medianChunkMs: number;
  errors: number;
  failed: number;
  retries: number;
  replicaPeakRssMiB: number;
  replicaCpuSeconds: number;
}

/**
 * The scale-out shape under load: 50 uploaders (one token each, one process of engines) send
 * through a round-robin balancer to 1 and then 3 server replicas on one Ceph bucket and one
 * PostgreSQL database, with the default settings (rate limits on, counted in PostgreSQL).
 * Each measurement gets a new bucket and database. Chunk latency is measured at the balancer
 * (a chunk request's arrival to its answer's end). In the same run, the throughput benchmark's
 * file (1 GiB; quick 256 MiB) from one agent to one replica on S3 + PostgreSQL and to a server
 * on the local disk. Ceph and PostgreSQL are started by scripts/engines/ (as root).
 */
export const fanInCluster: Benchmark = {
  name: 'fan-in-cluster',
  summary:
    '50 uploaders through a balancer to 1 and 3 replicas on Ceph + PostgreSQL (MiB/s, p99 chunk latency, errors); ' +
    'one file on S3 vs local disk',
  async run({ args, say }: BenchContext): Promise<BenchResult> {
    const uploaders = args.uploaders ?? FULL_UPLOADERS;
    const size = args.size ?? (args.quick ? QUICK_SIZE : FULL_SIZE);
    const fileSize = args.quick ? QUICK_FILE : FULL_FILE;
    const dir = await makeTempDir('fan-in-cluster');
    say('starting Ceph (RADOS Gateway) and PostgreSQL with scripts/engines/ ...');
    const engines = await startEngines(path.join(dir, 'engines'));
    try {
      const spec: FleetSpec = { serverUrl: '', uploads: [] };
      const tokens: string[] = [];
      for (let i = 0; i < uploaders; i += 1) {
        const robot = `robot-${String(i).padStart(2, '0')}`;
        const token = randomBytes(16).toString('hex');
        tokens.push(`${robot}=${token}`);
        const file = path.join(dir, 'data', robot, 'recording.bin');
        await writeRandomFile(file, size);
        spec.uploads.push({ file, remotePath: 'run1/recording.bin', token, stateDir: '' });
      }
      flushDisks();
      say(
        `${uploaders} uploaders × ${formatBytes(size)} (random; ${args.quick ? 'quick' : 'full'}), 8 MiB chunks, ` +
          'one token each, replicas with default settings (rate limits on, in PostgreSQL)',
      );
      const runs = new Map<number, FanInRun>();
      for (const replicas of [1, 3]) {
        const run = await fanIn(engines, dir, spec, tokens, replicas, say);
        runs.set(replicas, run);
      }

      const single = path.join(dir, 'data', 'single.bin');
      await writeRandomFile(single, fileSize);
      flushDisks();
      const onS3 = await oneFileS3(engines, dir, single, fileSize, say);
      const onDisk = await oneFileLocal(dir, single, fileSize, say);
      const hashCost = await measureHashCost(args.quick ? 256 * MiB : GiB, say);
      const hashCells = `${hashCost.savedCpuPerGiB.toFixed(2)} / ${hashCost.nodeCpuPerGiB.toFixed(2)}`;

      const one = runs.get(1)!;
      const three = runs.get(3)!;
      return {
        figures: {
          uploaders,
          size_bytes_each: size,
          replicas_1_mibps: fig(one.mibps, 1),
          replicas_1_p99_chunk_ms: fig(one.p99ChunkMs, 0),
          replicas_1_errors: one.errors,
          replicas_1_peak_rss_mib: fig(one.replicaPeakRssMiB, 0),
          replicas_3_mibps: fig(three.mibps, 1),
          replicas_3_p99_chunk_ms: fig(three.p99ChunkMs, 0),
          replicas_3_errors: three.errors,
          replicas_3_peak_rss_mib: fig(three.replicaPeakRssMiB, 0),
          file_bytes: fileSize,
          file_s3_mibps: fig(onS3.mibps, 1),
          file_s3_server_cpu_s_per_gib: fig(onS3.serverCpuPerGiB, 2),
          file_local_mibps: fig(onDisk.mibps, 1),
          file_local_server_cpu_s_per_gib: fig(onDisk.serverCpuPerGiB, 2),
          sha256_saved_cpu_s_per_gib: fig(hashCost.savedCpuPerGiB, 2),
          sha256_node_cpu_s_per_gib: fig(hashCost.nodeCpuPerGiB, 2),
          sha256_save_load_us: fig(hashCost.saveLoadMicros, 1),
        },
        targets: {
          errors_1: { value: one.errors, op: '<=', limit: 0 },
          errors_3: { value: three.errors, op: '<=', limit: 0 },
        },
        row: {
          Uploaders: `${uploaders} × ${formatBytes(size)}`,
          '1 replica': describeRun(one),
          '3 replicas': describeRun(three),
          [`${formatBytes(fileSize)} file`]: `S3 ${onS3.mibps.toFixed(0)}, local ${onDisk.mibps.toFixed(0)} MiB/s`,
          'SHA-256 CPU s/GiB saved / Node': hashCells,
        },
      };
    } finally {
      await engines.stop();
      await removeTempDir(dir);
    }
  },
};

async function fanIn(
  engines: BenchEngines,
  dir: string,
  template: FleetSpec,
  tokens: string[],
  count: number,
  say: (line: string) => void,
): Promise<FanInRun> {
  const { bucket, databaseUrl } = await engines.fresh(`fanin${count}`);
  const { args, env } = replicaCommand({ s3: engines.s3, bucket, databaseUrl, replicas: count });
  const replicas = await Promise.all(
    Array.from({ length: count }, async (_, n) => {
      const handle = spawnNode(`replica-${count}-${n}`, SERVER_PROGRAM, args, {
        reportDir: dir,
        env: { ...env, UPLOAD_SERVER_TOKENS: tokens.join(',') },
      });
      const listening = await handle.waitForLine(/"event":"listening","url":"([^"]+)"/, 60_000);
      return { handle, url: listening.match[1]! };
    }),
  );
  const proxy = await startRoundRobinProxy(replicas.map((replica) => replica.url));
  try {
    const spec: FleetSpec = {
      serverUrl: proxy.url,
      uploads: template.uploads.map((upload, i) => ({
        ...upload,
        stateDir: path.join(dir, `state-${count}`, String(i)),
      })),
    };
    const specFile = path.join(dir, `fleet-${count}.json`);
    await writeFile(specFile, JSON.stringify(spec));
    const cpuBefore = replicas.map((replica) => replica.handle.cpuSeconds() ?? 0);
    const fleet = spawnNode(`fleet-${count}`, FLEET, [specFile], { tsx: true, reportDir: dir });
    const start = await fleet.waitForLine(/^start$/, 60_000);
    const outcome = await fleet.waitForLine(/^\{.*\}$/, 900_000);
    await fleet.exited;
    const result = JSON.parse(outcome.text) as {
      completed: number;
      failed: number;
      retries: number;
      reasons: Record<string, number>;
    };
    const total = spec.uploads.length * (template.uploads.length > 0 ? await sizeOf(template) : 0);
    const mibps = mibPerSecond(total, outcome.t - start.t);
    const chunkMs = proxy.log
      .filter((entry) => entry.method === 'PUT' && entry.url.includes('/chunks/') && entry.status === 200)
      .map((entry) => entry.ms)
      .sort((a, b) => a - b);
    const quantile = (q: number): number => chunkMs[Math.min(chunkMs.length - 1, Math.floor(q * chunkMs.length))] ?? 0;
    const errors = result.failed + result.retries + (spec.uploads.length - result.completed - result.failed);
    const peak = Math.max(...replicas.map((replica) => (statusKiB(replica.handle.pid, 'VmHWM') ?? 0) / 1024));
    const cpu = replicas.reduce((sum, replica, n) => sum + ((replica.handle.cpuSeconds() ?? 0) - cpuBefore[n]!), 0);
    say(
      `${count} replica(s): ${result.completed} of ${spec.uploads.length} verified, ${mibps.toFixed(0)} MiB/s ` +
        `aggregate; chunk latency median ${quantile(0.5).toFixed(0)} ms, p99 ${quantile(0.99).toFixed(0)} ms ` +
        `(${chunkMs.length} chunks); ${result.failed} failed, ${result.retries} retried; ` +
        `replica peak RSS ${peak.toFixed(0)} MiB, replicas' CPU ${cpu.toFixed(1)} s`,
    );
    for (const [reason, n] of Object.entries(result.reasons)) say(`  retried ${n} ×: ${reason}`);
    return {
      mibps,
      p99ChunkMs: quantile(0.99),
      medianChunkMs: quantile(0.5),
      errors,
      failed: result.failed,
      retries: result.retries,
      replicaPeakRssMiB: peak,
      replicaCpuSeconds: cpu,
    };
  } finally {
    await proxy.close();
    await Promise.all(replicas.map((replica) => replica.handle.kill('SIGTERM')));
  }
}

async function sizeOf(spec: FleetSpec): Promise<number> {
  const { stat } = await import('node:fs/promises');
  return (await stat(spec.uploads[0]!.file)).size;
}

interface OneFileRun {
  mibps: number;
  serverCpuPerGiB: number;
}

async function oneFileS3(
  engines: BenchEngines,
  dir: string,
  file: string,
  size: number,
  say: (line: string) => void,
): Promise<OneFileRun> {
  const { bucket, databaseUrl } = await engines.fresh('single');
  const { args, env } = replicaCommand({ s3: engines.s3, bucket, databaseUrl, replicas: 1, args: ['--no-rate-limit'] });
  const server = spawnNode('single-s3', SERVER_PROGRAM, args, { reportDir: dir, env });
  const url = (await server.waitForLine(/"event":"listening","url":"([^"]+)"/, 60_000)).match[1]!;
  try {
    return await timeAgent(dir, file, size, url, () => server.cpuSeconds() ?? 0, 'S3 + PostgreSQL, one replica', say);
  } finally {
    await server.kill('SIGTERM');
  }
}

async function oneFileLocal(dir: string, file: string, size: number, say: (line: string) => void): Promise<OneFileRun> {
  const server = await startServerProgram(path.join(dir, 'local-server'), ['--no-rate-limit'], { reportDir: dir });
  try {
    return await timeAgent(
      dir,
      file,
      size,
      server.url,
      () => server.handle.cpuSeconds() ?? 0,
      'local disk + SQLite',
      say,
    );
  } finally {
    await server.stop();
  }
}

async function timeAgent(
  dir: string,
  file: string,
  size: number,
  url: string,
  serverCpu: () => number,
  what: string,
  say: (line: string) => void,
): Promise<OneFileRun> {
  const cpuBefore = serverCpu();
  const began = performance.now();
  const agent = startAgentUpload([file], url, path.join(dir, `agent-${randomBytes(3).toString('hex')}`), [], {
    reportDir: dir,
  });
  const code = await agent.exited;
  if (code !== 0) throw new Error(`the agent exited with ${code}: ${agent.stderr().slice(-2000)}`);
  const ms = performance.now() - began;
  const mibps = mibPerSecond(size, ms);
  const cpuPerGiB = ((serverCpu() - cpuBefore) * GiB) / size;
  say(
    `${formatBytes(size)} file, one agent → ${what}: ${mibps.toFixed(0)} MiB/s, ` +
      `server CPU ${cpuPerGiB.toFixed(2)} s/GiB`,
  );
  return { mibps, serverCpuPerGiB: cpuPerGiB };
}

function describeRun(run: FanInRun): string {
  return `${run.mibps.toFixed(0)} MiB/s, p99 ${run.p99ChunkMs.toFixed(0)} ms, ${run.errors} errors`;
}

/**
 * What continuing a hash in another process costs: the replicas' SHA-256 (hash-wasm, whose state
 * is saved with each in-order chunk and loaded by the next replica) against Node's own (OpenSSL,
 * the single server's), both over the same bytes in 8 MiB chunks, in CPU seconds per GiB; and one
 * save + load of the state, as each chunk pays it.
 */
async function measureHashCost(
  bytes: number,
  say: (line: string) => void,
): Promise<{ savedCpuPerGiB: number; nodeCpuPerGiB: number; saveLoadMicros: number }> {
  const chunk = randomBytes(8 * MiB);
  const chunks = Math.max(1, Math.round(bytes / chunk.length));
  const cpuPerGiB = (task: () => void): number => {
    const before = process.cpuUsage();
    task();
    const used = process.cpuUsage(before);
    return ((used.user + used.system) / 1e6) * (GiB / (chunks * chunk.length));
  };
  const saved = await createSHA256();
  const savedCpuPerGiB = cpuPerGiB(() => {
    saved.init();
    for (let i = 0; i < chunks; i += 1) saved.update(chunk);
    saved.digest('hex');
  });
  const nodeCpuPerGiB = cpuPerGiB(() => {
    const hash = createHash('sha256');
    for (let i = 0; i < chunks; i += 1) hash.update(chunk);
    hash.digest('hex');
  });
  const rounds = 1000;
  const state = saved.init().update(chunk).save();
  const started = process.hrtime.bigint();
  for (let i = 0; i < rounds; i += 1) saved.load(state).save();
  const saveLoadMicros = Number(process.hrtime.bigint() - started) / 1000 / rounds;
  say(
    `SHA-256 over ${formatBytes(chunks * chunk.length)} in 8 MiB chunks: hash-wasm (saved state, replicas) ` +
      `${savedCpuPerGiB.toFixed(2)} s/GiB CPU, Node's crypto (one server) ${nodeCpuPerGiB.toFixed(2)} s/GiB; ` +
      `one save + load of the ${state.length}-byte state ${saveLoadMicros.toFixed(1)} µs`,
  );
  return { savedCpuPerGiB, nodeCpuPerGiB, saveLoadMicros };
}
