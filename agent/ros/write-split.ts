import type { Logger } from 'pino';
import type { AgentController } from '../app/agent-controller.js';
import { rosInterfaces } from './interface-names.js';
import type { WriteSplitEventMessage } from './ros-messages.js';
import type { RosNode, RosQos } from './ros-seam.js';

/**
 * rosbag2's split event topic, relative: the recorder publishes `events/write_split` in its own
 * namespace (`/events/write_split` in the root namespace), so the agent launched next to it in
 * the same namespace subscribes to the same name. Remap it with `-r events/write_split:=...`.
 */
export const WRITE_SPLIT_TOPIC = 'events/write_split';

/** The recorder publishes reliable, volatile, depth 1; a deeper queue here loses nothing in a burst. */
export const WRITE_SPLIT_QOS: RosQos = { depth: 10, reliability: 'reliable', durability: 'volatile' };

/**
 * The fast path for closed splits: each `rosbag2_interfaces/msg/WriteSplitEvent` marks its
 * `closed_file` closed at once (Humble since rosbag2 0.15.3; Jazzy adds `node_name`). The path is
 * passed as the recorder wrote it, which may be relative to the recorder's working directory; the
 * watcher matches it by bag folder and file name. The file system stays the source of truth:
 * events can be lost, and the last one (empty `opened_file`) is not reliable.
 */
export function subscribeWriteSplit(options: { node: RosNode; agent: AgentController; logger: Logger }): void {
  const { node, agent, logger } = options;
  node.createSubscription<WriteSplitEventMessage>(
    rosInterfaces.writeSplitEvent,
    WRITE_SPLIT_TOPIC,
    WRITE_SPLIT_QOS,
    (event) => {
      const closed = typeof event.closed_file === 'string' ? event.closed_file : '';
      if (!closed) return;
      logger.debug(
        { closedFile: closed, openedFile: event.opened_file, recorder: event.node_name },
        'rosbag2 closed a split',
      );
      try {
        agent.markClosed(closed);
      } catch (error) {
        logger.warn({ err: error, closedFile: closed }, 'could not mark a split closed; the watcher will find it');
      }
    },
  );
}
