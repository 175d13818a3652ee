// Preloaded (`node --import`) into every child process a benchmark starts. Plain JavaScript so
// that the measured programs (dist/) run without a TypeScript loader.
//
// 1. At exit it writes the process's real peak RSS (VmHWM of /proc/self/status: the kernel's
//    high-water mark of this address space, not a sample; getrusage's maxRSS is not used because
//    after fork() it can include the parent's pages) and its CPU time to $BENCH_USAGE_FILE.
// 2. It exits at once when its parent (the benchmark) is gone, so a benchmark killed with -9
//    leaves no process behind.
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.env.BENCH_USAGE_FILE;
delete process.env.BENCH_USAGE_FILE;

function statusKiB(field) {
  try {
    const line = readFileSync('/proc/self/status', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${field}:`));
    return line ? Number(/(\d+)\s*kB/.exec(line)?.[1] ?? Number.NaN) : undefined;
  } catch {
    return undefined;
  }
}

if (file) {
  process.on('exit', (code) => {
    const cpu = process.cpuUsage();
    const report = {
      pid: process.pid,
      code,
      peakRssKiB: statusKiB('VmHWM'),
      rssKiB: statusKiB('VmRSS'),
      userSeconds: cpu.user / 1e6,
      systemSeconds: cpu.system / 1e6,
    };
    try {
      writeFileSync(file, `${JSON.stringify(report)}\n`);
    } catch {
      // the benchmark removed its folder already
    }
  });
}

const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL');
}, 500).unref();
