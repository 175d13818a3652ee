import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import {
  describeCycle,
  folderCycles,
  folderOf,
  layerViolations,
  packageRuleViolations,
  readImportGraph,
  readPackageImports,
  ruleViolations,
  type Layer,
} from './import-graph.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The server's layers, from the bottom up. A file may import its own folder and lower layers
 * only: the composition root wires everything, HTTP (routes and their helpers) calls the use
 * cases, the use cases work with the per-session runtime and the stores, and the stores and
 * pure verifiers know nothing above them.
 */
function serverLayers(commonFolders: readonly string[]): Layer[] {
  return [
    // common/'s own order is the shared code's business; only cycles matter there.
    { name: 'common/ (shared by agent and server)', folders: commonFolders, open: true },
    {
      name: 'stores, pure verifiers and settings',
      folders: [
        'server/config',
        'server/logging',
        'server/tls',
        'server/integrity',
        'server/storage',
        'server/sessions',
      ],
    },
    {
      name: 'per-session runtime, events and the gzip copy',
      folders: ['server/runtime', 'server/events', 'server/compression'],
    },
    { name: 'use cases (uploads/)', folders: ['server/uploads'] },
    { name: 'background jobs and HTTP helpers', folders: ['server/jobs', 'server/http'] },
    { name: 'routes', folders: ['server/routes', 'server/routes/native', 'server/routes/legacy'] },
    { name: 'the composition root', folders: ['server'] },
    { name: 'the server program', folders: ['server/cli'] },
  ];
}

/** Folders below HTTP: they take typed inputs and must not know requests, responses or forms. */
const BELOW_HTTP = [
  'server/uploads/',
  'server/runtime/',
  'server/jobs/',
  'server/events/',
  'server/compression/',
  'server/sessions/',
  'server/storage/',
  'server/integrity/',
  'server/config/',
];
const HTTP_PACKAGES = [
  'express',
  'express-rate-limit',
  'busboy',
  'node:http',
  'node:https',
  'http',
  'https',
  'node:http2',
  'http2',
];

describe('server layering (folder → responsibility, dependencies pointing down)', () => {
  const edges = readImportGraph(ROOT, ['server', 'common']);
  const commonFolders = [
    ...new Set(
      edges
        .flatMap((edge) => [folderOf(edge.from), folderOf(edge.to)])
        .filter((folder) => folder.startsWith('common/')),
    ),
  ];
  const SERVER_LAYERS = serverLayers(commonFolders);

  it('reads a graph of the server (a sanity check that the reader sees the sources)', () => {
    expect(edges.length).toBeGreaterThan(100);
    expect(edges).toContainEqual({ from: 'server/upload-handler.ts', to: 'server/http-app.ts' });
  });

  it('has no folder-level import cycle among server/ and common/ folders', () => {
    const cycles = folderCycles(edges);
    expect(cycles.map((cycle) => `${cycle.join(' ⇄ ')}:\n  ${describeCycle(edges, cycle).join('\n  ')}`)).toEqual([]);
  });

  it('imports only downwards, through the layers', () => {
    expect(layerViolations(edges, SERVER_LAYERS)).toEqual([]);
  });

  it('keeps common/ free of the programs', () => {
    const violations = ruleViolations(edges, [
      {
        from: 'common/',
        mustNotImport: 'server/',
        because: 'common/ is shared by the agent and the server and depends on neither',
      },
      {
        from: 'common/',
        mustNotImport: 'agent/',
        because: 'common/ is shared by the agent and the server and depends on neither',
      },
    ]);
    expect(violations).toEqual([]);
  });

  it('keeps use cases, stores and verifiers free of HTTP (no express, node:http or busboy)', () => {
    const violations = packageRuleViolations(readPackageImports(ROOT, ['server']), [
      {
        from: BELOW_HTTP,
        mustNotImport: HTTP_PACKAGES,
        because: 'below the HTTP layer, requests arrive as typed inputs (see uploads/upload-body.ts)',
      },
    ]);
    expect(violations).toEqual([]);
  });

  it('places every server folder in a layer (a new folder is placed on purpose)', () => {
    const placed = new Set(SERVER_LAYERS.flatMap((layer) => layer.folders));
    const folders = new Set(
      edges
        .flatMap((edge) => [folderOf(edge.from), folderOf(edge.to)])
        .filter((folder) => folder === 'server' || folder.startsWith('server/')),
    );
    expect([...folders].filter((folder) => !placed.has(folder))).toEqual([]);
  });
});

describe('layering checks themselves', () => {
  const dirs: TempDir[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((d) => d.remove()));
  });
  async function makeTree(files: Record<string, string>): Promise<string> {
    const dir = await createTempDir('layers');
    dirs.push(dir);
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir.path, file)), { recursive: true });
      writeFileSync(path.join(dir.path, file), text);
    }
    return dir.path;
  }

  it('reads package imports (type-only, dynamic; not relative or in comments), reports forbidden ones', async () => {
    const root = await makeTree({
      'srv/cases/a.ts': [
        "import type { Request } from 'express';",
        "import { createHash } from 'node:crypto';",
        "const s3 = await import('@aws-sdk/client-s3');",
        "import { b } from './b.js';",
        "// import http from 'node:http';",
      ].join('\n'),
      'srv/web/w.ts': "import express from 'express';",
    });
    const imports = readPackageImports(root, ['srv']);
    expect(
      imports
        .filter((i) => i.from === 'srv/cases/a.ts')
        .map((i) => i.pkg)
        .sort(),
    ).toEqual(['@aws-sdk/client-s3', 'express', 'node:crypto']);
    expect(
      packageRuleViolations(imports, [
        { from: ['srv/cases/'], mustNotImport: ['express', 'node:http'], because: 'no HTTP here' },
      ]),
    ).toEqual(['srv/cases/a.ts imports express: no HTTP here']);
  });

  it('reports an import upwards, one across a layer, and a folder in no layer', async () => {
    const root = await makeTree({
      'srv/store/s.ts': "import { c } from '../cases/c.js';",
      'srv/cases/c.ts': "import { s } from '../store/s.js'; import { t } from '../tools/t.js';",
      'srv/tools/t.ts': 'export const t = 1;',
      'srv/web/w.ts': "import { c } from '../cases/c.js'; import { x } from '../extra/x.js';",
      'srv/extra/x.ts': 'export const x = 1;',
    });
    const layers: Layer[] = [
      { name: 'stores', folders: ['srv/store'] },
      { name: 'use cases', folders: ['srv/cases', 'srv/tools'] },
      { name: 'web', folders: ['srv/web'] },
    ];
    expect(layerViolations(readImportGraph(root, ['srv']), layers).sort()).toEqual([
      'srv/cases/c.ts → srv/tools/t.ts: use cases may not import another folder of its own layer',
      'srv/extra/ is in no layer (imported by or importing srv/web/w.ts)',
      'srv/store/s.ts → srv/cases/c.ts: stores may not import use cases',
    ]);
  });
});
