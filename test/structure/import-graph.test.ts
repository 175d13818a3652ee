import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { folderCycles, readImportGraph, ruleViolations } from './import-graph.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

/** The checker itself, on a small tree written for the test. */
function writeTree(root: string, files: Record<string, string>): void {
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  }
}

describe('import graph checker', () => {
  const dirs: TempDir[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((d) => d.remove()));
  });
  async function makeTree(files: Record<string, string>): Promise<string> {
    const dir = await createTempDir('imports');
    dirs.push(dir);
    writeTree(dir.path, files);
    return dir.path;
  }

  it('reads static, re-export, side-effect and dynamic imports, not comments or packages', async () => {
    const root = await makeTree({
      'a/one.ts': [
        "import { two } from './two.js';",
        "export { three } from '../b/three.js';",
        "import '../c/side.js';",
        "const lazy = await import('../d/lazy.js');",
        "import express from 'express';",
        "// import { nope } from '../e/nope.js';",
        "/* import { nope } from '../e/nope.js'; */",
      ].join('\n'),
      'a/two.ts': 'export const two = 2;',
    });
    const edges = readImportGraph(root, ['a']);
    expect(edges.map((e) => e.to).sort()).toEqual(['a/two.ts', 'b/three.ts', 'c/side.ts', 'd/lazy.ts']);
  });

  it('finds a folder cycle through a parent folder and names no cycle in a layered tree', async () => {
    const root = await makeTree({
      'srv/root.ts': "import { h } from './http/h.js';",
      'srv/options.ts': 'export const o = 1;',
      'srv/http/h.ts': "import { o } from '../options.js';",
      'lib/core/c.ts': 'export const c = 1;',
      'lib/top.ts': "import { c } from './core/c.js';",
    });
    expect(folderCycles(readImportGraph(root, ['srv', 'lib']))).toEqual([['srv', 'srv/http']]);
  });

  it('reports a forbidden direction unless the file is the named exception', async () => {
    const root = await makeTree({
      'agent/engine/e.ts': "import { s } from '../../server/s.js';",
      'agent/cli/embedded.ts': "const m = await import('../../server/s.js');",
      'server/s.ts': 'export const s = 1;',
    });
    const found = ruleViolations(readImportGraph(root, ['agent', 'server']), [
      { from: 'agent/', mustNotImport: 'server/', except: ['agent/cli/embedded.ts'], because: 'no' },
    ]);
    expect(found).toEqual(['agent/engine/e.ts → server/s.ts: no']);
  });
});
