import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  node: string;
  /** 1, 5 and 15 minute load averages. */
  loadAverage: [number, number, number];
}

/** The machine as RESULTS.md records it: cores, CPU model (/proc/cpuinfo), Node version, load. */
export function machineInfo(): MachineInfo {
  let model = os.cpus()[0]?.model ?? 'unknown';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'));
    if (line) model = line.slice(line.indexOf(':') + 1).trim();
  } catch {
    // not Linux
  }
  const [one = 0, five = 0, fifteen = 0] = os.loadavg();
  return {
    cores: os.cpus().length,
    cpuModel: model,
    node: process.version,
    loadAverage: [round(one), round(five), round(fifteen)],
  };
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
