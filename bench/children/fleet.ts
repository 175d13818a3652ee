/**
 * The uploaders of the fan-in benchmark: N upload engines (NetworkManager, each with its own
 * token, journal and connections, as N robots would have) in this one process, each uploading
 * one file. Usage: `fleet.ts <spec.json>`. Prints `start` once every engine runs and every
 * upload is queued, then one JSON line with the outcome, and exits 0 (1 when an upload failed).
 */
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { NetworkManager } from '../../agent/engine/network-manager.js';

export interface FleetSpec {
  serverUrl: string;
  uploads: { file: string; remotePath: string; token: string; stateDir: string }[];
}

const specFile = process.argv[2];
if (!specFile) throw new Error('usage: fleet.ts <spec.json>');
const spec = JSON.parse(readFileSync(specFile, 'utf8')) as FleetSpec;
const logger = pino({ level: 'silent' });
const managers = spec.uploads.map(
  (upload) => new NetworkManager({ serverUrl: spec.serverUrl, token: upload.token, stateDir: upload.stateDir, logger }),
);
let retries = 0;
const reasons = new Map<string, number>();
const failures: string[] = [];
let completed = 0;
const done = Promise.all(
  managers.map(
    (manager) =>
      new Promise<void>((resolve) => {
        manager.on('retrying', (event) => {
          retries += 1;
          reasons.set(event.reason, (reasons.get(event.reason) ?? 0) + 1);
        });
        manager.on('completed', () => {
          completed += 1;
          resolve();
        });
        manager.on('failed', (event) => {
          failures.push(event.reason);
          resolve();
        });
      }),
  ),
);
await Promise.all(managers.map((manager) => manager.start()));
console.log('start');
await Promise.all(
  managers.map((manager, i) => manager.addUpload(spec.uploads[i]!.file, { remotePath: spec.uploads[i]!.remotePath })),
);
await done;
console.log(
  JSON.stringify({
    completed,
    failed: failures.length,
    retries,
    reasons: Object.fromEntries(reasons),
    failures: failures.slice(0, 5),
  }),
);
await Promise.all(managers.map((manager) => manager.stop()));
process.exit(failures.length > 0 ? 1 : 0);
