import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_CHUNK_SIZE, routes } from '../../common/protocol/native-protocol.js';
import type { Benchmark, BenchContext, BenchResult } from '../support/benchmark.js';
import { makeTempDir, removeTempDir } from '../support/cleanup.js';
import { CountingProxy, type ProxyRequest } from '../support/counting-proxy.js';
import { writeRandomFile } from '../support/data.js';
import { startAgentUpload, startServerProgram, type ChildHandle } from '../support/processes.js';
import { fig, formatBytes, MiB } from '../support/units.js';

const FULL_SIZE = 512 * MiB;
const QUICK_SIZE = 128 * MiB;
const CHUNK = DEFAULT_CHUNK_SIZE;

/**
 * Crash and resume: `ros2-upload-agent upload` is killed with SIGKILL once half the file's chunk
 * bytes went through the counting proxy (at the first moment after that when a chunk body is
 * partly sent, so that a chunk is in flight), then started again with the same state directory. The
 * proxy's request log says which chunks each run sent; the server's session status, read right
 * after the kill, says which chunks it had acknowledged.
 */
export const resume: Benchmark = {
  name: 'resume',
  summary: 'kill -9 of the agent at 50% of a 512 MiB upload, restart: bytes sent again',
  async run({ args, say }: BenchContext): Promise<BenchResult> {
    const size = args.size ?? (args.quick ? QUICK_SIZE : FULL_SIZE);
    const dir = await makeTempDir('resume');
    try {
      const file = path.join(dir, 'data', 'recording.bin');
      const sha256 = await writeRandomFile(file, size);
      say(
        `${formatBytes(size)} (random; ${args.quick ? 'quick' : 'full'}), 8 MiB chunks, unthrottled, ` +
          `through a counting TCP proxy; SIGKILL at 50% of the chunk bytes, inside the next chunk's body`,
      );
      const server = await startServerProgram(path.join(dir, 'server'), ['--no-rate-limit'], { reportDir: dir });
      const proxy = await CountingProxy.start(server.port);
      try {
        const state = path.join(dir, 'state');
        // Run 1, killed at half way: the kill happens inside the proxy's data handler, so no
        // byte beyond the threshold's piece is forwarded afterwards.
        let inFlightAtKill: ProxyRequest[] = [];
        let first!: ChildHandle;
        const killed = new Promise<void>((resolve) => {
          proxy.onUpstream = () => {
            // At half the chunk bytes, and inside a chunk's body: 50% of the file is a chunk
            // boundary, and a kill between two chunks would not test what happens to a chunk in flight.
            if (
              proxy.payloadUp < size / 2 ||
              !proxy.requests.some((r) => r.isChunk && r.sentAt === undefined && r.bodyBytes > 0)
            )
              return;
            proxy.onUpstream = undefined;
            inFlightAtKill = proxy.chunksInFlight();
            first.child.kill('SIGKILL');
            resolve();
          };
        });
        first = startAgentUpload([file], proxy.url, state, ['--no-transfer-compression'], { reportDir: dir });
        await Promise.race([
          killed,
          first.exited.then((code) =>
            Promise.reject(new Error(`the agent ended before half way (exit ${code}): ${first.stderr().slice(-2000)}`)),
          ),
        ]);
        await first.exited;
        const sentFirst = proxy.payloadUp;
        const firstRequests = proxy.requests.length;
        const startedChunks = new Set(proxy.requests.filter((r) => r.isChunk).map((r) => r.chunkIndex!));
        const sessionId = proxy.requests.find((r) => r.isChunk)?.sessionId;
        if (!sessionId) throw new Error('no chunk request seen before the kill');
        // The server's view: give it a moment to notice the dead connection.
        await sleep(300);
        const status = (await (await fetch(server.url + routes.session(sessionId))).json()) as {
          received?: number[];
          chunkSize?: number;
        };
        const acked = new Set(status.received ?? []);
        const lengthOf = (index: number): number => Math.max(0, Math.min(CHUNK, size - index * CHUNK));
        const ackedBytes = [...acked].reduce((total, index) => total + lengthOf(index), 0);
        const inFlightBytes = inFlightAtKill.reduce((total, request) => total + lengthOf(request.chunkIndex!), 0);
        const inFlightList =
          inFlightAtKill
            .map(
              (r) =>
                `#${r.chunkIndex} (${formatBytes(r.bodyBytes)} of ${formatBytes(lengthOf(r.chunkIndex!))} ` +
                `arrived, counting what the kernel still delivered after the kill)`,
            )
            .join(', ') || 'none';
        say(
          `killed at ${formatBytes(sentFirst)} of chunk bytes sent; the server had acknowledged ` +
            `${acked.size} chunks (${formatBytes(ackedBytes)}); chunks in flight at the kill: ${inFlightList}`,
        );

        // Run 2: the same command again.
        const second = startAgentUpload([file], proxy.url, state, ['--no-transfer-compression'], { reportDir: dir });
        const verified = await second.waitForLine(/^verified .* sha256 ([0-9a-f]{64})/, 600_000);
        const code = await second.exited;
        if (verified.match[1] !== sha256 || code !== 0)
          throw new Error(`the restarted upload did not verify (exit ${code}, sha256 ${verified.match[1]})`);
        const sentSecond = proxy.payloadUp - sentFirst;
        const secondChunks = proxy.requests.slice(firstRequests).filter((r) => r.isChunk);
        const resent = secondChunks.filter((r) => startedChunks.has(r.chunkIndex!));
        const resentBytes = resent.reduce((total, r) => total + r.bodyBytes, 0);
        const resentAckedBytes = resent
          .filter((r) => acked.has(r.chunkIndex!))
          .reduce((total, r) => total + r.bodyBytes, 0);
        const wasted = sentFirst + sentSecond - size;
        say(
          `restart sent ${formatBytes(sentSecond)} in ${secondChunks.length} chunk ` +
            `requests; the server had not acknowledged ${formatBytes(size - ackedBytes)}`,
        );
        say(
          `re-sent: ${formatBytes(resentBytes)} (chunks ` +
            `${resent.map((r) => `#${r.chunkIndex}`).join(', ') || 'none'}), of which ` +
            `${formatBytes(resentAckedBytes)} the server had acknowledged; bytes of the killed run that ` +
            `were lost: ${formatBytes(sentFirst - ackedBytes)}; total sent beyond the file size: ` +
            `${formatBytes(wasted)}`,
        );
        return {
          figures: {
            size_bytes: size,
            chunk_size_bytes: CHUNK,
            killed_at_bytes: sentFirst,
            acked_at_kill_bytes: ackedBytes,
            chunks_in_flight_at_kill: inFlightAtKill.length,
            in_flight_chunk_bytes: inFlightBytes,
            restart_sent_bytes: sentSecond,
            resent_bytes: resentBytes,
            resent_acked_bytes: resentAckedBytes,
            lost_partial_bytes: sentFirst - ackedBytes,
            sent_beyond_size_bytes: wasted,
            resent_mib: fig(resentBytes / MiB, 2),
          },
          targets: {
            resent_bytes: {
              value: resentBytes,
              op: '<=',
              limit: inFlightBytes,
              unit: `B (the ${inFlightAtKill.length} chunk(s) in flight)`,
            },
          },
          row: {
            Size: formatBytes(size),
            'Acked at kill': formatBytes(ackedBytes),
            'Chunks in flight': `${inFlightAtKill.length} (${formatBytes(inFlightBytes)})`,
            'Re-sent': formatBytes(resentBytes),
            'Re-sent acked': formatBytes(resentAckedBytes),
            'Sent beyond size': formatBytes(wasted),
          },
        };
      } finally {
        await proxy.close();
        await server.stop();
      }
    } finally {
      await removeTempDir(dir);
    }
  },
};
