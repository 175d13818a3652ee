/**
 * The seam between the ROS layer and rclnodejs: the little of rclnodejs the node uses, in our
 * own terms. agent/ros/rclnodejs-binding.ts implements it with rclnodejs (the only module that
 * imports rclnodejs); tests implement it with a fake. Nothing else in agent/ros/ knows rclnodejs.
 *
 * Values follow rclnodejs 2.x, because that is what a robot sees: integer parameters and
 * `int64`/`uint64` message fields are BigInt; doubles are numbers; stamps are `{sec, nanosec}`.
 */

/**
 * rcl_interfaces ParameterType codes. rclnodejs's `ParameterType` is an ambient const enum, which
 * cannot be used under `isolatedModules` (TS2748), so these are our own constants.
 */
export const ParameterType = {
  NOT_SET: 0,
  BOOL: 1,
  INTEGER: 2,
  DOUBLE: 3,
  STRING: 4,
  BYTE_ARRAY: 5,
  BOOL_ARRAY: 6,
  INTEGER_ARRAY: 7,
  DOUBLE_ARRAY: 8,
  STRING_ARRAY: 9,
} as const;

export type ParameterTypeCode = (typeof ParameterType)[keyof typeof ParameterType];

/** A parameter as rclnodejs hands it over: INTEGER values are BigInt. */
export interface RosParameter {
  name: string;
  type: number;
  value: unknown;
}

/** What `ros2 param describe` shows, and how the parameter starts. */
export interface ParameterDeclaration {
  name: string;
  type: ParameterTypeCode;
  /** The initial value, already resolved from every source (the node applies overrides itself). */
  value: boolean | bigint | number | string | string[];
  description: string;
  additionalConstraints: string;
  readOnly: boolean;
  /** Inclusive range, shown by `ros2 param describe`. Validation is ours (see onSetParameters). */
  range?: { kind: 'integer'; from: bigint; to: bigint } | { kind: 'double'; from: number; to: number };
}

/** The answer of a set-parameters callback; a refusal's reason is what `ros2 param set` prints. */
export interface SetParametersResult {
  successful: boolean;
  reason: string;
}

/** `builtin_interfaces/msg/Time`, as `node.now().toMsg()` returns it. */
export interface RosTime {
  sec: number;
  nanosec: number;
}

/** The QoS settings the node uses (history is always keep-last). */
export interface RosQos {
  depth: number;
  reliability: 'reliable' | 'best_effort';
  durability: 'volatile' | 'transient_local';
}

export interface RosPublisher<M> {
  publish(message: M): void;
}

export interface RosTimer {
  cancel(): void;
}

/** One node. */
export interface RosNode {
  /** The node's name and namespace after remapping (`-r __node:=`, `-r __ns:=`). */
  readonly name: string;
  readonly namespace: string;
  /** `/ns/name`. */
  readonly fullyQualifiedName: string;
  /** The node clock's time, from `node.now().toMsg()`. */
  now(): RosTime;
  createPublisher<M>(type: string, topic: string, qos?: RosQos): RosPublisher<M>;
  createSubscription<M>(type: string, topic: string, qos: RosQos | undefined, callback: (message: M) => void): void;
  /** The handler's (possibly async) result is sent as the response. */
  createService<Request, Response>(
    type: string,
    name: string,
    handler: (request: Request) => Response | Promise<Response>,
  ): void;
  /** Period in nanoseconds, as BigInt (rclnodejs throws on a number). */
  createTimer(periodNanoseconds: bigint, callback: () => void): RosTimer;
  /** The overrides rclnodejs itself applies to this node: `-p`, and params-file keys `/**` and the bare node name. */
  parameterOverrides(): RosParameter[];
  /** Declares a parameter with exactly this value (rclnodejs's own override lookup is bypassed). */
  declareParameter(declaration: ParameterDeclaration): void;
  /** The current value of a declared parameter, or undefined. */
  getParameter(name: string): RosParameter | undefined;
  /** Runs before validation and may rewrite the parameters (type coercion, `2MiB` → 2097152). */
  onPreSetParameters(callback: (parameters: RosParameter[]) => RosParameter[]): void;
  /** Accepts or refuses a declaration or change; the only validation (rclnodejs's own is bypassed). */
  onSetParameters(callback: (parameters: RosParameter[]) => SetParametersResult): void;
  /** Starts the executor in the background. */
  spin(): void;
  destroy(): void;
}

/** rclnodejs as a whole, once imported. */
export interface RosBinding {
  /** The ROS distribution rclnodejs was built for (`humble`, `jazzy`, ...). */
  readonly distro: string;
  /** `rclnodejs.init(context, argv)`: argv with its `--ros-args` sections, so `-p`, `-r`, `--params-file` apply. */
  init(argv: string[]): Promise<void>;
  /** Drops rclnodejs's own SIGINT handler (it shuts ROS down but never exits, and ignores SIGTERM). */
  removeSignalHandlers(): void;
  createNode(name: string, namespace?: string): RosNode;
  /** True when rclnodejs has (or can generate) the JS for a `pkg/msg/Name` or `pkg/srv/Name` type. */
  hasInterface(type: string): boolean;
  shutdown(): void;
  isShutdown(): boolean;
}
