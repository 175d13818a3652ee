/**
 * The one module that imports rclnodejs (an optional peer dependency that only installs where
 * ROS 2 is sourced). It implements our seam (ros-seam.ts) and nothing else; the node's logic
 * lives elsewhere and is tested through a fake of the seam.
 *
 * The normal build sees rclnodejs through types/rclnodejs-fallback.d.ts (`any`);
 * `npm run typecheck:ros` checks this file against rclnodejs 2.x's real typings.
 */
import type { ParameterDeclaration, ParameterType, RosBinding, RosNode, RosParameter, RosQos } from './ros-seam.js';

/*
 * Types are derived from rclnodejs's values, never named (`Rcl.Node`), so that this file also
 * compiles against the shorthand fallback declaration, where they are all `any`.
 */
type Rclnodejs = typeof import('rclnodejs');
type RclNode = InstanceType<Rclnodejs['Node']>;
type RclParameter = InstanceType<Rclnodejs['Parameter']>;
type RclParameterType = ConstructorParameters<Rclnodejs['Parameter']>[1];
type RclQoS = InstanceType<Rclnodejs['QoS']>;
type RclOptions = NonNullable<Parameters<RclNode['createPublisher']>[2]>;
type RclTypeClass = Parameters<RclNode['createPublisher']>[0];
type RclServiceTypeClass = Parameters<RclNode['createService']>[0];
type RclDescriptor = InstanceType<Rclnodejs['ParameterDescriptor']>;
type ReturnOf<F> = F extends (...args: never[]) => infer R ? R : unknown;
type RclDescriptorMessage = ReturnOf<RclDescriptor['toMessage']>;
type RclSetParametersResult = ReturnOf<Parameters<RclNode['addOnSetParametersCallback']>[0]>;

/**
 * Imports rclnodejs (its ESM build has only a default export) and removes its SIGINT handler at
 * once. Throws what the import throws: without ROS 2 sourced, rclnodejs tries to rebuild its
 * addon and fails, so check the environment first (ros-probe.ts does).
 */
export async function loadRclnodejs(): Promise<RosBinding> {
  const rcl: Rclnodejs = (await import('rclnodejs')).default;
  rcl.removeSignalHandlers();
  return new RclnodejsBinding(rcl);
}

class RclnodejsBinding implements RosBinding {
  readonly #rcl: Rclnodejs;

  constructor(rcl: Rclnodejs) {
    this.#rcl = rcl;
  }

  get distro(): string {
    return process.env.ROS_DISTRO ?? '';
  }

  async init(argv: string[]): Promise<void> {
    await this.#rcl.init(undefined, argv);
  }

  removeSignalHandlers(): void {
    this.#rcl.removeSignalHandlers();
  }

  createNode(name: string, namespace = ''): RosNode {
    return new RclnodejsNode(this.#rcl, new this.#rcl.Node(name, namespace));
  }

  hasInterface(type: string): boolean {
    try {
      // Loads the generated class, or generates it on demand for packages on AMENT_PREFIX_PATH.
      this.#rcl.require(type);
      return true;
    } catch {
      return false;
    }
  }

  shutdown(): void {
    if (!this.#rcl.isShutdown()) this.#rcl.shutdown();
  }

  isShutdown(): boolean {
    return this.#rcl.isShutdown();
  }
}

interface MessageRange {
  from_value: bigint | number;
  to_value: bigint | number;
  step: bigint | number;
}

/**
 * A parameter descriptor with two rclnodejs 2.2 quirks fixed, in one place:
 * - its own type and range check runs before the set-parameters callbacks and refuses with a
 *   garbled reason (`Parameter X does not  readonly`); our callback (ros-parameters.ts) checks
 *   type and range itself with a clear reason, so this descriptor's check accepts everything;
 * - `toMessage()` never includes the range (it reads a field that is never set), so
 *   `ros2 param describe` showed no constraints; this one includes it.
 */
function clearReasonDescriptor(rcl: Rclnodejs, declaration: ParameterDeclaration): RclDescriptor {
  const descriptor = new rcl.ParameterDescriptor(
    declaration.name,
    declaration.type as number as RclParameterType,
    declaration.description,
    declaration.readOnly,
  );
  descriptor.additionalConstraints = declaration.additionalConstraints;
  const baseToMessage = rcl.ParameterDescriptor.prototype.toMessage;
  // Own properties shadow the prototype's methods (a subclass cannot be typed against both the
  // real typings and the `any` fallback under noImplicitOverride).
  Object.assign(descriptor, {
    validateParameter(): void {
      // Validation is ours: see RosNode.onSetParameters.
    },
    toMessage(): RclDescriptorMessage {
      const message = baseToMessage.call(descriptor) as unknown as Record<string, unknown>;
      const range = declaration.range;
      if (range?.kind === 'integer') {
        message.integer_range = [{ from_value: range.from, to_value: range.to, step: 0n } satisfies MessageRange];
      } else if (range?.kind === 'double') {
        message.floating_point_range = [{ from_value: range.from, to_value: range.to, step: 0 } satisfies MessageRange];
      }
      return message as unknown as RclDescriptorMessage;
    },
  });
  return descriptor;
}

class RclnodejsNode implements RosNode {
  readonly #rcl: Rclnodejs;
  readonly #node: RclNode;

  constructor(rcl: Rclnodejs, node: RclNode) {
    this.#rcl = rcl;
    this.#node = node;
  }

  get name(): string {
    return this.#node.name();
  }

  get namespace(): string {
    return this.#node.namespace();
  }

  get fullyQualifiedName(): string {
    return this.#node.getFullyQualifiedName();
  }

  now(): { sec: number; nanosec: number } {
    const stamp = this.#node.now().toMsg();
    return { sec: Number(stamp.sec), nanosec: Number(stamp.nanosec) };
  }

  #qos(qos: RosQos | undefined): RclQoS | undefined {
    if (!qos) return undefined;
    const { QoS } = this.#rcl;
    return new QoS(
      QoS.HistoryPolicy.RMW_QOS_POLICY_HISTORY_KEEP_LAST,
      qos.depth,
      qos.reliability === 'reliable'
        ? QoS.ReliabilityPolicy.RMW_QOS_POLICY_RELIABILITY_RELIABLE
        : QoS.ReliabilityPolicy.RMW_QOS_POLICY_RELIABILITY_BEST_EFFORT,
      qos.durability === 'transient_local'
        ? QoS.DurabilityPolicy.RMW_QOS_POLICY_DURABILITY_TRANSIENT_LOCAL
        : QoS.DurabilityPolicy.RMW_QOS_POLICY_DURABILITY_VOLATILE,
    );
  }

  #options(qos: RosQos | undefined): RclOptions {
    const resolved = this.#qos(qos);
    return resolved ? { qos: resolved } : {};
  }

  createPublisher<M>(type: string, topic: string, qos?: RosQos): { publish(message: M): void } {
    const publisher = this.#node.createPublisher(type as RclTypeClass, topic, this.#options(qos));
    return {
      publish: (message: M) => publisher.publish(message as never),
    };
  }

  createSubscription<M>(type: string, topic: string, qos: RosQos | undefined, callback: (message: M) => void): void {
    this.#node.createSubscription(type as RclTypeClass, topic, this.#options(qos), (message: unknown) =>
      callback(message as M),
    );
  }

  createService<Request, Response>(
    type: string,
    name: string,
    handler: (request: Request) => Response | Promise<Response>,
  ): void {
    this.#node.createService(
      type as RclServiceTypeClass,
      name,
      this.#options(undefined),
      (request: unknown, response: { send(message: never): void }) => {
        void (async () => {
          try {
            response.send((await handler(request as Request)) as never);
          } catch (error) {
            // The handlers answer failures themselves; this is a bug or a malformed response.
            process.emitWarning(`ROS service ${name} could not answer: ${(error as Error).message}`);
          }
        })();
      },
    );
  }

  createTimer(periodNanoseconds: bigint, callback: () => void): { cancel(): void } {
    const timer = this.#node.createTimer(periodNanoseconds, () => callback());
    return { cancel: () => timer.cancel() };
  }

  parameterOverrides(): RosParameter[] {
    return this.#node.getParameterOverrides().map((parameter: RclParameter) => ({
      name: parameter.name,
      type: Number(parameter.type),
      value: parameter.value as unknown,
    }));
  }

  declareParameter(declaration: ParameterDeclaration): void {
    const parameter = new this.#rcl.Parameter(
      declaration.name,
      declaration.type as number as RclParameterType,
      declaration.value,
    );
    // ignoreOverride: the node resolved overrides itself (rclnodejs misses params-file keys by FQN).
    this.#node.declareParameter(parameter, clearReasonDescriptor(this.#rcl, declaration), true);
  }

  getParameter(name: string): RosParameter | undefined {
    if (!this.#node.hasParameter(name)) return undefined;
    const parameter = this.#node.getParameter(name);
    return { name: parameter.name, type: Number(parameter.type), value: parameter.value as unknown };
  }

  onPreSetParameters(callback: (parameters: RosParameter[]) => RosParameter[]): void {
    this.#node.addPreSetParametersCallback((parameters: RclParameter[]) =>
      callback(parameters.map((p) => ({ name: p.name, type: Number(p.type), value: p.value as unknown }))).map(
        (p) => new this.#rcl.Parameter(p.name, p.type as RclParameterType, p.value),
      ),
    );
  }

  onSetParameters(callback: (parameters: RosParameter[]) => { successful: boolean; reason: string }): void {
    this.#node.addOnSetParametersCallback((parameters: RclParameter[]) => {
      const result = callback(
        parameters.map((p) => ({ name: p.name, type: Number(p.type), value: p.value as unknown })),
      );
      return { successful: result.successful, reason: result.reason } as RclSetParametersResult;
    });
  }

  spin(): void {
    this.#node.spin();
  }

  destroy(): void {
    this.#node.destroy();
  }
}

/**
 * Compile-time check, under `npm run typecheck:ros`, that every code of our ParameterType is a
 * value of rclnodejs's `ParameterType` const enum (which cannot be used as a value here, TS2748).
 * Against the fallback declaration both sides are `string` and it holds trivially.
 */
type Codes<T> = T extends number ? `${T}` : string;
export type ParameterTypesAreRclnodejs =
  Codes<(typeof ParameterType)[keyof typeof ParameterType]> extends Codes<RclParameterType> ? true : never;
export const parameterTypesAreRclnodejs: ParameterTypesAreRclnodejs = true;
