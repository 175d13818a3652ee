import v8 from 'node:v8';

/**
 * V8 settings of the server program, applied when this module is evaluated: main.ts imports it
 * before the program. (Only the program: the request handler mounted in another application
 * never changes its host's V8 flags.)
 *
 * `--semi-space-growth-factor=1` (as in the agent): the young generation keeps its initial size
 * (1 MiB semi-spaces) instead of growing to 16 MiB ones. With grown semi-spaces V8 kept starting
 * full (mark-compact) collections during a large upload, one every 10–20 MiB received: every
 * socket read is a new 64 KiB buffer, and the old generation's limit then sat closer than the
 * young generation's capacity, so marking started again right after each collection ended.
 * Measured with the agent uploading 1 GiB on 2 cores (`--trace-gc`): without the flag 11 of 14
 * runs did 23–81 mark-compacts and used 4.1–5.5 s of server CPU, the others one and 2.8 s; which
 * of the two a run fell into depended on timing, so figures of one build differed by half. With
 * the flag set here, 10 of 10 runs did one (2.7–3.1 s, 120–140 cheap scavenges instead of 43).
 * Set once the program is loaded (8 MiB semi-spaces by then) it saved another 0.2 s per GiB in
 * one placement but not in another (a scavenge in between had grown the young generation):
 * too fragile to rely on.
 */
v8.setFlagsFromString('--semi-space-growth-factor=1');
