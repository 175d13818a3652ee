#!/usr/bin/env node
// First the V8 flags (see v8-flags.ts), then the program. The program is imported dynamically so
// that V8 parses and compiles it only after the flags are set: loading it alone fills the young
// generation, which would otherwise have grown before the growth limit applies.
import './v8-flags.js';

const { runCli } = await import('./run-cli.js');

// The entry of `ros2-upload-agent` (see run-cli.ts). Exits explicitly: a finished command must
// not wait for idle sockets or timers.
const code = await runCli(process.argv.slice(2));
process.exit(code);
