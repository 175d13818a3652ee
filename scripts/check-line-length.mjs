#!/usr/bin/env node
// Fails when a tracked TypeScript or JavaScript module has a line over MAX_LINE characters.
// Biome's formatter keeps code within its lineWidth but leaves comments, strings and test
// titles as they are, so this check covers what it cannot. Usage: node scripts/check-line-length.mjs
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MAX_LINE = 120;
const root = fileURLToPath(new URL('..', import.meta.url));

// Tracked files only, so build output and dependencies never count; `git ls-files` takes a few ms.
const files = execFileSync('git', ['ls-files', '-z', '--', '*.ts', '*.mts', '*.mjs'], { cwd: root, encoding: 'utf8' })
  .split('\0')
  .filter(Boolean);

const long = [];
for (const file of files) {
  let text;
  try {
    text = readFileSync(path.join(root, file), 'utf8');
  } catch (error) {
    if (error.code === 'ENOENT') continue; // deleted in the work tree, not yet in the index
    throw error;
  }
  const lines = text.split('\n');
  for (const [index, line] of lines.entries()) {
    // Code points, not UTF-16 units: `→` and `—` count as one column each, as an editor shows them.
    const length = [...line].length;
    if (length > MAX_LINE) long.push(`${file}:${index + 1}: ${length} characters`);
  }
}

if (long.length > 0) {
  console.error(
    `${long.length} lines are longer than ${MAX_LINE} characters (rewrap the comment or split the string):`,
  );
  for (const entry of long) console.error(`  ${entry}`);
  process.exit(1);
}
console.log(`line length: ${files.length} files, no line over ${MAX_LINE} characters`);
