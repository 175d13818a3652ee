import type { Logger } from 'pino';
import type { AgentController } from '../app/agent-controller.js';
import { rosInterfaces } from './interface-names.js';
import type { EnqueueRequest, EnqueueResponse, TriggerResponse } from './ros-messages.js';
import type { RosNode } from './ros-seam.js';

/** Private service names (under the node's name, so namespaces apply). */
export const serviceNames = {
  pause: '~/pause',
  resume: '~/resume',
  retryFailed: '~/retry_failed',
  enqueue: '~/enqueue',
} as const;

/** Enqueue.srv priority: 0 means the agent's default; otherwise 1 (first) to 10 (last). */
export const PRIORITY_RANGE = { min: 1, max: 10 } as const;

export interface AgentServicesOptions {
  node: RosNode;
  agent: AgentController;
  logger: Logger;
  /** std_srvs/srv/Trigger is known: serve ~/pause, ~/resume, ~/retry_failed. */
  trigger: boolean;
  /** upload_agent_msgs/srv/Enqueue is known: serve ~/enqueue. */
  enqueue: boolean;
  /** Called after a service changed something (the node republishes its queue). */
  onChange: () => void;
}

/** Creates the node's services. A failing request is answered with the reason, never thrown. */
export function registerServices(options: AgentServicesOptions): void {
  const { node, agent, logger, onChange } = options;
  if (options.trigger) {
    const trigger = (name: string, run: () => string): void => {
      node.createService<unknown, TriggerResponse>(rosInterfaces.trigger, name, () => {
        try {
          const message = run();
          logger.info({ service: name }, message);
          onChange();
          return { success: true, message };
        } catch (error) {
          logger.warn({ err: error, service: name }, `${name} failed`);
          return { success: false, message: (error as Error).message };
        }
      });
    };
    trigger(serviceNames.pause, () => {
      const already = agent.status().paused;
      agent.pause();
      return already ? 'already paused' : 'paused: no new chunks start; chunks in flight finish';
    });
    trigger(serviceNames.resume, () => {
      const wasPaused = agent.status().paused;
      agent.resume();
      return wasPaused ? 'resumed' : 'was not paused';
    });
    trigger(serviceNames.retryFailed, () => {
      const count = agent.retryFailed();
      return count === 0 ? 'no failed uploads' : `${count} failed upload${count === 1 ? '' : 's'} queued again`;
    });
  }
  if (options.enqueue) {
    node.createService<EnqueueRequest, EnqueueResponse>(
      rosInterfaces.enqueue,
      serviceNames.enqueue,
      async (request) => {
        const response = await enqueue(agent, request);
        logger.info(
          { service: serviceNames.enqueue, path: request.path, accepted: response.accepted },
          response.message,
        );
        if (response.accepted) onChange();
        return response;
      },
    );
  }
}

/** Validates an Enqueue request and passes it to the agent. */
export async function enqueue(agent: AgentController, request: EnqueueRequest): Promise<EnqueueResponse> {
  const refuse = (message: string): EnqueueResponse => ({ accepted: false, message, upload_ids: [] });
  const path = typeof request.path === 'string' ? request.path.trim() : '';
  if (!path) return refuse('path is empty: give a file or a bag folder');
  const priority = Number(request.priority ?? 0);
  if (
    priority !== 0 &&
    (!Number.isInteger(priority) || priority < PRIORITY_RANGE.min || priority > PRIORITY_RANGE.max)
  ) {
    return refuse(
      `priority ${priority} is out of range: use ${PRIORITY_RANGE.min} ` +
        `(first) to ${PRIORITY_RANGE.max} (last), or 0 for the default`,
    );
  }
  let metadata: Record<string, unknown> | undefined;
  const json = typeof request.metadata_json === 'string' ? request.metadata_json.trim() : '';
  if (json) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch (error) {
      return refuse(`metadata_json is not valid JSON: ${(error as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      return refuse('metadata_json must be a JSON object, such as {"run": 7}');
    metadata = parsed as Record<string, unknown>;
  }
  try {
    const result = await agent.enqueue(path, {
      ...(priority !== 0 ? { priority } : {}),
      ...(metadata ? { metadata } : {}),
    });
    return { accepted: result.accepted, message: result.message, upload_ids: [...result.uploadIds] };
  } catch (error) {
    return refuse((error as Error).message);
  }
}
