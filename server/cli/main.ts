#!/usr/bin/env -S node --initial-old-space-size=32
// The node flag above is how the program is meant to run (the deployment examples pass it too):
// see v8-flags.ts for why, and why it cannot be set from inside the program.
import { runServerProgram } from './run-server.js';

// The entry of `ros2-upload-server` (see run-server.ts).
await runServerProgram(process.argv.slice(2));
