import v8 from 'node:v8';

/**
 * V8 settings of the server program, applied by run-server.ts once the program's modules are
 * loaded, before the server starts. (Only the program: the request handler mounted in another
 * application never changes its host's V8 flags.)
 *
 * `--semi-space-growth-factor=1`: the young generation keeps the size it has once the program is
 * loaded (8 MiB semi-spaces) instead of growing to 16 MiB ones. With grown semi-spaces V8 kept
 * starting full (mark-compact) collections during a large upload, one every 10–20 MiB received
 * (every socket read is a new 64 KiB buffer, and marking started again right after each
 * collection ended). Measured with the agent uploading 1 GiB on 2 cores (`--trace-gc`): without
 * the flag 11 of 14 runs did 23–81 mark-compacts and used 4.1–5.5 s of server CPU per GiB, the
 * others one and 2.8 s; which of the two a run fell into depended on timing, so figures of one
 * build differed by half. Set here, 18 of 18 runs did one (2.5–2.75 s), and the lean client of
 * test/server/scripts/measure-server-cpu.ts costs the same as without it (2.5–2.6 s/GiB).
 * Where it is set matters: before the program loads (1 MiB semi-spaces, as the agent does) a
 * third more server CPU per GiB went into scavenges, and one of 15 runs still fell into the
 * mark-compacts; set one module load later, 4 of 6 runs did (a scavenge in between had grown
 * the young generation to its maximum).
 *
 * `--initial-old-space-size=32` (on the command line: the shebang of main.ts, and every deployment
 * example). With the growth factor alone, uploads over a long link (a proxy adding 50 ms of
 * round trip: many chunk requests open, their first bytes waiting in buffers until their turn)
 * still fell into the mark-compact runs: 29–49 per GiB in 8 of 9 runs, the server's CPU 4.1–5.5 s
 * against 3.5–4.2 s with the flag (1–3 mark-compacts in 6 of 6 runs), peak RSS 8–10 MiB higher.
 * Set from here after start-up it did not hold (30 and 4 in two runs): V8 sizes the old
 * generation when the process starts. A direct upload on loopback is the same with or without it.
 */
export function applyServerV8Flags(): void {
  v8.setFlagsFromString('--semi-space-growth-factor=1');
}
