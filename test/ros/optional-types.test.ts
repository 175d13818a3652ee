import { describe, expect, it } from 'vitest';
import type { StringMessage } from '../../agent/ros/ros-messages.js';
import { rosNames } from '../../agent/ros/upload-agent-node.js';
import { uploadStatusState } from '../../agent/ros/upload-status-state.js';
import { startFakeNode } from './helpers/start-fake-node.js';

describe('optional interface types', () => {
  it('without upload_agent_msgs: std_msgs/String JSON on the topics, no ~/enqueue, one warning', async () => {
    const run = await startFakeNode({ missing: ['upload_agent_msgs/'] });
    try {
      const { node, agent } = run;
      expect(node.publishers.get(rosNames.status)?.type).toBe('std_msgs/msg/String');
      expect(node.publishers.get(rosNames.queue)).toMatchObject({
        type: 'std_msgs/msg/String',
        qos: { durability: 'transient_local', depth: 1 },
      });
      expect(node.services.has('~/enqueue')).toBe(false);
      expect(node.services.has('~/pause')).toBe(true);

      agent.update('a', { state: 'uploading', bytesSent: 1234, bytesTotal: 5678, rate: 100, etaSeconds: 44.4 });
      const status = JSON.parse(node.messages<StringMessage>(rosNames.status).at(-1)!.data) as Record<string, unknown>;
      expect(status).toMatchObject({
        upload_id: 'a',
        state: uploadStatusState.uploading,
        state_name: 'uploading',
        bytes_sent: 1234,
        bytes_total: 5678,
        rate: 100,
        eta: 44.4,
      });
      node.tick();
      const queue = JSON.parse(node.messages<StringMessage>(rosNames.queue).at(-1)!.data) as {
        uploading_count: number;
        uploads: { state_name: string }[];
        bandwidth_limit: number;
      };
      expect(queue).toMatchObject({ uploading_count: 1, bandwidth_limit: 0 });
      expect(queue.uploads[0]!.state_name).toBe('uploading');

      const warnings = run.warnings().filter((line) => line.package === 'upload_agent_msgs');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.msg).toContain('npx generate-ros-messages');
      expect(warnings[0]!.msg).toContain('build msgs/');
      expect(warnings[0]!.msg).toContain('source install/setup.bash');
      expect(warnings[0]!.msg).toContain('std_msgs/msg/String JSON');
      expect(warnings[0]!.msg).toContain('~/enqueue');
    } finally {
      await run.handle.shutdown();
    }
  });

  it('without diagnostic_msgs, rosbag2_interfaces or std_srvs: warns once per package, runs without it', async () => {
    const run = await startFakeNode({ missing: ['diagnostic_msgs/', 'rosbag2_interfaces/', 'std_srvs/'] });
    try {
      const { node } = run;
      expect(node.publishers.has(rosNames.diagnostics)).toBe(false);
      expect(node.subscriptions.size).toBe(0);
      expect([...node.services.keys()]).toEqual(['~/enqueue']);
      // Status still flows.
      run.agent.update('a', { state: 'queued' });
      expect(node.messages(rosNames.status)).toHaveLength(1);
      node.tick();

      const byPackage = new Map(run.warnings().map((line) => [line.package, line.msg]));
      expect([...byPackage.keys()].sort()).toEqual(['diagnostic_msgs', 'rosbag2_interfaces', 'std_srvs']);
      expect(run.warnings()).toHaveLength(3);
      for (const message of byPackage.values()) expect(message).toContain('npx generate-ros-messages');
      expect(byPackage.get('diagnostic_msgs')).toContain('/diagnostics is off');
      expect(byPackage.get('rosbag2_interfaces')).toContain('events/write_split fast path is off');
      expect(byPackage.get('std_srvs')).toContain('~/pause, ~/resume and ~/retry_failed services are off');
    } finally {
      await run.handle.shutdown();
    }
  });

  it('without any status type, the node still serves parameters and services', async () => {
    const run = await startFakeNode({ missing: ['upload_agent_msgs/', 'std_msgs/'] });
    try {
      expect(run.node.publishers.has(rosNames.status)).toBe(false);
      expect(run.node.declarations.has('bandwidth_limit')).toBe(true);
      run.agent.update('a', { state: 'queued' });
      run.node.tick();
      expect(run.node.messages(rosNames.diagnostics).length).toBeGreaterThan(0);
    } finally {
      await run.handle.shutdown();
    }
  });
});
