#!/usr/bin/env node
import { runServerProgram } from './run-server.js';

// The entry of `ros2-upload-server` (see run-server.ts).
await runServerProgram(process.argv.slice(2));
