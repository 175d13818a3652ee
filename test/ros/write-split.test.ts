import { describe, expect, it } from 'vitest';
import { WRITE_SPLIT_QOS, WRITE_SPLIT_TOPIC } from '../../agent/ros/write-split.js';
import { checkMessage, loadMessage } from './helpers/ros-idl.js';
import { startFakeNode } from './helpers/start-fake-node.js';

describe('the write-split fast path', () => {
  it('subscribes to the relative events/write_split and marks each file closed at once (Humble event)', async () => {
    const run = await startFakeNode();
    try {
      const subscription = run.node.subscriptions.get(WRITE_SPLIT_TOPIC);
      expect(WRITE_SPLIT_TOPIC).toBe('events/write_split');
      expect(subscription?.type).toBe('rosbag2_interfaces/msg/WriteSplitEvent');
      expect(subscription?.qos).toEqual(WRITE_SPLIT_QOS);
      expect(WRITE_SPLIT_QOS.reliability).toBe('reliable');

      const humble = { closed_file: 'rel_bag/rel_bag_3.db3', opened_file: 'rel_bag/rel_bag_4.db3' };
      expect(checkMessage(humble, loadMessage('rosbag2_interfaces/msg/WriteSplitEvent'))).toEqual([]);
      run.node.deliver(WRITE_SPLIT_TOPIC, humble);
      run.node.deliver(WRITE_SPLIT_TOPIC, {
        closed_file: '/data/bags/run1/run1_4.mcap.zstd',
        opened_file: '/data/bags/run1/run1_5.mcap',
      });
      // The last event of a recording has an empty opened_file; its closed_file still counts.
      run.node.deliver(WRITE_SPLIT_TOPIC, { closed_file: '/data/bags/run1/run1_5.mcap', opened_file: '' });
      // An event without a closed file is ignored.
      run.node.deliver(WRITE_SPLIT_TOPIC, { closed_file: '', opened_file: '/data/bags/run1/run1_0.mcap' });
      expect(run.agent.calls.markClosed).toEqual([
        'rel_bag/rel_bag_3.db3',
        '/data/bags/run1/run1_4.mcap.zstd',
        '/data/bags/run1/run1_5.mcap',
      ]);
    } finally {
      await run.handle.shutdown();
    }
  });

  it('accepts the Jazzy event with node_name, and a markClosed failure is only a warning', async () => {
    const run = await startFakeNode({ distro: 'jazzy' });
    try {
      const jazzy = {
        closed_file: '/bags/r/r_0.mcap',
        opened_file: '/bags/r/r_1.mcap',
        node_name: '/rosbag2_recorder',
      };
      expect(checkMessage(jazzy, loadMessage('rosbag2_interfaces/msg/WriteSplitEvent.jazzy'))).toEqual([]);
      run.node.deliver(WRITE_SPLIT_TOPIC, jazzy);
      expect(run.agent.calls.markClosed).toEqual(['/bags/r/r_0.mcap']);

      run.agent.markClosed = () => {
        throw new Error('not under the watched folder');
      };
      run.node.deliver(WRITE_SPLIT_TOPIC, { ...jazzy, closed_file: '/elsewhere/x_0.mcap' });
      expect(run.warnings().map((line) => line.msg)).toContain(
        'could not mark a split closed; the watcher will find it',
      );
    } finally {
      await run.handle.shutdown();
    }
  });
});
