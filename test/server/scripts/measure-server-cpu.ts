/**
 * Server CPU per byte and per request, measured on the real server program with a lean client
 * (not the agent, so that changes on either side can be measured apart). Not a test:
 *
 *   npx tsx test/server/scripts/measure-server-cpu.ts throughput [--mib 1024] [--rounds 3]
 *   npx tsx test/server/scripts/measure-server-cpu.ts small [--files 2000] [--concurrency 2] [--kib 64]
 *                                                          [--rounds 3] [--kinds session,put]
 *   npx tsx test/server/scripts/measure-server-cpu.ts fan-in [--concurrency 50] [--mib 20] [--rounds 3]
 *   options: --server <main.js>   the server program (default dist/server/cli/main.js; a build of
 *                                 another commit gives an A/B comparison on the same machine)
 *            --prof <dir>         run the server under `node --cpu-prof` into <dir>
 *            --node-arg <flag>    a node flag for the server (repeatable), e.g. --max-semi-space-size=2
 *            --wrap <command>     run the server under a command, e.g. "strace -f -c -o calls.txt" (CPU
 *                                 figures are then the wrapper's, not the server's)
 *
 * throughput: one file in 8 MiB chunks, sent one after another as the agent does (create, chunks,
 * complete), from a few random chunk buffers whose CRCs are computed once. Prints MiB/s and the
 * server's CPU seconds (user + system, from /proc) per GiB.
 * small: files of `--kib` KiB with `--concurrency` uploads at a time, once as three requests each
 * (create, chunk, complete) and once as one whole-file PUT each. Prints files/s and the server's
 * CPU milliseconds per file. Each round alternates the two kinds.
 * fan-in: `--concurrency` uploaders of `--mib` MiB each at once, as the fan-in benchmark; prints
 * the server's peak RSS (VmHWM) and CPU per GiB. The last line is JSON.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { Crc32 } from '../../../common/protocol/chunk-checksum.js';
import { fingerprintOf, fingerprintRanges } from '../../../common/protocol/fingerprint.js';
import { DEFAULT_CHUNK_SIZE, headers, routes } from '../../../common/protocol/native-protocol.js';
import { createTempDir, type TempDir } from '../../helpers/tmp-dir.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    server: { type: 'string', default: fileURLToPath(new URL('../../../dist/server/cli/main.js', import.meta.url)) },
    prof: { type: 'string' },
    'node-arg': { type: 'string', multiple: true, default: [] },
    wrap: { type: 'string' },
    mib: { type: 'string', default: '1024' },
    files: { type: 'string', default: '2000' },
    kib: { type: 'string', default: '64' },
    concurrency: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '1' },
    kinds: { type: 'string', default: 'session,put' },
  },
});
const mode = positionals[0] ?? 'throughput';
const MiB = 1024 * 1024;
const TICKS = 100; // USER_HZ on Linux

interface Server {
  url: string;
  pid: number;
  cpuSeconds(): Promise<number>;
  /** The system (kernel) part of cpuSeconds. */
  systemSeconds(): Promise<number>;
  peakRssMiB(): Promise<number>;
  /** read() system calls so far (/proc/<pid>/io syscr): socket reads, mostly. */
  readCalls(): Promise<number>;
  stop(): Promise<void>;
}

async function startServer(dir: TempDir): Promise<Server> {
  const nodeArgs = [
    ...(values['node-arg'] ?? []),
    ...(values.prof ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(values.prof)] : []),
  ];
  const wrapper = values.wrap ? values.wrap.split(' ') : [];
  const child = spawn(
    wrapper[0] ?? process.execPath,
    [
      ...wrapper.slice(1),
      ...(wrapper.length > 0 ? [process.execPath] : []),
      ...nodeArgs,
      values.server,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--upload-dir',
      dir.path,
      '--no-rate-limit',
      '--log-level',
      'info',
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      // A wrapper (strace) does not pass SIGTERM on: the whole group is signalled.
      detached: wrapper.length > 0,
    },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      out += text;
      const match = /"event":"listening","url":"([^"]+)"/.exec(out);
      if (match) resolve(match[1]!);
      if (out.length > 100_000) out = out.slice(-10_000);
    });
    void exited.then(() => reject(new Error(`the server exited before listening: ${out}`)));
  });
  const pid = child.pid!;
  return {
    url,
    pid,
    async cpuSeconds() {
      const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) / TICKS;
    },
    async systemSeconds() {
      const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
      return Number(fields[12]) / TICKS;
    },
    async peakRssMiB() {
      const line = (await readFile(`/proc/${pid}/status`, 'utf8')).split('\n').find((l) => l.startsWith('VmHWM:'))!;
      return Number(/(\d+)/.exec(line)![1]) / 1024;
    },
    async readCalls() {
      return Number(/syscr: (\d+)/.exec(await readFile(`/proc/${pid}/io`, 'utf8'))![1]);
    },
    async stop() {
      if (wrapper.length > 0) process.kill(-pid, 'SIGTERM');
      else child.kill('SIGTERM');
      await exited;
    },
  };
}

const dispatcher = new Agent({ connections: 64, pipelining: 1, keepAliveTimeout: 30_000 });

async function send(
  base: string,
  method: 'POST' | 'PUT',
  route: string,
  body: Buffer | string,
  extra: Record<string, string>,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const answer = await request(base + route, { method, body, headers: extra, dispatcher });
  const text = await answer.body.text();
  const json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (answer.statusCode >= 300) throw new Error(`${method} ${route}: ${answer.statusCode} ${text}`);
  return { status: answer.statusCode, json };
}

/** One file as the agent sends it: create, chunks one after another, complete. */
async function sessionUpload(
  base: string,
  relativePath: string,
  size: number,
  chunkAt: (index: number) => { data: Buffer; crc: string },
  sha256: string,
  fingerprint: string,
): Promise<void> {
  const created = await send(
    base,
    'POST',
    routes.sessions,
    JSON.stringify({ path: relativePath, size, fingerprint, chunkSize: DEFAULT_CHUNK_SIZE, sha256 }),
    { 'content-type': 'application/json' },
  );
  const id = created.json.id as string;
  const count = created.json.chunkCount as number;
  for (let index = 0; index < count; index += 1) {
    const { data, crc } = chunkAt(index);
    await send(base, 'PUT', routes.chunk(id, index), data, {
      'content-type': 'application/octet-stream',
      [headers.chunkChecksum]: crc,
    });
  }
  await send(base, 'POST', routes.complete(id), JSON.stringify({ sha256 }), { 'content-type': 'application/json' });
}

async function throughput(): Promise<Record<string, unknown>> {
  const size = Number(values.mib) * MiB;
  const count = Math.ceil(size / DEFAULT_CHUNK_SIZE);
  const pool = Array.from({ length: 4 }, () => {
    const data = randomBytes(DEFAULT_CHUNK_SIZE);
    return { data, crc: new Crc32().update(data).header() };
  });
  const chunkAt = (index: number): { data: Buffer; crc: string } => pool[index % pool.length]!;
  const hash = createHash('sha256');
  const samples: Buffer[] = [];
  for (let index = 0; index < count; index += 1) hash.update(chunkAt(index).data);
  const sha256 = hash.digest('hex');
  for (const [position, length] of fingerprintRanges(size)) {
    const index = Math.floor(position / DEFAULT_CHUNK_SIZE);
    samples.push(
      chunkAt(index).data.subarray(
        position - index * DEFAULT_CHUNK_SIZE,
        position - index * DEFAULT_CHUNK_SIZE + length,
      ),
    );
  }
  const fingerprint = fingerprintOf(size, samples);
  const runs: { mibps: number; cpuPerGiB: number; peakRssMiB: number }[] = [];
  for (let round = 1; round <= Number(values.rounds); round += 1) {
    const dir = await createTempDir('measure-cpu');
    const server = await startServer(dir);
    try {
      const cpu0 = await server.cpuSeconds();
      const reads0 = await server.readCalls();
      const sys0 = await server.systemSeconds();
      const t0 = performance.now();
      await sessionUpload(server.url, 'bag/recording.bin', size, chunkAt, sha256, fingerprint);
      const seconds = (performance.now() - t0) / 1000;
      const cpu = (await server.cpuSeconds()) - cpu0;
      const reads = (await server.readCalls()) - reads0;
      const sys = (await server.systemSeconds()) - sys0;
      const run = {
        mibps: size / MiB / seconds,
        cpuPerGiB: cpu / (size / 1024 ** 3),
        peakRssMiB: await server.peakRssMiB(),
      };
      runs.push(run);
      console.log(
        `round ${round}: ${run.mibps.toFixed(0)} MiB/s, server CPU ${run.cpuPerGiB.toFixed(2)} s/GiB ` +
          `(system ${(sys / (size / 1024 ** 3)).toFixed(2)}), ${((reads / size) * 1024 ** 3).toFixed(0)} ` +
          `read calls/GiB, server peak RSS ${run.peakRssMiB.toFixed(0)} MiB`,
      );
    } finally {
      await server.stop();
      await dir.remove();
    }
  }
  return {
    measure: 'server-cpu-throughput',
    mib: Number(values.mib),
    runs: runs.map((r) => ({
      mibps: round1(r.mibps),
      cpuPerGiB: round3(r.cpuPerGiB),
      peakRssMiB: round1(r.peakRssMiB),
    })),
    medianMibps: round1(median(runs.map((r) => r.mibps))),
    medianCpuPerGiB: round3(median(runs.map((r) => r.cpuPerGiB))),
  };
}

async function small(): Promise<Record<string, unknown>> {
  const files = Number(values.files);
  const size = Number(values.kib) * 1024;
  const concurrency = Number(values.concurrency);
  const contents = Array.from({ length: 64 }, () => {
    const data = randomBytes(size);
    return {
      data,
      crc: new Crc32().update(data).header(),
      sha256: createHash('sha256').update(data).digest('hex'),
      fingerprint: fingerprintOf(
        size,
        fingerprintRanges(size).map(([p, l]) => data.subarray(p, p + l)),
      ),
    };
  });
  const kinds = {
    session: async (base: string, n: number): Promise<void> => {
      const c = contents[n % contents.length]!;
      await sessionUpload(base, `bag${Math.floor(n / 100)}/session_${n}.bin`, size, () => c, c.sha256, c.fingerprint);
    },
    put: async (base: string, n: number): Promise<void> => {
      const c = contents[n % contents.length]!;
      const answer = await send(base, 'PUT', routes.file(`bag${Math.floor(n / 100)}/put_${n}.bin`), c.data, {
        'content-type': 'application/octet-stream',
        [headers.contentSha256]: c.sha256,
      });
      if (answer.status !== 201) throw new Error(`PUT answered ${answer.status}`);
    },
  };
  const results: Record<string, { filesPerSecond: number[]; cpuMsPerFile: number[] }> = {
    session: { filesPerSecond: [], cpuMsPerFile: [] },
    put: { filesPerSecond: [], cpuMsPerFile: [] },
  };
  for (let round = 1; round <= Number(values.rounds); round += 1) {
    for (const kind of values.kinds.split(',') as ('session' | 'put')[]) {
      const dir = await createTempDir('measure-cpu');
      const server = await startServer(dir);
      try {
        // Warm up (JIT, SQLite pages) before measuring.
        for (let n = 0; n < 50; n += 1) await kinds[kind](server.url, 1_000_000 + n);
        let next = 0;
        const cpu0 = await server.cpuSeconds();
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            for (let n = next++; n < files; n = next++) await kinds[kind](server.url, n);
          }),
        );
        const seconds = (performance.now() - t0) / 1000;
        const cpu = (await server.cpuSeconds()) - cpu0;
        results[kind]!.filesPerSecond.push(files / seconds);
        results[kind]!.cpuMsPerFile.push((cpu * 1000) / files);
        console.log(
          `round ${round} ${kind.padEnd(7)}: ${(files / seconds).toFixed(0)} ` +
            `files/s, server CPU ${((cpu * 1000) / files).toFixed(2)} ms per file`,
        );
      } finally {
        await server.stop();
        await dir.remove();
      }
    }
  }
  // The least CPU of the rounds is the best estimate of the cost itself on a machine shared with other jobs.
  const summary = (kind: string): Record<string, number> => ({
    filesPerSecond: round1(median(results[kind]!.filesPerSecond)),
    cpuMsPerFile: round3(median(results[kind]!.cpuMsPerFile)),
    minCpuMsPerFile: round3(Math.min(...results[kind]!.cpuMsPerFile)),
  });
  return {
    measure: 'server-cpu-small',
    files,
    kib: Number(values.kib),
    concurrency,
    session: summary('session'),
    put: summary('put'),
  };
}

async function fanIn(): Promise<Record<string, unknown>> {
  const uploaders = Number(values.concurrency === '2' ? 50 : values.concurrency);
  const mib = Number(values.mib === '1024' ? 20 : values.mib);
  const size = mib * MiB;
  const count = Math.ceil(size / DEFAULT_CHUNK_SIZE);
  const pool = Array.from({ length: 4 }, () => {
    const data = randomBytes(DEFAULT_CHUNK_SIZE);
    return { data, crc: new Crc32().update(data).header() };
  });
  const chunkAt = (index: number): { data: Buffer; crc: string } => {
    const chunk = pool[index % pool.length]!;
    const length = Math.min(DEFAULT_CHUNK_SIZE, size - index * DEFAULT_CHUNK_SIZE);
    return length === DEFAULT_CHUNK_SIZE
      ? chunk
      : { data: chunk.data.subarray(0, length), crc: new Crc32().update(chunk.data.subarray(0, length)).header() };
  };
  const hash = createHash('sha256');
  for (let index = 0; index < count; index += 1) hash.update(chunkAt(index).data);
  const sha256 = hash.digest('hex');
  const runs: { peakRssMiB: number; mibps: number; cpuPerGiB: number }[] = [];
  for (let round = 1; round <= Number(values.rounds); round += 1) {
    const dir = await createTempDir('measure-cpu');
    const server = await startServer(dir);
    try {
      const cpu0 = await server.cpuSeconds();
      const t0 = performance.now();
      // Each uploader's file has its own path and fingerprint (the content is shared: the server cannot tell).
      await Promise.all(
        Array.from({ length: uploaders }, (_, u) =>
          sessionUpload(
            server.url,
            `u${u}/file.bin`,
            size,
            chunkAt,
            sha256,
            `fp1:${createHash('sha256').update(String(u)).digest('hex')}`,
          ),
        ),
      );
      const seconds = (performance.now() - t0) / 1000;
      const cpu = (await server.cpuSeconds()) - cpu0;
      const run = {
        peakRssMiB: await server.peakRssMiB(),
        mibps: (uploaders * mib) / seconds,
        cpuPerGiB: cpu / ((uploaders * size) / 1024 ** 3),
      };
      runs.push(run);
      console.log(
        `round ${round}: ${uploaders} × ${mib} MiB, ${run.mibps.toFixed(0)} MiB/s, server ` +
          `peak RSS ${run.peakRssMiB.toFixed(0)} MiB, CPU ${run.cpuPerGiB.toFixed(2)} s/GiB`,
      );
    } finally {
      await server.stop();
      await dir.remove();
    }
  }
  return {
    measure: 'server-fan-in',
    uploaders,
    mib,
    maxPeakRssMiB: round1(Math.max(...runs.map((r) => r.peakRssMiB))),
    medianMibps: round1(median(runs.map((r) => r.mibps))),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
const round1 = (x: number): number => Math.round(x * 10) / 10;
const round3 = (x: number): number => Math.round(x * 1000) / 1000;

try {
  const result = mode === 'small' ? await small() : mode === 'fan-in' ? await fanIn() : await throughput();
  console.log(JSON.stringify({ ...result, server: values.server }));
} finally {
  await dispatcher.close();
}
