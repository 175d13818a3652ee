import { spawn } from 'node:child_process';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Benchmark, BenchContext, BenchResult } from '../support/benchmark.js';
import { makeTempDir, removeTempDir, trackChild } from '../support/cleanup.js';
import { DelayProxy } from '../support/delay-proxy.js';
import { flushDisks, median, sha256Rate, writeRandomFile } from '../support/data.js';
import { spawnNode, startAgentUpload, startServerProgram } from '../support/processes.js';
import { fig, formatBytes, GiB, MiB, mibPerSecond } from '../support/units.js';

const FULL_SIZE = GiB;
const QUICK_SIZE = 256 * MiB;
const PUT_SERVER = fileURLToPath(new URL('../children/plain-put-server.ts', import.meta.url));
const TUS_SERVER = fileURLToPath(new URL('../children/tus-server.ts', import.meta.url));
const TUS_CLIENT = fileURLToPath(new URL('../children/tus-client.ts', import.meta.url));
const VERIFIED_PUT_CLIENT = fileURLToPath(new URL('../children/verified-put-client.ts', import.meta.url));

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

/** The figures of one added round trip, medians over the rounds. */
interface RttFigures {
  rttMs: number;
  ours: number;
  put: number;
  tus: number;
  verified: number;
  ratio: number;
  ratioVsTus: number;
  ratioVsVerified: number;
}

/** Round trips measured when `--rtt` is not given. */
const FULL_RTTS = [0, 50, 150];
const QUICK_RTTS = [0];

/**
 * One file, agent → server, unthrottled, no transfer compression, each program in its own
 * process; with, in the same run, (a) a plain `curl -T` PUT to a minimal node:http sink, (b)
 * the one-core SHA-256 rate over the same file, (c) tus one PATCH and (d) the verified PUT: the
 * least a Node client and server do for the guarantee ours gives (SHA-256 on both sides, the
 * file synced before the answer). With `--rtt`, the peers and ours also go through a proxy that
 * adds that round trip (bench/support/delay-proxy.ts).
 */
export const throughput: Benchmark = {
  name: 'throughput',
  summary:
    'one file agent → server vs a plain curl PUT, tus and a verified PUT (also over added round trips) ' +
    'and the SHA-256 rate; peak RSS and CPU per GiB of both processes',
  async run({ args, say }: BenchContext): Promise<BenchResult> {
    const size = args.size ?? (args.quick ? QUICK_SIZE : FULL_SIZE);
    const rounds = args.rounds ?? 1;
    const rtts = args.rtt ?? (args.quick ? QUICK_RTTS : FULL_RTTS);
    if (!rtts.includes(0)) rtts.unshift(0);
    const dir = await makeTempDir('throughput');
    try {
      const file = path.join(dir, 'data', 'recording.bin');
      say(
        `size ${formatBytes(size)} (${args.quick ? 'quick' : 'full'}), ${rounds} ` +
          `round(s), random data, 127.0.0.1, 8 MiB chunks, no transfer compression, ` +
          `added round trips: ${rtts.map((rtt) => `${rtt} ms`).join(', ')}`,
      );
      if (args.profile) {
        await mkdir(args.profile, { recursive: true });
        say(`CPU profiles of the agent and the server go to ${args.profile} (profiling costs CPU: figures are higher)`);
      }
      const expected = await writeRandomFile(file, size);
      flushDisks();
      const shas: number[] = [];
      const puts = new Map<number, PutRun[]>(rtts.map((rtt) => [rtt, []]));
      const ours = new Map<number, OursRun[]>(rtts.map((rtt) => [rtt, []]));
      const tuses = new Map<number, PutRun[]>(rtts.map((rtt) => [rtt, []]));
      const verifieds = new Map<number, PutRun[]>(rtts.map((rtt) => [rtt, []]));
      for (let round = 1; round <= rounds; round += 1) {
        const sha = await sha256Rate(file, size);
        if (sha.sha256 !== expected) throw new Error('the file changed on disk');
        shas.push(sha.mibps);
        say(`round ${round}: SHA-256 (one core, streamed from disk) ${sha.mibps.toFixed(0)} MiB/s`);
        for (const rtt of rtts) {
          const put = await plainPut(file, size, dir, rtt);
          puts.get(rtt)!.push(put);
          flushDisks();
          const tus = await tusOnce(file, size, dir, rtt);
          tuses.get(rtt)!.push(tus);
          say(`round ${round}, +${rtt} ms RTT: tus-js-client one PATCH → @tus/server ${tus.mibps.toFixed(0)} MiB/s`);
          say(`round ${round}, +${rtt} ms RTT: plain curl -T PUT → node:http sink ${put.mibps.toFixed(0)} MiB/s`);
          flushDisks();
          const verified = await verifiedPut(file, size, dir, rtt);
          verifieds.get(rtt)!.push(verified);
          say(
            `round ${round}, +${rtt} ms RTT: verified PUT (SHA-256 trailer → hashing, syncing sink) ` +
              `${verified.mibps.toFixed(0)} MiB/s`,
          );
          flushDisks();
          const profile = args.profile ? { dir: args.profile, tag: `rtt${rtt}-round${round}` } : undefined;
          const run = await oursOnce(file, size, expected, dir, rtt, profile);
          ours.get(rtt)!.push(run);
          say(
            `round ${round}, +${rtt} ms RTT: ros2-upload-agent → ros2-upload-server ${run.mibps.toFixed(0)} MiB/s ` +
              `(upload ${(run.ms / 1000).toFixed(2)} s, whole program ${(run.wallMs / 1000).toFixed(2)} s; ` +
              `ratio ${(run.mibps / put.mibps).toFixed(2)})`,
          );
          flushDisks();
        }
      }
      const rate = (runs: { mibps: number }[]): number => median(runs.map((r) => r.mibps));
      const byRtt: RttFigures[] = rtts.map((rtt) => {
        const oursRuns = ours.get(rtt)!;
        // The median of the per-round ratios: each round's figures were taken side by side.
        const ratioTo = (peer: Map<number, PutRun[]>): number =>
          median(oursRuns.map((r, i) => r.mibps / peer.get(rtt)![i]!.mibps));
        return {
          rttMs: rtt,
          ours: rate(oursRuns),
          put: rate(puts.get(rtt)!),
          tus: rate(tuses.get(rtt)!),
          verified: rate(verifieds.get(rtt)!),
          ratio: ratioTo(puts),
          ratioVsTus: ratioTo(tuses),
          ratioVsVerified: ratioTo(verifieds),
        };
      });
      const direct = byRtt[0]!;
      const directOurs = ours.get(0)!;
      const shaRate = median(shas);
      const gib = size / GiB;
      const agentRss = Math.max(...[...ours.values()].flat().map((r) => r.agentPeakRssKiB)) / 1024;
      const serverRss = Math.max(...[...ours.values()].flat().map((r) => r.serverPeakRssKiB)) / 1024;
      const agentCpu = median(directOurs.map((r) => r.agentCpuSeconds)) / gib;
      const agentStartup = median(directOurs.map((r) => r.agentStartupCpuSeconds));
      const serverCpu = median(directOurs.map((r) => r.serverCpuSeconds)) / gib;
      /** A peer's client and server CPU per GiB without added round trip (medians of the rounds). */
      const cpuOf = (peer: Map<number, PutRun[]>): { client: number; server: number } => ({
        client: median(peer.get(0)!.map((r) => r.clientCpuSeconds)) / gib,
        server: median(peer.get(0)!.map((r) => r.serverCpuSeconds)) / gib,
      });
      const { client: putClientCpu, server: putServerCpu } = cpuOf(puts);
      const { client: tusClientCpu, server: tusServerCpu } = cpuOf(tuses);
      const { client: verifiedClientCpu, server: verifiedServerCpu } = cpuOf(verifieds);
      for (const row of byRtt) {
        say(
          `+${row.rttMs} ms RTT: ours ${row.ours.toFixed(0)} MiB/s | plain PUT ${row.put.toFixed(0)} MiB/s | ` +
            `tus one PATCH ${row.tus.toFixed(0)} MiB/s | verified PUT ${row.verified.toFixed(0)} MiB/s | ` +
            `ratio_vs_put ${row.ratio.toFixed(2)}, ratio_vs_tus ${row.ratioVsTus.toFixed(2)}, ` +
            `ratio_vs_verified_put ${row.ratioVsVerified.toFixed(2)} (medians of the rounds' ratios)`,
        );
      }
      say(`SHA-256 ${shaRate.toFixed(0)} MiB/s; ratio_vs_sha256 ${(direct.ours / shaRate).toFixed(2)}`);
      say(`peak RSS: agent ${agentRss.toFixed(0)} MiB, server ${serverRss.toFixed(0)} MiB (VmHWM)`);
      say(
        `CPU per GiB during the upload (direct): agent ${agentCpu.toFixed(2)} s (plus ` +
          `${agentStartup.toFixed(2)} s to start), server ${serverCpu.toFixed(2)} s; plain ` +
          `PUT: curl ${putClientCpu.toFixed(2)} s, sink ${putServerCpu.toFixed(2)} s; tus: client ` +
          `${tusClientCpu.toFixed(2)} s, server ${tusServerCpu.toFixed(2)} s; verified PUT: client ` +
          `${verifiedClientCpu.toFixed(2)} s, sink ${verifiedServerCpu.toFixed(2)} s`,
      );
      if (args.profile) {
        say(`CPU profiles: ${(await readdir(args.profile)).filter((f) => f.endsWith('.cpuprofile')).join(', ')}`);
      }
      const targets: BenchResult['targets'] = {
        ratio_vs_put: { value: direct.ratio, op: '>=', limit: 0.9 },
        // "Ahead of tus one PATCH": faster than it in the same run (it verifies nothing).
        ratio_vs_tus: { value: direct.ratioVsTus, op: '>', limit: 1.0 },
        agent_cpu_s_per_gib: { value: agentCpu, op: '<=', limit: 1.0, unit: 's' },
        server_cpu_s_per_gib: { value: serverCpu, op: '<=', limit: 2.0, unit: 's' },
        agent_peak_rss_mib: { value: agentRss, op: '<=', limit: 100, unit: 'MiB' },
        server_peak_rss_mib: { value: serverRss, op: '<=', limit: 150, unit: 'MiB' },
      };
      for (const row of byRtt.slice(1)) {
        targets[`ratio_vs_put_rtt${row.rttMs}`] = { value: row.ratio, op: '>=', limit: 0.8 };
      }
      const row: Record<string, string> = {
        Size: formatBytes(size),
        Rounds: String(rounds),
        'Ours MiB/s': direct.ours.toFixed(0),
        'PUT MiB/s': direct.put.toFixed(0),
        'tus MiB/s': direct.tus.toFixed(0),
        'Verified PUT MiB/s': direct.verified.toFixed(0),
        'SHA-256 MiB/s': shaRate.toFixed(0),
        ratio_vs_put: direct.ratio.toFixed(2),
        ratio_vs_tus: direct.ratioVsTus.toFixed(2),
        ratio_vs_verified_put: direct.ratioVsVerified.toFixed(2),
        ratio_vs_sha256: (direct.ours / shaRate).toFixed(2),
        'Agent RSS MiB': agentRss.toFixed(0),
        'Server RSS MiB': serverRss.toFixed(0),
        'Agent CPU s/GiB': agentCpu.toFixed(2),
        'Server CPU s/GiB': serverCpu.toFixed(2),
        'Verified PUT CPU s/GiB (client / sink)': `${verifiedClientCpu.toFixed(2)} / ${verifiedServerCpu.toFixed(2)}`,
      };
      for (const rtt of FULL_RTTS.slice(1)) {
        const measured = byRtt.find((r) => r.rttMs === rtt);
        row[`+${rtt} ms RTT: ours / PUT / verified PUT MiB/s (ratios)`] = measured
          ? `${measured.ours.toFixed(0)} / ${measured.put.toFixed(0)} / ${measured.verified.toFixed(0)} ` +
            `(${measured.ratio.toFixed(2)}, ${measured.ratioVsVerified.toFixed(2)})`
          : '—';
      }
      return {
        figures: {
          size_bytes: size,
          rounds,
          ours_mibps: fig(direct.ours, 1),
          put_mibps: fig(direct.put, 1),
          put_client: 'curl -T',
          sha256_mibps: fig(shaRate, 1),
          ratio_vs_put: fig(direct.ratio, 3),
          tus_mibps: fig(direct.tus, 1),
          ratio_vs_tus: fig(direct.ratioVsTus, 3),
          tus_client_cpu_s_per_gib: fig(tusClientCpu, 3),
          tus_server_cpu_s_per_gib: fig(tusServerCpu, 3),
          verified_put_mibps: fig(direct.verified, 1),
          ratio_vs_verified_put: fig(direct.ratioVsVerified, 3),
          verified_put_client_cpu_s_per_gib: fig(verifiedClientCpu, 3),
          verified_put_server_cpu_s_per_gib: fig(verifiedServerCpu, 3),
          ratio_vs_sha256: fig(direct.ours / shaRate, 3),
          put_ratio_vs_sha256: fig(direct.put / shaRate, 3),
          agent_peak_rss_mib: fig(agentRss, 1),
          server_peak_rss_mib: fig(serverRss, 1),
          agent_cpu_s_per_gib: fig(agentCpu, 3),
          agent_startup_cpu_s: fig(agentStartup, 3),
          server_cpu_s_per_gib: fig(serverCpu, 3),
          put_client_cpu_s_per_gib: fig(putClientCpu, 3),
          put_server_cpu_s_per_gib: fig(putServerCpu, 3),
          profiled: args.profile !== undefined,
          rtt: byRtt.map((r) => ({
            added_rtt_ms: r.rttMs,
            ours_mibps: fig(r.ours, 1),
            put_mibps: fig(r.put, 1),
            tus_mibps: fig(r.tus, 1),
            ratio_vs_put: fig(r.ratio, 3),
            ratio_vs_tus: fig(r.ratioVsTus, 3),
            verified_put_mibps: fig(r.verified, 1),
            ratio_vs_verified_put: fig(r.ratioVsVerified, 3),
          })),
          runs: directOurs.map((r, i) => ({
            ours_mibps: fig(r.mibps, 1),
            put_mibps: fig(puts.get(0)![i]!.mibps, 1),
            sha256_mibps: fig(shas[i]!, 1),
          })),
        },
        targets,
        row,
      };
    } finally {
      await removeTempDir(dir);
    }
  },
};

/** Runs `body` with a delaying proxy in front of `port` when `rttMs` > 0; gives the port to use. */
async function overPath<T>(port: number, rttMs: number, body: (port: number) => Promise<T>): Promise<T> {
  if (rttMs === 0) return body(port);
  const proxy = await DelayProxy.start(port, rttMs / 2);
  try {
    return await body(proxy.port);
  } finally {
    await proxy.close();
  }
}

/**
 * Baseline (a): `curl -T` (a PUT streamed from the file, no `Expect: 100-continue`) to the
 * minimal sink in a child process. Its rate is curl's own transfer time (`time_total`); its CPU
 * is what the shell that ran it reports for its waited-for child (cutime + cstime).
 */
async function plainPut(file: string, size: number, dir: string, rttMs: number): Promise<PutRun> {
  const target = path.join(dir, 'put-target');
  await mkdir(target, { recursive: true });
  const server = spawnNode('put-server', PUT_SERVER, [target], { tsx: true, reportDir: dir });
  try {
    const port = Number((await server.waitForLine(/^listening (\d+)/, 30_000)).match[1]);
    return await overPath(port, rttMs, async (via) => {
      const serverCpuBefore = server.cpuSeconds() ?? 0;
      const url = `http://127.0.0.1:${via}/recording.bin`;
      const out = await runCurl(file, url, timeoutFor(size));
      if (out.status !== 200 || out.uploaded !== size) throw new Error(`plain PUT failed: ${JSON.stringify(out)}`);
      const serverCpu = (server.cpuSeconds() ?? 0) - serverCpuBefore;
      return {
        mibps: mibPerSecond(size, out.seconds * 1000),
        ms: out.seconds * 1000,
        clientCpuSeconds: out.cpuSeconds,
        serverCpuSeconds: serverCpu,
      };
    });
  } finally {
    await server.kill('SIGTERM');
    await rm(target, { recursive: true, force: true });
  }
}

/**
 * The tus peer: tus-js-client uploading the file in one PATCH to @tus/server's FileStore, each in
 * a child process. The rate and client CPU are the client's own (creation to the PATCH's answer).
 */
function tusOnce(file: string, size: number, dir: string, rttMs: number): Promise<PutRun> {
  return clientPeer(
    { name: 'tus', server: [TUS_SERVER], client: TUS_CLIENT, urlPath: '/files' },
    file,
    size,
    dir,
    rttMs,
  );
}

/**
 * Baseline (d), the cost floor of what ours guarantees: a Node client streaming the file in one
 * PUT with its SHA-256 as a trailer, to the sink in `--verify` mode (hashes while writing, syncs
 * the file, answers 200 only on a matching digest). The client exits 1 on any other answer.
 */
function verifiedPut(file: string, size: number, dir: string, rttMs: number): Promise<PutRun> {
  const peer: ClientPeer = {
    name: 'verified-put',
    server: [PUT_SERVER, '--verify'],
    client: VERIFIED_PUT_CLIENT,
    urlPath: '/recording.bin',
  };
  return clientPeer(peer, file, size, dir, rttMs);
}

interface ClientPeer {
  name: string;
  /** The server's script and its arguments after the storage folder. */
  server: [string, ...string[]];
  /** Prints `uploaded <bytes> in <ms> ms, cpu <seconds> s`, exits 0 on success. */
  client: string;
  urlPath: string;
}

/**
 * A peer made of a server child and a client child, each under tsx. The rate and client CPU are
 * the client's own; the server must hold a file of the full size afterwards.
 */
async function clientPeer(peer: ClientPeer, file: string, size: number, dir: string, rttMs: number): Promise<PutRun> {
  const target = path.join(dir, `${peer.name}-target`);
  await mkdir(target, { recursive: true });
  const [script, ...args] = peer.server;
  const server = spawnNode(`${peer.name}-server`, script, [target, ...args], { tsx: true, reportDir: dir });
  try {
    const port = Number((await server.waitForLine(/^listening (\d+)/, 30_000)).match[1]);
    return await overPath(port, rttMs, async (via) => {
      const serverCpuBefore = server.cpuSeconds() ?? 0;
      const client = spawnNode(`${peer.name}-client`, peer.client, [file, `http://127.0.0.1:${via}${peer.urlPath}`], {
        tsx: true,
        reportDir: dir,
      });
      const done = await client.waitForLine(/^uploaded (\d+) in ([\d.]+) ms, cpu ([\d.]+) s/, timeoutFor(size));
      const code = await client.exited;
      if (code !== 0 || Number(done.match[1]) !== size)
        throw new Error(`${peer.name} upload failed (exit ${code}): ${client.stderr().slice(-2000)}`);
      const stored = await readdir(target, { withFileTypes: true });
      const sizes = await Promise.all(
        stored.filter((entry) => entry.isFile()).map(async (entry) => (await stat(path.join(target, entry.name))).size),
      );
      if (!sizes.includes(size))
        throw new Error(`the ${peer.name} server stored no file of ${size} bytes (${sizes.join(', ')})`);
      const ms = Number(done.match[2]);
      return {
        mibps: mibPerSecond(size, ms),
        ms,
        clientCpuSeconds: Number(done.match[3]),
        serverCpuSeconds: (server.cpuSeconds() ?? 0) - serverCpuBefore,
      };
    });
  } finally {
    await server.kill('SIGTERM');
    await rm(target, { recursive: true, force: true });
  }
}

interface CurlOutcome {
  status: number;
  seconds: number;
  uploaded: number;
  cpuSeconds: number;
}

function runCurl(file: string, url: string, timeoutMs: number): Promise<CurlOutcome> {
  const script =
    'curl -sS -T "$1" -H "Expect:" -o /dev/null -w "%{http_code} %{time_total} %{size_upload}\\n" "$2" ' +
    '&& cat /proc/$$/stat';
  const child = spawn('sh', ['-c', script, 'sh', file, url], { stdio: ['ignore', 'pipe', 'pipe'] });
  trackChild(child);
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (out += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (err += text));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => reject(new Error(`curl could not run (is it installed?): ${error.message}`)));
    child.once('exit', (code) => {
      clearTimeout(timer);
      const [line, stat] = out.split('\n');
      const [status, seconds, uploaded] = (line ?? '').split(' ').map(Number);
      // /proc/<pid>/stat: fields after the command's closing parenthesis; cutime and cstime are 16 and 17.
      const fields = (stat ?? '').slice((stat ?? '').lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[13]) + Number(fields[14]);
      if (code !== 0 || !status) {
        reject(new Error(`curl failed (exit ${code}): ${err.slice(-1000)} ${out}`));
        return;
      }
      resolve({ status, seconds: seconds!, uploaded: uploaded!, cpuSeconds: ticks / 100 });
    });
  });
}

/** Ours: ros2-upload-server and `ros2-upload-agent upload`, each a child process. */
async function oursOnce(
  file: string,
  size: number,
  expected: string,
  dir: string,
  rttMs: number,
  profile: { dir: string; tag: string } | undefined,
): Promise<OursRun> {
  const storage = path.join(dir, 'server-storage');
  const state = path.join(dir, 'agent-state');
  const profileDir = path.join(dir, 'profiles');
  const flags = (who: string): { nodeFlags?: string[] } =>
    profile
      ? {
          nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${who}-${profile.tag}.cpuprofile`],
        }
      : {};
  const server = await startServerProgram(storage, ['--no-rate-limit'], { reportDir: dir, ...flags('server') });
  try {
    return await overPath(server.port, rttMs, async (via) => {
      const serverCpuBefore = server.handle.cpuSeconds() ?? 0;
      const agent = startAgentUpload([file], `http://127.0.0.1:${via}`, state, ['--no-transfer-compression'], {
        reportDir: dir,
        ...flags('agent'),
      });
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
    });
  } finally {
    await server.stop();
    if (profile) {
      // The profiles are written at exit; kept outside the benchmark's temporary folder.
      for (const name of await readdir(profileDir).catch(() => [] as string[]))
        await rename(path.join(profileDir, name), path.join(profile.dir, name));
    }
    await rm(storage, { recursive: true, force: true });
    await rm(state, { recursive: true, force: true });
  }
}

/** Generous: 2 MiB/s plus a minute. */
function timeoutFor(size: number): number {
  return 60_000 + (size / (2 * MiB)) * 1000;
}
