import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Benchmark, BenchContext, BenchResult } from '../support/benchmark.js';
import { makeTempDir, removeTempDir } from '../support/cleanup.js';
import { CountingProxy } from '../support/counting-proxy.js';
import { flushDisks, median, writeRandomFile } from '../support/data.js';
import { startAgentUpload, startServerProgram } from '../support/processes.js';
import { fig, formatBytes, GiB, MiB } from '../support/units.js';

const FULL_SIZE = GiB;
const QUICK_SIZE = 256 * MiB;
const FULL_ROUNDS = 3;
const QUICK_ROUNDS = 2;

/**
 * Completing an upload that was sent in order: `ros2-upload-agent upload` of one file, and the
 * counting proxy times the complete request alone, from its last byte leaving the agent to the
 * first byte of the answer (what the server spends on it: finishing the SHA-256, the fsync of
 * the file's tail, the rename and the fsync of its folder).
 */
export const complete: Benchmark = {
  name: 'complete',
  summary: 'latency of the complete request of a 1 GiB upload sent in order',
  async run({ args, say }: BenchContext): Promise<BenchResult> {
    const size = args.size ?? (args.quick ? QUICK_SIZE : FULL_SIZE);
    const rounds = args.rounds ?? (args.quick ? QUICK_ROUNDS : FULL_ROUNDS);
    const dir = await makeTempDir('complete');
    try {
      const file = path.join(dir, 'data', 'recording.bin');
      await writeRandomFile(file, size);
      say(
        `${formatBytes(size)} (random; ${args.quick ? 'quick' : 'full'}), 8 MiB chunks in ` +
          `order, unthrottled, ${rounds} round(s), each on a fresh server; timed at a TCP proxy`,
      );
      const latencies: number[] = [];
      for (let round = 1; round <= rounds; round += 1) {
        flushDisks();
        const storage = path.join(dir, 'server');
        const state = path.join(dir, 'state');
        const server = await startServerProgram(storage, ['--no-rate-limit'], { reportDir: dir });
        const proxy = await CountingProxy.start(server.port);
        try {
          const agent = startAgentUpload([file], proxy.url, state, ['--no-transfer-compression'], { reportDir: dir });
          await agent.waitForLine(/^verified /, 600_000);
          const code = await agent.exited;
          if (code !== 0) throw new Error(`the agent exited with ${code}: ${agent.stderr().slice(-2000)}`);
          const chunks = proxy.requests.filter((r) => r.isChunk).map((r) => r.chunkIndex!);
          if (chunks.some((index, i) => index !== i))
            throw new Error(`the chunks were not sent once each in order: ${chunks.join(',')}`);
          const completes = proxy.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/complete'));
          const done = completes.find((r) => r.status === 200);
          if (!done || done.sentAt === undefined || done.answeredAt === undefined)
            throw new Error(`no successful complete request seen (${completes.map((r) => r.status).join(', ')})`);
          const ms = done.answeredAt - done.sentAt;
          latencies.push(ms);
          say(`round ${round}: complete answered in ${ms.toFixed(1)} ms (${completes.length} complete request(s))`);
        } finally {
          await proxy.close();
          await server.stop();
          await rm(storage, { recursive: true, force: true });
          await rm(state, { recursive: true, force: true });
        }
      }
      const mid = median(latencies) / 1000;
      const worst = Math.max(...latencies) / 1000;
      say(`complete latency: median ${(mid * 1000).toFixed(1)} ms, worst ${(worst * 1000).toFixed(1)} ms`);
      return {
        figures: {
          size_bytes: size,
          rounds,
          complete_s: fig(mid, 4),
          complete_worst_s: fig(worst, 4),
          complete_ms_each: latencies.map((ms) => fig(ms, 1)),
        },
        targets: { complete_s: { value: mid, op: '<=', limit: 0.5, unit: 's' } },
        row: {
          Size: formatBytes(size),
          Rounds: String(rounds),
          'Median ms': (mid * 1000).toFixed(0),
          'Worst ms': (worst * 1000).toFixed(0),
        },
      };
    } finally {
      await removeTempDir(dir);
    }
  },
};
