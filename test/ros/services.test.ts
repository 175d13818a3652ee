import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { serviceNames } from '../../agent/ros/agent-services.js';
import type { EnqueueResponse, TriggerResponse, UploadQueueMessage } from '../../agent/ros/ros-messages.js';
import { rosNames } from '../../agent/ros/upload-agent-node.js';
import { UploadError } from '../../common/errors/upload-error.js';
import { startFakeNode, type FakeNodeRun } from './helpers/start-fake-node.js';

describe('services', () => {
  let run: FakeNodeRun;

  beforeEach(async () => {
    run = await startFakeNode();
  });

  afterEach(async () => {
    await run.handle.shutdown();
  });

  it('serves ~/pause, ~/resume, ~/retry_failed (std_srvs/Trigger) and ~/enqueue under the node name', () => {
    expect([...run.node.services.entries()].map(([name, service]) => [name, service.type])).toEqual([
      ['~/pause', 'std_srvs/srv/Trigger'],
      ['~/resume', 'std_srvs/srv/Trigger'],
      ['~/retry_failed', 'std_srvs/srv/Trigger'],
      ['~/enqueue', 'upload_agent_msgs/srv/Enqueue'],
    ]);
  });

  it('~/pause and ~/resume reach the agent and show at once on ~/queue', async () => {
    const { node, agent } = run;
    const paused = (await node.call(serviceNames.pause, {})) as TriggerResponse;
    expect(paused).toEqual({ success: true, message: 'paused: no new chunks start; chunks in flight finish' });
    expect(agent.calls.pause).toBe(1);
    expect(node.messages<UploadQueueMessage>(rosNames.queue).at(-1)!.paused).toBe(true);
    expect(((await node.call(serviceNames.pause, {})) as TriggerResponse).message).toBe('already paused');

    const resumed = (await node.call(serviceNames.resume, {})) as TriggerResponse;
    expect(resumed).toEqual({ success: true, message: 'resumed' });
    expect(agent.calls.resume).toBe(1);
    // The queue throttle (5 Hz) may hold the change for a moment; the 1 Hz timer publishes it anyway.
    node.tick();
    expect(node.messages<UploadQueueMessage>(rosNames.queue).at(-1)!.paused).toBe(false);
  });

  it('~/retry_failed puts failed uploads back and says how many', async () => {
    const { node, agent } = run;
    expect(await node.call(serviceNames.retryFailed, {})).toEqual({ success: true, message: 'no failed uploads' });
    agent.update('x', { state: 'failed', lastError: 'gone' });
    agent.update('y', { state: 'failed', lastError: 'gone' });
    expect(await node.call(serviceNames.retryFailed, {})).toEqual({
      success: true,
      message: '2 failed uploads queued again',
    });
    expect([...agent.uploads.values()].map((upload) => upload.state)).toEqual(['queued', 'queued']);
  });

  it('a Trigger whose agent call throws answers success=false with the reason', async () => {
    const { node, agent } = run;
    agent.retryFailed = () => {
      throw new UploadError('STATE_DIR', 'the journal is not writable');
    };
    expect(await node.call(serviceNames.retryFailed, {})).toEqual({
      success: false,
      message: 'the journal is not writable',
    });
  });

  it('~/enqueue passes path, priority and metadata to the agent and returns the upload ids', async () => {
    const { node, agent } = run;
    const response = (await node.call(serviceNames.enqueue, {
      path: '/data/bags/run9',
      priority: 2,
      metadata_json: '{"run": 9, "site": "lab"}',
    })) as EnqueueResponse;
    expect(response).toEqual({ accepted: true, message: 'queued /data/bags/run9', upload_ids: ['id-1'] });
    expect(agent.calls.enqueue).toEqual([
      { path: '/data/bags/run9', options: { priority: 2, metadata: { run: 9, site: 'lab' } } },
    ]);

    await node.call(serviceNames.enqueue, { path: '/data/f.mcap', priority: 0, metadata_json: '' });
    expect(agent.calls.enqueue[1]).toEqual({ path: '/data/f.mcap', options: {} });
  });

  it('~/enqueue refuses bad requests with a reason and does not call the agent', async () => {
    const { node, agent } = run;
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ path: '  ', priority: 0, metadata_json: '' }, /path is empty/],
      [
        { path: '/d', priority: 11, metadata_json: '' },
        /priority 11 is out of range: use 1 \(first\) to 10 \(last\), or 0/,
      ],
      [{ path: '/d', priority: 0, metadata_json: '{run: 1}' }, /metadata_json is not valid JSON/],
      [{ path: '/d', priority: 0, metadata_json: '[1, 2]' }, /metadata_json must be a JSON object/],
    ];
    for (const [request, reason] of cases) {
      const response = (await node.call(serviceNames.enqueue, request)) as EnqueueResponse;
      expect(response.accepted).toBe(false);
      expect(response.message).toMatch(reason);
      expect(response.upload_ids).toEqual([]);
    }
    expect(agent.calls.enqueue).toEqual([]);
  });

  it("~/enqueue answers the agent's refusal or error instead of failing the call", async () => {
    const { node, agent } = run;
    agent.enqueueResult = async (path) => ({ accepted: false, message: `${path} does not exist`, uploadIds: [] });
    expect(await node.call(serviceNames.enqueue, { path: '/nope', priority: 0, metadata_json: '' })).toEqual({
      accepted: false,
      message: '/nope does not exist',
      upload_ids: [],
    });
    agent.enqueueResult = async () => {
      throw new UploadError('FILE_UNREADABLE', 'permission denied: /root/x.mcap');
    };
    expect(await node.call(serviceNames.enqueue, { path: '/root/x.mcap', priority: 0, metadata_json: '' })).toEqual({
      accepted: false,
      message: 'permission denied: /root/x.mcap',
      upload_ids: [],
    });
  });
});
