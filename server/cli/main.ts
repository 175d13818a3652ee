#!/usr/bin/env node
// First the V8 flags (see v8-flags.ts), then the program, imported dynamically so that V8 loads
// it only after the flags are set (loading it alone would grow the young generation first).
import './v8-flags.js';

const { runServerProgram } = await import('./run-server.js');

// The entry of `ros2-upload-server` (see run-server.ts).
await runServerProgram(process.argv.slice(2));
