import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AgentMetrics } from '../../agent/app/agent-metrics.js';
import type { AgentStatus } from '../../agent/app/agent-controller.js';
import type { NetworkManagerEvents } from '../../agent/engine/upload-events.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';

const DEPLOY = new URL('../../deploy/', import.meta.url);

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** Metric names a PromQL expression uses (histogram series names reduced to the histogram's). */
function metricNames(expressions: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const expression of expressions)
    for (const [name] of expression.matchAll(/ros2_upload_(?:server|agent)_[a-z_]+/g))
      names.add(name.replace(/_(bucket|sum|count)$/, ''));
  return names;
}

/** Metric names a Prometheus text exposition declares (`# TYPE name kind`). */
function declared(text: string): Set<string> {
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1] ?? ''));
}

describe('the Grafana dashboard and the Prometheus alert rules in deploy/', () => {
  it('use only metrics the server and the agent really export', async () => {
    const dashboard = JSON.parse(readFileSync(new URL('grafana/ros2-upload-dashboard.json', DEPLOY), 'utf8')) as {
      panels: { targets?: { expr: string }[] }[];
    };
    const panelExpressions = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));
    const rules = parse(readFileSync(new URL('prometheus/alerts.yml', DEPLOY), 'utf8')) as {
      groups: { rules: { alert: string; expr: string }[] }[];
    };
    const ruleExpressions = rules.groups.flatMap((group) => group.rules.map((rule) => rule.expr));
    // The four alerts the operators asked for are there.
    expect(rules.groups.flatMap((group) => group.rules.map((rule) => rule.alert))).toEqual(
      expect.arrayContaining(['RobotSilent', 'UploadQueueGrowing', 'UploadStorageLow', 'BagIncompleteForAnHour']),
    );

    server = await startTestServer({
      tokens: ['robot1=robot1-token-0123456789abcdef0123456789-0001'],
      viewerTokens: ['ops=viewer-token-0123456789abcdef0123456789-0001'],
    });
    const scraped = await fetch(`${server.url}/metrics`, {
      headers: { authorization: 'Bearer viewer-token-0123456789abcdef0123456789-0001' },
    });
    expect(scraped.status).toBe(200);
    const serverNames = declared(await scraped.text());

    const idle: AgentStatus = {
      online: true,
      paused: false,
      bandwidthLimit: 0,
      uploads: [],
      bytesPending: 0,
      freeDiskBytes: undefined,
      lowDisk: false,
      heldBack: [],
      problems: [],
    };
    const agent = new AgentMetrics({ engine: new EventEmitter<NetworkManagerEvents>(), status: () => idle });
    const agentNames = declared((await agent.text()).text);

    const used = metricNames([...panelExpressions, ...ruleExpressions]);
    expect(used.size).toBeGreaterThan(20);
    const unknown = [...used].filter((name) => !serverNames.has(name) && !agentNames.has(name));
    expect(unknown).toEqual([]);
  });
});
