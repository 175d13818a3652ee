import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { parseRosArgs } from '../../../agent/ros/ros-args.js';
import {
  ParameterType,
  type ParameterDeclaration,
  type RosBinding,
  type RosNode,
  type RosParameter,
  type RosQos,
  type RosTime,
  type SetParametersResult,
} from '../../../agent/ros/ros-seam.js';
import { checkMessage, loadMessage, loadService } from './ros-idl.js';

/**
 * A fake of our seam (agent/ros/ros-seam.ts) that behaves as rclnodejs 2.2 does where the node
 * depends on it (the one place where a fake replaces the real thing, because ROS 2 is not
 * installed here):
 * - published messages and service responses are checked against the interface files, with
 *   rclnodejs's value rules (uint64/int64 as BigInt), and refused with a TypeError otherwise;
 * - timers need a BigInt period;
 * - parameter overrides are what rclnodejs applies: `-p`, and params-file keys `/**` and the bare
 *   node name only (FQN keys are dropped, as seen on a Humble graph);
 * - setting parameters runs pre-set callbacks, then rclnodejs's own checks (declared, read-only,
 *   value matches its type), then the set callbacks, newest first;
 * - `-r __ns:=` and `-r __node:=` rename the node.
 */

export interface PublishedTopic {
  type: string;
  qos: RosQos | undefined;
  messages: unknown[];
}

const ALL_INTERFACES = [
  'upload_agent_msgs/msg/UploadStatus',
  'upload_agent_msgs/msg/UploadQueue',
  'upload_agent_msgs/srv/Enqueue',
  'std_msgs/msg/String',
  'std_srvs/srv/Trigger',
  'diagnostic_msgs/msg/DiagnosticArray',
  'rosbag2_interfaces/msg/WriteSplitEvent',
];

export class FakeRos implements RosBinding {
  readonly distro: string;
  /** The interface types rclnodejs "generated"; remove some to test the optional-type paths. */
  readonly interfaces: Set<string>;
  readonly nodes: FakeNode[] = [];
  initArgv: string[] | undefined;
  initCount = 0;
  shutdownCount = 0;
  removeSignalHandlersCount = 0;
  #down = false;

  constructor(options: { distro?: 'humble' | 'jazzy'; missing?: string[] } = {}) {
    this.distro = options.distro ?? 'humble';
    this.interfaces = new Set(
      ALL_INTERFACES.filter((type) => !(options.missing ?? []).some((missing) => type.startsWith(missing))),
    );
  }

  async init(argv: string[]): Promise<void> {
    if (this.initCount > 0) throw new Error('The context has already been initialized.');
    if (!argv.every((arg) => typeof arg === 'string'))
      throw new TypeError('argv elements must be strings (and not null).');
    const ros = parseRosArgs(argv);
    for (const file of ros.paramsFiles) readFileSync(file); // rcl fails init on a missing params file
    this.initCount += 1;
    this.initArgv = [...argv];
  }

  removeSignalHandlers(): void {
    this.removeSignalHandlersCount += 1;
  }

  createNode(name: string, namespace = ''): RosNode {
    if (this.initCount === 0 || this.#down) throw new Error('context is not initialized');
    const remaps = parseRosArgs(this.initArgv ?? []).remaps;
    const finalName = remaps.filter((remap) => remap.from === '__node').at(-1)?.to ?? name;
    const finalNamespace = remaps.filter((remap) => remap.from === '__ns').at(-1)?.to ?? (namespace || '/');
    const node = new FakeNode(this, finalName, finalNamespace, rclnodejsOverrides(this.initArgv ?? [], finalName));
    this.nodes.push(node);
    return node;
  }

  hasInterface(type: string): boolean {
    return this.interfaces.has(type);
  }

  shutdown(): void {
    this.shutdownCount += 1;
    this.#down = true;
  }

  isShutdown(): boolean {
    return this.#down;
  }

  get node(): FakeNode {
    const node = this.nodes[0];
    if (!node) throw new Error('no node was created');
    return node;
  }
}

/** What rclnodejs 2.2 applies: params-file keys `/**` then the bare node name, then `-p` in order. */
function rclnodejsOverrides(argv: string[], nodeName: string): Map<string, RosParameter> {
  const overrides = new Map<string, RosParameter>();
  const ros = parseRosArgs(argv);
  const fromFiles = ros.paramsFiles.map(
    (file) =>
      parseYaml(readFileSync(file, 'utf8'), { intAsBigInt: true }) as Record<
        string,
        { ros__parameters?: Record<string, unknown> }
      >,
  );
  for (const key of ['/**', nodeName]) {
    for (const data of fromFiles) {
      for (const [name, value] of Object.entries(data?.[key]?.ros__parameters ?? {}))
        overrides.set(name, typed(name, value));
    }
  }
  for (const param of ros.params)
    overrides.set(param.name, typed(param.name, parseYaml(param.value, { intAsBigInt: true })));
  return overrides;
}

function typed(name: string, value: unknown): RosParameter {
  if (typeof value === 'bigint') return { name, type: ParameterType.INTEGER, value };
  if (typeof value === 'number') return { name, type: ParameterType.DOUBLE, value };
  if (typeof value === 'boolean') return { name, type: ParameterType.BOOL, value };
  if (Array.isArray(value)) return { name, type: ParameterType.STRING_ARRAY, value: value.map(String) };
  return { name, type: ParameterType.STRING, value: String(value) };
}

/** rclnodejs's Parameter.validate(): the value must match the type. */
function validValue(parameter: RosParameter): boolean {
  switch (parameter.type) {
    case ParameterType.BOOL:
      return typeof parameter.value === 'boolean';
    case ParameterType.INTEGER:
      return typeof parameter.value === 'bigint';
    case ParameterType.DOUBLE:
      return typeof parameter.value === 'number';
    case ParameterType.STRING:
      return typeof parameter.value === 'string';
    case ParameterType.STRING_ARRAY:
      return Array.isArray(parameter.value) && parameter.value.every((item) => typeof item === 'string');
    default:
      return true;
  }
}

export class FakeNode implements RosNode {
  readonly name: string;
  readonly namespace: string;
  readonly publishers = new Map<string, PublishedTopic>();
  readonly subscriptions = new Map<
    string,
    { type: string; qos: RosQos | undefined; callback: (message: unknown) => void }
  >();
  readonly services = new Map<string, { type: string; handler: (request: unknown) => unknown }>();
  readonly timers: { period: bigint; callback: () => void; cancelled: boolean }[] = [];
  readonly declarations = new Map<string, ParameterDeclaration>();
  readonly #values = new Map<string, RosParameter>();
  readonly #overrides: Map<string, RosParameter>;
  readonly #pre: ((parameters: RosParameter[]) => RosParameter[])[] = [];
  readonly #callbacks: ((parameters: RosParameter[]) => SetParametersResult)[] = [];
  readonly #ros: FakeRos;
  spinning = false;
  destroyCount = 0;
  #clock = 1_700_000_000;

  constructor(ros: FakeRos, name: string, namespace: string, overrides: Map<string, RosParameter>) {
    this.#ros = ros;
    this.name = name;
    this.namespace = namespace;
    this.#overrides = overrides;
  }

  get fullyQualifiedName(): string {
    return this.namespace === '/' ? `/${this.name}` : `${this.namespace}/${this.name}`;
  }

  now(): RosTime {
    this.#clock += 1;
    return { sec: this.#clock, nanosec: 500 };
  }

  createPublisher<M>(type: string, topic: string, qos?: RosQos): { publish(message: M): void } {
    if (!this.#ros.hasInterface(type)) throw new Error(`The message required does not exist: ${type}`);
    const definition = loadMessage(type);
    const record: PublishedTopic = { type, qos, messages: [] };
    this.publishers.set(topic, record);
    return {
      publish: (message: M) => {
        if (this.destroyCount > 0) throw new Error('publisher of a destroyed node');
        const problems = checkMessage(message, definition);
        if (problems.length > 0) throw new TypeError(`invalid ${type} message: ${problems.join('; ')}`);
        record.messages.push(structuredClone(message));
      },
    };
  }

  createSubscription<M>(type: string, topic: string, qos: RosQos | undefined, callback: (message: M) => void): void {
    if (!this.#ros.hasInterface(type)) throw new Error(`The message required does not exist: ${type}`);
    this.subscriptions.set(topic, { type, qos, callback: callback as (message: unknown) => void });
  }

  createService<Request, Response>(
    type: string,
    name: string,
    handler: (request: Request) => Response | Promise<Response>,
  ): void {
    if (!this.#ros.hasInterface(type)) throw new Error(`The message required does not exist: ${type}`);
    this.services.set(name, { type, handler: handler as (request: unknown) => unknown });
  }

  createTimer(periodNanoseconds: bigint, callback: () => void): { cancel(): void } {
    if (typeof periodNanoseconds !== 'bigint') throw new TypeError('period must be a bigint');
    const timer = { period: periodNanoseconds, callback, cancelled: false };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  parameterOverrides(): RosParameter[] {
    return [...this.#overrides.values()];
  }

  declareParameter(declaration: ParameterDeclaration): void {
    if (this.declarations.has(declaration.name)) throw new Error(`Parameter(${declaration.name}) already declared.`);
    const parameter: RosParameter = { name: declaration.name, type: declaration.type, value: declaration.value };
    if (!validValue(parameter)) throw new TypeError(`Invalid ${declaration.name}`);
    this.declarations.set(declaration.name, declaration);
    const result = this.#setAtomically([parameter]);
    if (!result.successful) {
      this.declarations.delete(declaration.name);
      throw new Error(result.reason);
    }
  }

  getParameter(name: string): RosParameter | undefined {
    return this.#values.get(name);
  }

  onPreSetParameters(callback: (parameters: RosParameter[]) => RosParameter[]): void {
    this.#pre.push(callback);
  }

  onSetParameters(callback: (parameters: RosParameter[]) => SetParametersResult): void {
    this.#callbacks.unshift(callback);
  }

  spin(): void {
    if (this.spinning) throw new Error('The node is already spinning.');
    this.spinning = true;
  }

  destroy(): void {
    this.destroyCount += 1;
    this.spinning = false;
  }

  // ---- test driver ----

  /** As `ros2 param set`: returns what the caller would print. */
  setParameters(parameters: RosParameter[]): SetParametersResult {
    for (const parameter of parameters) {
      if (!this.declarations.has(parameter.name))
        return { successful: false, reason: `Parameter ${parameter.name} has not been declared` };
      if (this.declarations.get(parameter.name)!.readOnly)
        return { successful: false, reason: `Parameter ${parameter.name} is readonly` };
    }
    return this.#setAtomically(parameters);
  }

  /** As a call from `ros2 service call`: the response, checked against the .srv. */
  async call(name: string, request: unknown): Promise<unknown> {
    const service = this.services.get(name);
    if (!service) throw new Error(`no service ${name}`);
    const definition = loadService(service.type);
    const requestProblems = checkMessage(request, definition.request);
    if (requestProblems.length > 0) throw new TypeError(`invalid request: ${requestProblems.join('; ')}`);
    const response = await service.handler(request);
    const problems = checkMessage(response, definition.response);
    if (problems.length > 0) throw new TypeError(`invalid ${service.type} response: ${problems.join('; ')}`);
    return response;
  }

  /** Delivers a message to a subscription, as the executor would. */
  deliver(topic: string, message: unknown): void {
    const subscription = this.subscriptions.get(topic);
    if (!subscription) throw new Error(`no subscription on ${topic}`);
    subscription.callback(message);
  }

  /** Fires every active timer once. */
  tick(): void {
    for (const timer of this.timers) if (!timer.cancelled) timer.callback();
  }

  messages<M = unknown>(topic: string): M[] {
    return (this.publishers.get(topic)?.messages ?? []) as M[];
  }

  #setAtomically(parameters: RosParameter[]): SetParametersResult {
    let list = parameters;
    for (const pre of this.#pre) {
      list = pre(list);
      if (list.length === 0)
        return { successful: false, reason: 'parameter list is empty after pre-set callback; set rejected' };
    }
    for (const parameter of list)
      if (!validValue(parameter)) return { successful: false, reason: `Invalid ${parameter.name}` };
    for (const callback of this.#callbacks) {
      const result = callback(list);
      if (!result.successful) return result;
    }
    for (const parameter of list) this.#values.set(parameter.name, parameter);
    return { successful: true, reason: '' };
  }
}
