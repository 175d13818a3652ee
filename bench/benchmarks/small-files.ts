import { mkdir, readdir, rename } from 'node:fs/promises';
import path from 'node:path';
import type { Benchmark, BenchContext, BenchResult } from '../support/benchmark.js';
import { makeTempDir, removeTempDir } from '../support/cleanup.js';
import { flushDisks, writeSmallFiles } from '../support/data.js';
import { startAgentUpload, startServerProgram } from '../support/processes.js';
import { fig, formatBytes, KiB } from '../support/units.js';

const FULL_FILES = 2000;
const QUICK_FILES = 500;
const FILE_SIZE = 64 * KiB;

/**
 * Many small files: `ros2-upload-agent upload <folder>` with the default concurrency, against
 * the server in its own process. files/s is counted from the agent's first output line (the
 * first file queued) to the last `verified` line; the whole program's time (start-up included)
 * is printed as well.
 */
export const smallFiles: Benchmark = {
  name: 'small-files',
  summary: '2,000 files of 64 KiB with the default concurrency: files/s',
  async run({ args, say }: BenchContext): Promise<BenchResult> {
    const count = args.files ?? (args.quick ? QUICK_FILES : FULL_FILES);
    const size = args.fileSize ?? FILE_SIZE;
    const dir = await makeTempDir('small-files');
    try {
      const folder = path.join(dir, 'data', 'many');
      await writeSmallFiles(folder, count, size);
      flushDisks();
      say(
        `${count} files of ${formatBytes(size)} (random; ${args.quick ? 'quick' : 'full'}), ` +
          `one folder, default concurrency, server with default settings but no rate limits`,
      );
      const profileDir = path.join(dir, 'profiles');
      if (args.profile) {
        await mkdir(args.profile, { recursive: true });
        say(`CPU profiles of the agent and the server go to ${args.profile} (profiling costs CPU: figures are higher)`);
      }
      const flags = (who: string): { nodeFlags?: string[] } =>
        args.profile
          ? { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${who}.cpuprofile`] }
          : {};
      const server = await startServerProgram(path.join(dir, 'server'), ['--no-rate-limit'], {
        reportDir: dir,
        ...flags('small-files-server'),
      });
      try {
        const serverCpuBefore = server.handle.cpuSeconds() ?? 0;
        const agent = startAgentUpload([folder], server.url, path.join(dir, 'state'), [], {
          reportDir: dir,
          ...flags('small-files-agent'),
        });
        const first = await agent.waitForLine(/./, 60_000);
        const agentCpuAtFirst = agent.cpuSeconds() ?? 0;
        const summary = await agent.waitForLine(/^(\d+) of (\d+) file\(s\) verified/, 600_000);
        const code = await agent.exited;
        const verified = agent.lines.filter((line) => line.text.startsWith('verified '));
        const failed = agent.lines.filter((line) => /^(failed|not sent|not queued) /.test(line.text));
        if (verified.length !== count || code !== 0)
          throw new Error(
            `${verified.length} of ${count} verified, ${failed.length} failed, ` +
              `exit ${code}: ${failed[0]?.text ?? agent.stderr().slice(-1000)}`,
          );
        const last = verified[verified.length - 1]!;
        const seconds = (last.t - first.t) / 1000;
        const wall = (summary.t - agent.startedAt) / 1000;
        const rate = count / seconds;
        const serverPeak = server.peakRssKiB() / 1024;
        const serverCpu = (server.handle.cpuSeconds() ?? 0) - serverCpuBefore;
        const usage = await agent.usage();
        const agentCpu = usage ? usage.userSeconds + usage.systemSeconds - agentCpuAtFirst : Number.NaN;
        const agentPeak = (await agent.peakRssKiB()) / 1024;
        say(
          `${count} files verified in ${seconds.toFixed(2)} s: ${rate.toFixed(0)} files/s ` +
            `(${(count / wall).toFixed(0)} files/s counting the program's start-up, ${wall.toFixed(2)} s)`,
        );
        const agentMsPerFile = ((agentCpu / count) * 1000).toFixed(2);
        const serverMsPerFile = ((serverCpu / count) * 1000).toFixed(2);
        say(
          `CPU per file: agent ${agentMsPerFile} ms, server ${serverMsPerFile} ms ` +
            `(user + system, from its first output line on)`,
        );
        say(`peak RSS: agent ${agentPeak.toFixed(0)} MiB, server ${serverPeak.toFixed(0)} MiB`);
        return {
          figures: {
            files: count,
            file_size_bytes: size,
            seconds: fig(seconds, 2),
            files_per_s: fig(rate, 1),
            files_per_s_with_startup: fig(count / wall, 1),
            agent_cpu_ms_per_file: fig((agentCpu / count) * 1000, 3),
            server_cpu_ms_per_file: fig((serverCpu / count) * 1000, 3),
            agent_peak_rss_mib: fig(agentPeak, 1),
            server_peak_rss_mib: fig(serverPeak, 1),
          },
          targets: { files_per_s: { value: rate, op: '>=', limit: 300 } },
          row: {
            Files: `${count} × ${formatBytes(size)}`,
            'files/s': rate.toFixed(0),
            'files/s incl. start-up': (count / wall).toFixed(0),
            'CPU ms/file agent / server': `${agentMsPerFile} / ${serverMsPerFile}`,
            'Agent RSS MiB': agentPeak.toFixed(0),
            'Server RSS MiB': serverPeak.toFixed(0),
          },
        };
      } finally {
        await server.stop();
        if (args.profile) {
          // The profiles are written at exit; kept outside the benchmark's temporary folder.
          for (const name of await readdir(profileDir).catch(() => [] as string[]))
            await rename(path.join(profileDir, name), path.join(args.profile, name));
        }
      }
    } finally {
      await removeTempDir(dir);
    }
  },
};
