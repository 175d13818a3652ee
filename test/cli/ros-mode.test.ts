import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { watchCommand } from '../../agent/cli/watch-command.js';
import { parseInvocation } from '../../agent/cli/invocation.js';
import type { RosNodeHandle } from '../../agent/ros/index.js';
import { WRITE_SPLIT_TOPIC } from '../../agent/ros/write-split.js';
import { FakeRos } from '../ros/helpers/fake-ros.js';
import { startTestServer } from '../helpers/start-server.js';
import { createTempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * The program in ROS mode: `watch` run through the real ROS layer on the fake rclnodejs seam
 * (the one allowed fake; ROS 2 is not installed here), with the real agent and server behind
 * it. ROS parameters configure the agent before it starts, and rosbag2's write-split event
 * is the fast path that releases a split with no other closing signal.
 */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('ros2-upload-agent as a ROS 2 node', { timeout: 120_000 }, () => {
  it('takes watch_dir and server_url from ROS parameters, uploads a closed split, stops on SIGTERM', async () => {
    const dir = await createTempDir('ros-mode');
    cleanups.push(() => dir.remove());
    const server = await startTestServer();
    cleanups.push(() => server.close());
    const root = path.join(dir.path, 'bags');
    mkdirSync(path.join(root, 'rel_bag'), { recursive: true });

    const invocation = parseInvocation(
      [
        '--ros-args',
        '-p',
        `watch_dir:=${root}`,
        '-p',
        `server_url:=${server.url}`,
        '-p',
        `state_dir:=${path.join(dir.path, 'state')}`,
        '-p',
        'quiet_period:=0.2',
      ],
      {},
    );
    expect(invocation.command).toBe('watch');
    const ros = new FakeRos({ distro: 'humble' });
    const signals = new EventEmitter();
    const exits: number[] = [];
    let handle: RosNodeHandle | undefined;
    const running = watchCommand(invocation, pino({ level: process.env.LOG_LEVEL ?? 'silent' }), {
      loadRos: async () => ({ available: true, binding: ros }),
      rosNode: { signals, exit: (code) => exits.push(code) },
      onRosNode: (started) => {
        handle = started;
      },
    });
    cleanups.push(async () => {
      await handle?.shutdown();
      await running.catch(() => undefined);
    });
    await waitFor(() => handle, 'the node running', 20_000);
    const node = ros.nodes[0]!;

    // The last split of a bag whose recorder has not written metadata.yaml: without the event it
    // would wait for the 30 s settle time.
    const bytes = Buffer.alloc(90_000, 3);
    writeFileSync(path.join(root, 'rel_bag', 'rel_bag_0.db3'), bytes);
    // The recorder ran with a relative -o: the event's path is relative to its own cwd.
    node.deliver(WRITE_SPLIT_TOPIC, { closed_file: 'rel_bag/rel_bag_0.db3', opened_file: 'rel_bag/rel_bag_1.db3' });
    const stored = server.completedPath('anonymous', 'rel_bag/rel_bag_0.db3');
    await waitFor(() => existsSync(stored), 'the split uploaded on the write-split event', 20_000);
    expect(readFileSync(stored).equals(bytes)).toBe(true);
    const statuses = node.publishers.get('upload_status')!.messages as { remote_path: string; state: number }[];
    expect(statuses.some((message) => message.remote_path === 'rel_bag/rel_bag_0.db3')).toBe(true);

    signals.emit('SIGTERM', 'SIGTERM');
    expect(await running).toBe(0);
    expect(exits).toEqual([0]);
    expect(ros.shutdownCount).toBe(1);
  });
});
