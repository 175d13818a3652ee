import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeCycle, folderCycles, readImportGraph, ruleViolations, type DirectionRule } from './import-graph.js';

/**
 * The agent's layers, top to bottom, as the folders show them:
 *
 *   agent/cli      the programs' composition root (commands, the embedded default server)
 *   agent/ros      the ROS 2 node: a leaf beside the CLI, which only the CLI starts
 *   agent/app      the agent application: UploadAgent, its options and controller interface
 *   agent/watcher  agent/engine (and the engine's own sub-folders)
 *   common/        config, errors, the wire protocol: shared with the server
 *
 * Each layer imports only layers below it; these tests keep it that way.
 */
const root = fileURLToPath(new URL('../..', import.meta.url));

const EMBEDDED_SERVER = 'agent/cli/embedded-server.ts';

const rules: DirectionRule[] = [
  ...['server/', 'agent/watcher/', 'agent/app/', 'agent/cli/', 'agent/ros/'].map((target) => ({
    from: 'agent/engine/',
    mustNotImport: target,
    because: 'the engine speaks only the wire contract (common/protocol/) and knows nothing above it',
  })),
  ...['agent/engine/', 'agent/app/', 'agent/cli/', 'agent/ros/', 'server/'].map((target) => ({
    from: 'agent/watcher/',
    mustNotImport: target,
    because: 'the watcher sits beside the engine, below the application',
  })),
  ...['agent/cli/', 'agent/ros/'].map((target) => ({
    from: 'agent/app/',
    mustNotImport: target,
    because: 'the application is driven by the CLI and the ROS node, never the reverse',
  })),
  {
    from: 'agent/',
    mustNotImport: 'server/',
    except: [EMBEDDED_SERVER],
    because: `only the program's embedded default server (${EMBEDDED_SERVER}) loads the server`,
  },
  {
    from: 'agent/',
    mustNotImport: 'agent/ros/',
    except: ['agent/ros/', 'agent/cli/'],
    because: "ROS is a leaf: only the programs' composition root (agent/cli/) imports it",
  },
  ...['agent/', 'server/'].map((target) => ({
    from: 'common/',
    mustNotImport: target,
    because: 'common/ is shared by both programs and depends on neither',
  })),
];

/** ruleViolations takes exceptions as exact files; a folder prefix in `except` is expanded here. */
function expandExceptions(edges: ReturnType<typeof readImportGraph>, list: readonly DirectionRule[]): DirectionRule[] {
  return list.map((rule) => {
    if (!rule.except) return rule;
    const files = new Set<string>();
    for (const edge of edges) {
      if (
        rule.except.some((allowed) => (allowed.endsWith('/') ? edge.from.startsWith(allowed) : edge.from === allowed))
      )
        files.add(edge.from);
    }
    return { ...rule, except: [...files] };
  });
}

describe('agent layers', () => {
  const edges = readImportGraph(root, ['agent', 'common', 'server']);
  const agentSide = edges.filter((e) => !e.from.startsWith('server/') && !e.to.startsWith('server/'));

  it('reads a graph of the real sources', () => {
    // A guard against a reader that silently finds nothing: the layers below must have edges.
    expect(agentSide.some((e) => e.from === 'agent/cli/run-cli.ts')).toBe(true);
    expect(agentSide.some((e) => e.from.startsWith('agent/engine/') && e.to.startsWith('common/protocol/'))).toBe(true);
  });

  it('has no folder-level import cycle among agent/ and common/ folders', () => {
    const cycles = folderCycles(agentSide);
    expect(cycles.map((cycle) => `${cycle.join(' ↔ ')}:\n  ${describeCycle(agentSide, cycle).join('\n  ')}`)).toEqual(
      [],
    );
  });

  it('imports only downwards: engine, watcher below the app, ROS a leaf, server only via the embedded one', () => {
    expect(ruleViolations(edges, expandExceptions(edges, rules))).toEqual([]);
  });

  it('the rules bite: an import the layering forbids is reported', () => {
    const forbidden = [
      { from: 'agent/engine/network-manager.ts', to: 'server/server-options.ts' },
      { from: 'agent/app/upload-agent.ts', to: 'agent/ros/index.ts' },
      { from: 'agent/cli/program-agent.ts', to: 'server/index.ts' },
      { from: 'common/config/units.ts', to: 'agent/app/agent-options.ts' },
    ];
    const expanded = expandExceptions([...edges, ...forbidden], rules);
    for (const edge of forbidden) expect(ruleViolations([edge], expanded), `${edge.from} → ${edge.to}`).not.toEqual([]);
    expect(ruleViolations([{ from: EMBEDDED_SERVER, to: 'server/index.ts' }], expandExceptions(edges, rules))).toEqual(
      [],
    );
  });
});
