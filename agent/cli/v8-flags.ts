import v8 from 'node:v8';

/**
 * V8 settings of the agent program, applied when this module is evaluated: main.ts imports it
 * first, before anything loads undici. (Only the program: the library never changes its host's
 * V8 flags.) Both keep the agent's peak RSS down; the throughput benchmark measures them.
 *
 * - `--liftoff-only`: undici parses HTTP with llhttp compiled to WebAssembly. Once it is hot, V8
 *   recompiles it with TurboFan on a worker thread, whose malloc arena keeps some 30 MiB of RSS
 *   (64 PUTs of 8 MiB with undici: peak RSS 105 → 74 MiB). Liftoff, V8's baseline WebAssembly
 *   compiler, is fast enough: the parser only reads response headers and short JSON answers.
 *   (`--no-wasm-tier-up` does not avoid it when set at run time; this one does.) Liftoff
 *   supports everything llhttp uses (including SIMD) on x64 with SSE4.1 and on arm64.
 * - `--semi-space-growth-factor=1`: the young generation keeps its initial size (1 MiB
 *   semi-spaces) instead of growing to 16 MiB ones, which hold up to 32 MiB more of RSS. The
 *   agent's JavaScript makes little garbage (chunk data lives in reused buffers outside the
 *   heap), so the extra scavenges cost little. `--max-semi-space-size` would say the same but
 *   works only on the node command line (V8 reads it when it creates the heap); the growth
 *   factor is read each time the young generation would grow.
 */
v8.setFlagsFromString('--liftoff-only');
v8.setFlagsFromString('--semi-space-growth-factor=1');
