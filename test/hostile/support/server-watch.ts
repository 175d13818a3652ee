import { readdirSync, readFileSync } from 'node:fs';
import type { ServerProcess } from '../../helpers/spawn-server.js';
import { RawHttp } from './raw-http.js';

/**
 * Observations of a server running as a child process: is it alive, does it answer /health,
 * how many file descriptors and how much memory it holds, and did it log an error.
 */

export function isRunning(server: ServerProcess): boolean {
  return server.child.exitCode === null && server.child.signalCode === null;
}

/** Open file descriptors of a process (Linux /proc). */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Resident memory of a process in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

/** GET /health on a fresh connection; the status, or undefined when there was no answer. */
export async function healthStatus(url: string): Promise<number | undefined> {
  const client = new RawHttp(url);
  try {
    const exchange = await client.send({
      pieces: [Buffer.from('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')],
      method: 'GET',
      mode: 'response',
    });
    return exchange.responses[0]?.status;
  } catch {
    return undefined;
  } finally {
    client.close();
  }
}

/**
 * Log lines at error level or above (pino levels 50, 60) in the server's stdout, and anything
 * it wrote to stderr (Node prints warnings there, such as a file handle closed by the garbage
 * collector, i.e. leaked).
 */
export function serverComplaints(server: ServerProcess): string[] {
  const complaints: string[] = [];
  for (const line of server.stdout().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { level?: number };
      if ((entry.level ?? 0) >= 50) complaints.push(line.length > 2000 ? `${line.slice(0, 2000)}…` : line);
    } catch {
      // a partial line at the end of the buffer
    }
  }
  const stderr = server.stderr().trim();
  if (stderr) complaints.push(`stderr: ${stderr.slice(0, 2000)}`);
  return complaints;
}
