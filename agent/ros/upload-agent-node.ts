import os from 'node:os';
import type { Logger } from 'pino';
import type { AgentController } from '../app/agent-controller.js';
import type { UploadSnapshot, UploadState } from '../engine/upload-events.js';
import { diagnosticsMessage } from './diagnostics.js';
import { registerServices } from './agent-services.js';
import { interfacePackage, missingInterfaceWarning, rosInterfaces } from './interface-names.js';
import { KeyedThrottle } from './keyed-throttle.js';
import { ParameterBridge } from './parameter-bridge.js';
import type { DiagnosticArrayMessage, StringMessage, UploadQueueMessage, UploadStatusMessage } from './ros-messages.js';
import type { ParameterSchema } from './ros-parameters.js';
import type { RosBinding, RosNode, RosPublisher, RosQos, RosTimer } from './ros-seam.js';
import { messageJson, uploadQueueMessage, uploadStatusMessage } from './status-messages.js';
import { isTerminalState } from './upload-status-state.js';
import { subscribeWriteSplit } from './write-split.js';

/** Topic and timing contract of the node (see docs/ros.md). */
export const rosNames = {
  node: 'upload_agent',
  /** Relative, so `__ns` and remaps apply. */
  status: 'upload_status',
  queue: '~/queue',
  diagnostics: '/diagnostics',
} as const;

/** Progress on `upload_status`: at most 2 Hz per file (state changes go out at once). */
export const STATUS_MIN_INTERVAL_MS = 500;
/** `~/queue` on change: at most 5 Hz; it is also published every second. */
export const QUEUE_MIN_INTERVAL_MS = 200;
/** `~/queue` and `/diagnostics` period, in nanoseconds (rclnodejs timers take BigInt). */
export const PERIOD_NANOSECONDS = 1_000_000_000n;

/** `~/queue`: a late subscriber gets the latest state at once. */
export const QUEUE_QOS: RosQos = { depth: 1, reliability: 'reliable', durability: 'transient_local' };

export interface UploadAgentNodeOptions {
  binding: RosBinding;
  node: RosNode;
  agent: AgentController;
  schema: ParameterSchema;
  /** The settings in force, by option key (the declared parameter values). */
  values: Record<string, unknown>;
  logger: Logger;
}

/** Which optional features run (each depends on an interface type rclnodejs may not know). */
export interface NodeFeatures {
  /** `upload_agent_msgs` types, or the std_msgs/String JSON fallback, or nothing. */
  statusFormat: 'upload_agent_msgs' | 'std_msgs/String' | 'off';
  triggerServices: boolean;
  enqueueService: boolean;
  diagnostics: boolean;
  writeSplit: boolean;
}

/**
 * The ROS face of a running agent: publishes `upload_status`, `~/queue` and `/diagnostics`,
 * serves `~/pause`, `~/resume`, `~/retry_failed` and `~/enqueue`, mirrors every setting as a
 * parameter, and feeds rosbag2's split events to the watcher. It talks to the agent only through
 * AgentController and to ROS only through the seam.
 */
export class UploadAgentNode {
  readonly #binding: RosBinding;
  readonly #node: RosNode;
  readonly #agent: AgentController;
  readonly #logger: Logger;
  readonly #parameters: ParameterBridge;
  readonly #statusThrottle = new KeyedThrottle<string>(STATUS_MIN_INTERVAL_MS);
  readonly #queueThrottle = new KeyedThrottle<'queue'>(QUEUE_MIN_INTERVAL_MS);
  readonly #lastState = new Map<string, UploadState>();
  readonly #failedTopics = new Set<string>();
  readonly #timers: RosTimer[] = [];
  #statusPublisher: RosPublisher<UploadStatusMessage | StringMessage> | undefined;
  #queuePublisher: RosPublisher<UploadQueueMessage | StringMessage> | undefined;
  #diagnosticsPublisher: RosPublisher<DiagnosticArrayMessage> | undefined;
  #unsubscribe: (() => void) | undefined;
  #features: NodeFeatures | undefined;
  #running = false;

  constructor(options: UploadAgentNodeOptions) {
    this.#binding = options.binding;
    this.#node = options.node;
    this.#agent = options.agent;
    this.#logger = options.logger;
    this.#parameters = new ParameterBridge({
      node: options.node,
      schema: options.schema,
      agent: options.agent,
      values: options.values,
      logger: options.logger,
      onApplied: () => this.requestQueue(),
    });
  }

  get features(): NodeFeatures {
    if (!this.#features) throw new Error('UploadAgentNode.start() has not run');
    return this.#features;
  }

  /** Wires everything and starts spinning. */
  start(): void {
    const features = this.#detectFeatures();
    this.#features = features;
    this.#parameters.start();

    if (features.statusFormat !== 'off') {
      const custom = features.statusFormat === 'upload_agent_msgs';
      this.#statusPublisher = this.#node.createPublisher(
        custom ? rosInterfaces.uploadStatus : rosInterfaces.string,
        rosNames.status,
      );
      this.#queuePublisher = this.#node.createPublisher(
        custom ? rosInterfaces.uploadQueue : rosInterfaces.string,
        rosNames.queue,
        QUEUE_QOS,
      );
    }
    if (features.diagnostics) {
      this.#diagnosticsPublisher = this.#node.createPublisher<DiagnosticArrayMessage>(
        rosInterfaces.diagnosticArray,
        rosNames.diagnostics,
      );
    }
    registerServices({
      node: this.#node,
      agent: this.#agent,
      logger: this.#logger,
      trigger: features.triggerServices,
      enqueue: features.enqueueService,
      onChange: () => this.requestQueue(),
    });
    if (features.writeSplit) subscribeWriteSplit({ node: this.#node, agent: this.#agent, logger: this.#logger });

    this.#unsubscribe = this.#agent.onChange((upload) => this.#onChange(upload));
    this.#timers.push(
      this.#node.createTimer(PERIOD_NANOSECONDS, () => {
        this.#publishQueue();
        this.#publishDiagnostics();
      }),
    );
    this.#running = true;
    this.#publishQueue();
    this.#publishDiagnostics();
    this.#node.spin();
    this.#logger.info(
      { node: this.#node.fullyQualifiedName, distro: this.#binding.distro, ...features },
      `ROS 2 node ${this.#node.fullyQualifiedName} is up`,
    );
  }

  /** Stops listening to the agent and cancels timers and pending publishes (the node stays). Idempotent. */
  stop(): void {
    this.#running = false;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    for (const timer of this.#timers.splice(0)) timer.cancel();
    this.#statusThrottle.clear();
    this.#queueThrottle.clear();
  }

  /** Publishes `~/queue` soon (throttled); used after any change. */
  requestQueue(): void {
    if (this.#running) this.#queueThrottle.run('queue', () => this.#publishQueue());
  }

  #onChange(upload: UploadSnapshot | undefined): void {
    if (!this.#running) return;
    if (!upload) {
      this.requestQueue();
      return;
    }
    const stateChanged = this.#lastState.get(upload.id) !== upload.state;
    this.#statusThrottle.run(upload.id, () => this.#publishStatus(upload), stateChanged);
    if (!stateChanged) return;
    this.requestQueue();
    if (isTerminalState(upload.state)) {
      this.#statusThrottle.forget(upload.id);
      this.#lastState.delete(upload.id);
    } else {
      this.#lastState.set(upload.id, upload.state);
    }
  }

  #publishStatus(upload: UploadSnapshot): void {
    const publisher = this.#statusPublisher;
    if (!publisher || !this.#running) return;
    this.#publish(rosNames.status, () => {
      const message = uploadStatusMessage(upload, this.#node.now());
      publisher.publish(this.#features?.statusFormat === 'std_msgs/String' ? { data: messageJson(message) } : message);
    });
  }

  #publishQueue(): void {
    const publisher = this.#queuePublisher;
    if (!publisher || !this.#running) return;
    this.#publish(rosNames.queue, () => {
      const message = uploadQueueMessage(this.#agent.status(), this.#node.now());
      publisher.publish(this.#features?.statusFormat === 'std_msgs/String' ? { data: messageJson(message) } : message);
    });
  }

  #publishDiagnostics(): void {
    const publisher = this.#diagnosticsPublisher;
    if (!publisher || !this.#running) return;
    const identity = {
      name: `${this.#node.fullyQualifiedName.replace(/^\//, '')}: uploads`,
      hardwareId: os.hostname(),
    };
    this.#publish(rosNames.diagnostics, () =>
      publisher.publish(diagnosticsMessage(this.#agent.status(), this.#node.now(), identity)),
    );
  }

  /** A failing publish (or status read) is logged once per topic and never stops the agent. */
  #publish(topic: string, publish: () => void): void {
    try {
      publish();
      this.#failedTopics.delete(topic);
    } catch (error) {
      if (this.#failedTopics.has(topic)) return;
      this.#failedTopics.add(topic);
      this.#logger.error({ err: error, topic }, `publishing on ${topic} failed`);
    }
  }

  #detectFeatures(): NodeFeatures {
    const missing = new Map<string, string[]>();
    const has = (type: string, whatIsOff: string): boolean => {
      if (this.#binding.hasInterface(type)) return true;
      const pkg = interfacePackage(type);
      missing.set(pkg, [...(missing.get(pkg) ?? []), whatIsOff]);
      return false;
    };
    const fallback = 'upload_status and ~/queue are published as std_msgs/msg/String JSON';
    const custom = [has(rosInterfaces.uploadStatus, fallback), has(rosInterfaces.uploadQueue, fallback)].every(Boolean);
    const statusFormat: NodeFeatures['statusFormat'] = custom
      ? 'upload_agent_msgs'
      : has(rosInterfaces.string, 'upload_status and ~/queue are off')
        ? 'std_msgs/String'
        : 'off';
    const features: NodeFeatures = {
      statusFormat,
      enqueueService: has(rosInterfaces.enqueue, 'the ~/enqueue service is off'),
      triggerServices: has(rosInterfaces.trigger, 'the ~/pause, ~/resume and ~/retry_failed services are off'),
      diagnostics: has(rosInterfaces.diagnosticArray, '/diagnostics is off'),
      writeSplit: has(
        rosInterfaces.writeSplitEvent,
        'the events/write_split fast path is off (the watcher still finds closed splits)',
      ),
    };
    for (const [pkg, whatIsOff] of missing)
      this.#logger.warn({ package: pkg }, missingInterfaceWarning(pkg, [...new Set(whatIsOff)]));
    return features;
  }
}
