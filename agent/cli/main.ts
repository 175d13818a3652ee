#!/usr/bin/env node
import { runCli } from './run-cli.js';

// The entry of `ros2-upload-agent` (see run-cli.ts). Exits explicitly: a finished command must
// not wait for idle sockets or timers.
const code = await runCli(process.argv.slice(2));
process.exit(code);
