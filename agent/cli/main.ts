#!/usr/bin/env node
// Placeholder until the watcher and agent program issue lands (issue 4).
process.stderr.write('ros2-upload-agent: the agent program is not built yet (see issue 4)\n');
process.exit(2);
