import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Benchmark, BenchContext, BenchResult } from '../support/benchmark.js';
import { makeTempDir, removeTempDir } from '../support/cleanup.js';
import { flushDisks, median, sha256Rate, writeRandomFile } from '../support/data.js';
import { spawnNode, startAgentUpload, startServerProgram } from '../support/processes.js';
import { fig, formatBytes, GiB, MiB, mibPerSecond } from '../support/units.js';

const FULL_SIZE = GiB;
const QUICK_SIZE = 256 * MiB;
const PUT_SERVER = fileURLToPath(new URL('../children/plain-put-server.ts', import.meta.url));
const PUT_CLIENT = fileURLToPath(new URL('../children/plain-put-client.ts', import.meta.url));

interface OursRun {
  mibps: number;
  ms: number;
  agentPeakRssKiB: number;
  serverPeakRssKiB: number;
  agentCpuSeconds: number;
  agentStartupCpuSeconds: number;
  serverCpuSeconds: number;
  wallMs: number;
}

interface PutRun {
  mibps: number;
  ms: number;
  clientCpuSeconds: number;
  serverCpuSeconds: number;
}

/**
 * One file, agent → server, unthrottled, no transfer compression, each program in its own
 * process; with, in the same run, (a) a plain streaming undici PUT to a minimal node:http server
 * and (b) the one-core SHA-256 rate over the same file.
 */
export const throughput: Benchmark = {
  name: 'throughput',
  summary:
    'one file agent → server vs a plain HTTP PUT and the SHA-256 rate; peak RSS and CPU per GiB of both processes',
  async run({ args, say }: BenchContext): Promise<BenchResult> {
    const size = args.size ?? (args.quick ? QUICK_SIZE : FULL_SIZE);
    const rounds = args.rounds ?? 1;
    const dir = await makeTempDir('throughput');
    try {
      const file = path.join(dir, 'data', 'recording.bin');
      say(
        `size ${formatBytes(size)} (${args.quick ? 'quick' : 'full'}), ${rounds} ` +
          `round(s), random data, 127.0.0.1, 8 MiB chunks, no transfer compression`,
      );
      const expected = await writeRandomFile(file, size);
      flushDisks();
      const shas: number[] = [];
      const puts: PutRun[] = [];
      const ours: OursRun[] = [];
      for (let round = 1; round <= rounds; round += 1) {
        const sha = await sha256Rate(file, size);
        if (sha.sha256 !== expected) throw new Error('the file changed on disk');
        shas.push(sha.mibps);
        say(`round ${round}: SHA-256 (one core, streamed from disk) ${sha.mibps.toFixed(0)} MiB/s`);
        const put = await plainPut(file, size, dir);
        puts.push(put);
        say(`round ${round}: plain undici PUT → node:http server  ${put.mibps.toFixed(0)} MiB/s`);
        flushDisks();
        const run = await oursOnce(file, size, expected, dir);
        ours.push(run);
        say(
          `round ${round}: ros2-upload-agent → ros2-upload-server ${run.mibps.toFixed(0)} MiB/s ` +
            `(upload ${(run.ms / 1000).toFixed(2)} s, whole program ${(run.wallMs / 1000).toFixed(2)} s)`,
        );
        flushDisks();
      }
      const oursRate = median(ours.map((r) => r.mibps));
      const putRate = median(puts.map((r) => r.mibps));
      const shaRate = median(shas);
      const gib = size / GiB;
      const agentRss = Math.max(...ours.map((r) => r.agentPeakRssKiB)) / 1024;
      const serverRss = Math.max(...ours.map((r) => r.serverPeakRssKiB)) / 1024;
      const agentCpu = median(ours.map((r) => r.agentCpuSeconds)) / gib;
      const agentStartup = median(ours.map((r) => r.agentStartupCpuSeconds));
      const serverCpu = median(ours.map((r) => r.serverCpuSeconds)) / gib;
      const putClientCpu = median(puts.map((r) => r.clientCpuSeconds)) / gib;
      const putServerCpu = median(puts.map((r) => r.serverCpuSeconds)) / gib;
      say(
        `ours ${oursRate.toFixed(0)} MiB/s | plain PUT ` +
          `${putRate.toFixed(0)} MiB/s | SHA-256 ${shaRate.toFixed(0)} MiB/s`,
      );
      say(`ratio_vs_put ${(oursRate / putRate).toFixed(2)}, ratio_vs_sha256 ${(oursRate / shaRate).toFixed(2)}`);
      if (putRate / shaRate < 0.8) {
        say(
          `note: the plain PUT itself reaches only ${(putRate / shaRate).toFixed(2)} × the SHA-256 ` +
            `rate here, so no HTTP transfer over this machine's loopback can meet ratio_vs_sha256 >= 0.8`,
        );
      }
      say(`peak RSS: agent ${agentRss.toFixed(0)} MiB, server ${serverRss.toFixed(0)} MiB (VmHWM)`);
      say(
        `CPU per GiB during the upload: agent ${agentCpu.toFixed(2)} s (plus ` +
          `${agentStartup.toFixed(2)} s to start), server ${serverCpu.toFixed(2)} s; plain ` +
          `PUT: client ${putClientCpu.toFixed(2)} s, server ${putServerCpu.toFixed(2)} s`,
      );
      return {
        figures: {
          size_bytes: size,
          rounds,
          ours_mibps: fig(oursRate, 1),
          put_mibps: fig(putRate, 1),
          sha256_mibps: fig(shaRate, 1),
          ratio_vs_put: fig(oursRate / putRate, 3),
          ratio_vs_sha256: fig(oursRate / shaRate, 3),
          put_ratio_vs_sha256: fig(putRate / shaRate, 3),
          agent_peak_rss_mib: fig(agentRss, 1),
          server_peak_rss_mib: fig(serverRss, 1),
          agent_cpu_s_per_gib: fig(agentCpu, 3),
          agent_startup_cpu_s: fig(agentStartup, 3),
          server_cpu_s_per_gib: fig(serverCpu, 3),
          put_client_cpu_s_per_gib: fig(putClientCpu, 3),
          put_server_cpu_s_per_gib: fig(putServerCpu, 3),
          runs: ours.map((r, i) => ({
            ours_mibps: fig(r.mibps, 1),
            put_mibps: fig(puts[i]!.mibps, 1),
            sha256_mibps: fig(shas[i]!, 1),
          })),
        },
        targets: {
          ratio_vs_sha256: { value: oursRate / shaRate, op: '>=', limit: 0.8 },
          agent_peak_rss_mib: { value: agentRss, op: '<=', limit: 100, unit: 'MiB' },
          server_peak_rss_mib: { value: serverRss, op: '<=', limit: 150, unit: 'MiB' },
        },
        row: {
          Size: formatBytes(size),
          Rounds: String(rounds),
          'Ours MiB/s': oursRate.toFixed(0),
          'PUT MiB/s': putRate.toFixed(0),
          'SHA-256 MiB/s': shaRate.toFixed(0),
          ratio_vs_put: (oursRate / putRate).toFixed(2),
          ratio_vs_sha256: (oursRate / shaRate).toFixed(2),
          'Agent RSS MiB': agentRss.toFixed(0),
          'Server RSS MiB': serverRss.toFixed(0),
          'Agent CPU s/GiB': agentCpu.toFixed(2),
          'Server CPU s/GiB': serverCpu.toFixed(2),
        },
      };
    } finally {
      await removeTempDir(dir);
    }
  },
};

/** Baseline (a): the plain PUT, client and server each in a child process. */
async function plainPut(file: string, size: number, dir: string): Promise<PutRun> {
  const target = path.join(dir, 'put-target');
  await mkdir(target, { recursive: true });
  const server = spawnNode('put-server', PUT_SERVER, [target], { tsx: true, reportDir: dir });
  try {
    const port = Number((await server.waitForLine(/^listening (\d+)/, 30_000)).match[1]);
    const serverCpuBefore = server.cpuSeconds() ?? 0;
    const client = spawnNode('put-client', PUT_CLIENT, [`http://127.0.0.1:${port}/recording.bin`, file], {
      tsx: true,
      reportDir: dir,
    });
    const start = await client.waitForLine(/^start$/, 30_000);
    const cpuAtStart = client.cpuSeconds() ?? 0;
    const done = await client.waitForLine(/^done (\d+) (.*)$/, timeoutFor(size));
    if (done.match[1] !== '200' || !done.match[2]!.includes(`"bytes":${size}`))
      throw new Error(`plain PUT failed: ${done.text}`);
    const serverCpu = (server.cpuSeconds() ?? 0) - serverCpuBefore;
    const usage = await client.usage();
    const clientCpu = usage ? usage.userSeconds + usage.systemSeconds - cpuAtStart : Number.NaN;
    const ms = done.t - start.t;
    return { mibps: mibPerSecond(size, ms), ms, clientCpuSeconds: clientCpu, serverCpuSeconds: serverCpu };
  } finally {
    await server.kill('SIGTERM');
    await rm(target, { recursive: true, force: true });
  }
}

/** Ours: ros2-upload-server and `ros2-upload-agent upload`, each a child process. */
async function oursOnce(file: string, size: number, expected: string, dir: string): Promise<OursRun> {
  const storage = path.join(dir, 'server-storage');
  const state = path.join(dir, 'agent-state');
  const server = await startServerProgram(storage, ['--no-rate-limit'], { reportDir: dir });
  try {
    const serverCpuBefore = server.handle.cpuSeconds() ?? 0;
    const agent = startAgentUpload([file], server.url, state, ['--no-transfer-compression'], { reportDir: dir });
    const started = await agent.waitForLine(/^uploading /, 60_000);
    const agentCpuAtStart = agent.cpuSeconds() ?? 0;
    const verified = await agent.waitForLine(/^verified .* sha256 ([0-9a-f]{64})/, timeoutFor(size));
    if (verified.match[1] !== expected)
      throw new Error(`the server verified ${verified.match[1]}, the file's SHA-256 is ${expected}`);
    const code = await agent.exited;
    if (code !== 0) throw new Error(`the agent exited with ${code}: ${agent.stderr().slice(-2000)}`);
    const serverCpu = (server.handle.cpuSeconds() ?? 0) - serverCpuBefore;
    const serverPeak = server.peakRssKiB();
    const usage = await agent.usage();
    if (!usage) throw new Error('the agent did not report its usage at exit');
    const agentCpu = usage.userSeconds + usage.systemSeconds;
    const ms = verified.t - started.t;
    return {
      mibps: mibPerSecond(size, ms),
      ms,
      agentPeakRssKiB: await agent.peakRssKiB(),
      serverPeakRssKiB: serverPeak,
      agentCpuSeconds: agentCpu - agentCpuAtStart,
      agentStartupCpuSeconds: agentCpuAtStart,
      serverCpuSeconds: serverCpu,
      wallMs: verified.t - agent.startedAt,
    };
  } finally {
    await server.stop();
    await rm(storage, { recursive: true, force: true });
    await rm(state, { recursive: true, force: true });
  }
}

/** Generous: 2 MiB/s plus a minute. */
function timeoutFor(size: number): number {
  return 60_000 + (size / (2 * MiB)) * 1000;
}
