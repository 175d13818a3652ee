import type { Logger } from 'pino';
import { UploadError } from '../../common/errors/upload-error.js';
import type { AgentController } from '../app/agent-controller.js';
import { isSpecificKey, readParamsFileOverrides } from './params-file-overrides.js';
import { parseRosArgs } from './ros-args.js';
import { rosParameterFromValue, type ParameterSchema } from './ros-parameters.js';
import type { RosNode, RosParameter, SetParametersResult } from './ros-seam.js';

/** Settings given through ROS, by option key (camelCase), validated. */
export type RosSettings = Record<string, unknown>;

/**
 * The settings given to this node through ROS before it starts: what rclnodejs applied itself
 * (`-p name:=value`, params-file keys `/**` and the bare node name), then the params-file entries
 * rclnodejs ignores (keyed by the node's fully qualified name, or by a pattern such as
 * `/**\/upload_agent`, in file order). The more specific entries win. A bad value throws an
 * UploadError CONFIG_INVALID naming the parameter, the rule and where it came from.
 */
export function resolveRosSettings(
  node: RosNode,
  argv: readonly string[],
  schema: ParameterSchema,
  logger: Logger,
): RosSettings {
  const sources: { parameter: RosParameter; source: string; specific: boolean }[] = node
    .parameterOverrides()
    .map((parameter) => ({
      parameter,
      source: 'the ROS arguments (-p, or a params file keyed /** or by the node name)',
      specific: false,
    }));
  const { entries, problems } = readParamsFileOverrides(parseRosArgs(argv).paramsFiles, node);
  for (const problem of problems) logger.warn(problem);
  for (const entry of entries) {
    sources.push({
      parameter: rosParameterFromValue(entry.name, entry.value),
      source: `params file ${entry.file} (key ${entry.key})`,
      specific: isSpecificKey(entry.key),
    });
  }

  const settings: RosSettings = {};
  for (const { parameter, source, specific } of sources) {
    const checked = schema.check(schema.coerce(parameter));
    if (!checked.ok)
      throw new UploadError('CONFIG_INVALID', `Invalid ROS parameter from ${source}: ${checked.reason}`, {
        details: { parameter: parameter.name, source },
      });
    if (!checked.option) {
      if (specific)
        logger.warn(
          { parameter: parameter.name, source },
          `${parameter.name} in ${source} is not a parameter of ${node.fullyQualifiedName}; ignored`,
        );
      continue;
    }
    settings[checked.option.key] = checked.value;
  }
  return settings;
}

export interface ParameterBridgeOptions {
  node: RosNode;
  schema: ParameterSchema;
  agent: AgentController;
  /** The settings in force, by option key; the declared values. */
  values: Record<string, unknown>;
  logger: Logger;
  /** Called after a change was applied to the agent (the node republishes its queue). */
  onApplied?: () => void;
}

/**
 * Declares every option as a parameter and applies `ros2 param set` to the running agent:
 * types are coerced where unambiguous, values validated by the shared schema with a clear reason,
 * then applied with AgentController.setOption at once. A set of several parameters is atomic:
 * if the agent refuses one, the ones already applied are put back and the whole set is refused.
 */
export class ParameterBridge {
  readonly #node: RosNode;
  readonly #schema: ParameterSchema;
  readonly #agent: AgentController;
  readonly #values: Record<string, unknown>;
  readonly #logger: Logger;
  readonly #onApplied: () => void;
  #declaring = false;

  constructor(options: ParameterBridgeOptions) {
    this.#node = options.node;
    this.#schema = options.schema;
    this.#agent = options.agent;
    this.#values = { ...options.values };
    this.#logger = options.logger;
    this.#onApplied = options.onApplied ?? (() => {});
  }

  /** Installs the callbacks, then declares every parameter with the value in force. */
  start(): void {
    this.#node.onPreSetParameters((parameters) => parameters.map((parameter) => this.#schema.coerce(parameter)));
    this.#node.onSetParameters((parameters) => this.#onSet(parameters));
    this.#declaring = true;
    try {
      for (const option of this.#schema.options) {
        this.#node.declareParameter(this.#schema.declaration(option, this.#values[option.key]));
      }
    } finally {
      this.#declaring = false;
    }
  }

  #onSet(parameters: RosParameter[]): SetParametersResult {
    // Declarations carry the values already in force (validated when they were resolved).
    if (this.#declaring) return { successful: true, reason: '' };
    const changes: { key: string; name: string; value: unknown }[] = [];
    for (const parameter of parameters) {
      const checked = this.#schema.check(parameter);
      if (!checked.ok) return this.#refuse(checked.reason);
      if (!checked.option) continue;
      if (checked.option.spec.secret)
        return this.#refuse(`${checked.option.name} is a secret and cannot be changed at run time`);
      changes.push({ key: checked.option.key, name: checked.option.name, value: checked.value });
    }

    const applied: { key: string; previous: unknown }[] = [];
    for (const change of changes) {
      const previous = this.#values[change.key];
      if (sameValue(previous, change.value)) continue;
      try {
        this.#agent.setOption(change.key, change.value);
      } catch (error) {
        for (const undo of applied.reverse()) {
          try {
            this.#agent.setOption(undo.key, undo.previous);
            this.#values[undo.key] = undo.previous;
          } catch (undoError) {
            this.#logger.error(
              { err: undoError, option: undo.key },
              `could not restore ${undo.key} after a refused parameter change`,
            );
          }
        }
        return this.#refuse(`${change.name}: ${(error as Error).message}`);
      }
      applied.push({ key: change.key, previous });
      this.#values[change.key] = change.value;
    }
    if (applied.length > 0) {
      for (const change of changes) this.#logger.info({ parameter: change.name }, `parameter ${change.name} set`);
      this.#onApplied();
    }
    return { successful: true, reason: '' };
  }

  #refuse(reason: string): SetParametersResult {
    this.#logger.warn({ reason }, 'parameter change refused');
    return { successful: false, reason };
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, index) => item === b[index]);
  return a === b;
}
