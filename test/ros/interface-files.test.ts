import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { AgentStatus } from '../../agent/app/agent-controller.js';
import { enqueue } from '../../agent/ros/agent-services.js';
import { diagnosticsMessage } from '../../agent/ros/diagnostics.js';
import { rosInterfaces } from '../../agent/ros/interface-names.js';
import type { EnqueueRequest, TriggerResponse, WriteSplitEventMessage } from '../../agent/ros/ros-messages.js';
import { messageJson, uploadQueueMessage, uploadStatusMessage } from '../../agent/ros/status-messages.js';
import { uploadStates, uploadStatusState } from '../../agent/ros/upload-status-state.js';
import { FakeAgent, snapshot } from './helpers/fake-agent.js';
import { checkMessage, loadMessage, loadService, parseMessage } from './helpers/ros-idl.js';

const msgs = fileURLToPath(new URL('../../msgs/upload_agent_msgs/', import.meta.url));
const stamp = { sec: 1_700_000_000, nanosec: 42 };

const snapshots = [
  snapshot('q', { state: 'queued' }),
  snapshot('w', { state: 'waiting_for_close', bytesTotal: 0 }),
  snapshot('u', {
    state: 'uploading',
    bytesSent: 5_000_000_000,
    bytesTotal: 5_368_709_120,
    rate: 1.5e6,
    etaSeconds: 245.8,
    attempt: 1,
  }),
  snapshot('r', { state: 'retrying', attempt: 3, lastError: 'socket hang up', errorCode: 'NETWORK' }),
  snapshot('s', { state: 'stalled', lastError: 'no bytes for 60s', errorCode: 'STALLED' }),
  snapshot('p', { state: 'paused', priority: 1 }),
  snapshot('c', {
    state: 'completed',
    bytesSent: 10_000_000,
    sha256: 'f'.repeat(64),
    finishedAt: '2026-01-01T00:01:00.000Z',
  }),
  snapshot('f', { state: 'failed', lastError: 'UNAUTHORIZED: token refused', priority: 10 }),
];

const status: AgentStatus = {
  online: false,
  paused: true,
  bandwidthLimit: 2 * 1024 * 1024,
  uploads: snapshots,
  bytesPending: 123_456_789,
  freeDiskBytes: 12_345_678_901,
  lowDisk: true,
  heldBack: [],
  problems: [],
};

describe('the interface files and the TypeScript side agree', () => {
  it('msgs/upload_agent_msgs holds flat msg/ and srv/ folders, all listed in CMakeLists.txt', () => {
    const messages = readdirSync(`${msgs}msg`);
    const services = readdirSync(`${msgs}srv`);
    expect(messages.sort()).toEqual(['UploadQueue.msg', 'UploadStatus.msg']);
    expect(services).toEqual(['Enqueue.srv']);
    const cmake = readFileSync(`${msgs}CMakeLists.txt`, 'utf8');
    for (const file of [...messages.map((m) => `msg/${m}`), ...services.map((s) => `srv/${s}`)])
      expect(cmake).toContain(`"${file}"`);
    for (const type of [rosInterfaces.uploadStatus, rosInterfaces.uploadQueue])
      expect(loadMessage(type).fields.length).toBeGreaterThan(0);
  });

  it('UploadStatus state constants are the engine states, in one mapping', () => {
    const definition = loadMessage(rosInterfaces.uploadStatus);
    expect(definition.constants.map((c) => [c.name, c.type, Number(c.value)])).toEqual(
      uploadStates.map((state) => [state.toUpperCase(), 'uint8', uploadStatusState[state]]),
    );
    expect(definition.fields.find((field) => field.name === 'state')?.type).toBe('uint8');
  });

  it('UploadQueue has a count per state', () => {
    const fields = loadMessage(rosInterfaces.uploadQueue).fields.map((field) => field.name);
    for (const state of uploadStates) expect(fields).toContain(`${state}_count`);
  });

  it('every UploadStatus the node builds fits UploadStatus.msg, field by field and type by type', () => {
    const definition = loadMessage(rosInterfaces.uploadStatus);
    for (const upload of snapshots) expect(checkMessage(uploadStatusMessage(upload, stamp), definition)).toEqual([]);
    const big = uploadStatusMessage(snapshot('big', { bytesSent: 5 * 1024 ** 3, bytesTotal: 5 * 1024 ** 3 }), stamp);
    expect(big.bytes_total).toBe(5_368_709_120n);
    expect(uploadStatusMessage(snapshots[7]!, stamp).error_code).toBe('UNAUTHORIZED');
  });

  it('every UploadQueue the node builds fits UploadQueue.msg (including the nested UploadStatus array)', () => {
    const message = uploadQueueMessage(status, stamp);
    expect(checkMessage(message, loadMessage(rosInterfaces.uploadQueue))).toEqual([]);
    expect(message.uploads.map((u) => u.upload_id)).toEqual(['u', 'r', 's', 'p', 'q', 'w']);
    expect(
      checkMessage(
        uploadQueueMessage({ ...status, freeDiskBytes: undefined, uploads: [] }, stamp),
        loadMessage(rosInterfaces.uploadQueue),
      ),
    ).toEqual([]);
  });

  it('/diagnostics fits diagnostic_msgs/DiagnosticArray (level a byte, given as a number)', () => {
    const message = diagnosticsMessage(status, stamp, { name: 'upload_agent: uploads', hardwareId: 'robot' });
    expect(checkMessage(message, loadMessage(rosInterfaces.diagnosticArray))).toEqual([]);
    expect(message.status[0]!.level).toBe(2);
  });

  it('the Enqueue request the node reads and the response it sends fit Enqueue.srv', async () => {
    const definition = loadService(rosInterfaces.enqueue);
    const request: EnqueueRequest = { path: '/data/run1', priority: 3, metadata_json: '{"a":1}' };
    expect(checkMessage(request, definition.request)).toEqual([]);
    const agent = new FakeAgent();
    expect(checkMessage(await enqueue(agent, request), definition.response)).toEqual([]);
    expect(checkMessage(await enqueue(agent, { ...request, priority: 42 }), definition.response)).toEqual([]);
  });

  it('Trigger responses, String JSON and the split event fit their upstream definitions', () => {
    const trigger: TriggerResponse = { success: true, message: 'paused' };
    expect(checkMessage(trigger, loadService(rosInterfaces.trigger).response)).toEqual([]);
    expect(loadService(rosInterfaces.trigger).request.fields).toEqual([]);
    expect(
      checkMessage({ data: messageJson(uploadQueueMessage(status, stamp)) }, loadMessage(rosInterfaces.string)),
    ).toEqual([]);
    const humble: WriteSplitEventMessage = { closed_file: 'a', opened_file: 'b' };
    expect(checkMessage(humble, loadMessage(rosInterfaces.writeSplitEvent))).toEqual([]);
    const jazzy: WriteSplitEventMessage = { ...humble, node_name: '/recorder' };
    expect(checkMessage(jazzy, loadMessage(`${rosInterfaces.writeSplitEvent}.jazzy`))).toEqual([]);
  });

  it('the checker itself refuses what rclnodejs refuses', () => {
    const definition = loadMessage(rosInterfaces.uploadStatus);
    const message = { ...uploadStatusMessage(snapshots[0]!, stamp), bytes_sent: 5 as unknown as bigint };
    expect(checkMessage(message, definition)).toEqual([
      'upload_agent_msgs/UploadStatus.bytes_sent: uint64 must be a BigInt (rclnodejs refuses a number), got number 5',
    ]);
    const { priority: _priority, ...missing } = uploadStatusMessage(snapshots[0]!, stamp);
    expect(checkMessage({ ...missing, extra: 1 }, definition)).toEqual([
      'upload_agent_msgs/UploadStatus.extra: not a field of upload_agent_msgs/UploadStatus',
      'upload_agent_msgs/UploadStatus.priority: missing',
    ]);
    expect(checkMessage({ ...uploadStatusMessage(snapshots[0]!, stamp), state: 256 }, definition)).toEqual([
      'upload_agent_msgs/UploadStatus.state: 256 is out of range for uint8',
    ]);
    expect(() => parseMessage('uint8 Bad-Name', 'p/Bad')).toThrow('p/Bad: cannot parse field: uint8 Bad-Name');
  });
});
