import { parseCommandLine, readConfigFile, type ExtraFlags } from '../../common/config/index.js';
import { UploadError } from '../../common/errors/upload-error.js';
import { agentOptions, type AgentConfig } from '../app/agent-options.js';
import { hasRosArgs, stripRosArgs } from '../ros/ros-args.js';
import { commandInfo, isCommand, type CommandName } from './commands.js';

export type { CommandName };

/** A parsed and validated command line, with every setting resolved. */
export interface Invocation {
  command: CommandName;
  /** For `help`: the command whose help was asked for (`upload --help`), if any. */
  helpFor: Exclude<CommandName, 'help' | 'version'> | undefined;
  /** `upload`: the files and bag folders. `watch`: empty (the folder is config.watchDir). */
  paths: string[];
  config: AgentConfig;
  /** True when a server URL was given by flag, environment or config file (else: the embedded server). */
  serverGiven: boolean;
  /** True when the state directory was given by flag, environment or config file (else: the default). */
  stateDirGiven: boolean;
  /** `--ros` true, `--no-ros` false, neither undefined (automatic). */
  ros: boolean | undefined;
  /** `status --json`. */
  json: boolean;
  /** The argv as given, ROS arguments included (for rclnodejs.init). */
  argv: string[];
  /** Warnings about the settings (an old name was used) for the program to log once it has a logger. */
  notes: string[];
  /** True when the token came as a flag (visible to local users in /proc/<pid>/cmdline: warned about). */
  tokenOnCommandLine: boolean;
}

/** The program's own flags that are not settings. */
export const extraFlags: ExtraFlags = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
  ros: { type: 'boolean' },
  json: { type: 'boolean' },
};

/** The environment variable naming a config file, like `--config`. */
export const CONFIG_ENV = 'UPLOAD_AGENT_CONFIG';

/**
 * Variables with the agent's prefix that are not settings: the config file, and the two the
 * ROS package's launcher script reads (launch/upload_agent_bringup/scripts/upload_agent.in).
 */
export const OTHER_ENV = [CONFIG_ENV, 'UPLOAD_AGENT_ROOT', 'UPLOAD_AGENT_NODE'];

/**
 * Parses argv (without node and the script): `--ros-args ... [--]` sections are dropped first
 * (they are rclnodejs's), then the command, flags and positionals. Settings are layered:
 * defaults, then the config file (`--config` or UPLOAD_AGENT_CONFIG; an `agent:` section is
 * used when present), then UPLOAD_AGENT_* variables, then flags. A flag that does not apply to
 * the command is refused. Every problem is an UploadError with one clear line.
 */
export function parseInvocation(argv: string[], env: NodeJS.ProcessEnv = process.env): Invocation {
  const own = stripRosArgs(argv);
  const parsed = parseCommandLine(agentOptions, own, extraFlags);
  const { extras, positionals } = parsed;
  const notes: string[] = [];
  const ros = typeof extras.ros === 'boolean' ? extras.ros : undefined;
  const configFile = typeof extras.config === 'string' ? extras.config : env[CONFIG_ENV] || undefined;
  const fromFile = configFile ? readConfigFile(agentOptions, configFile, 'agent', notes) : {};
  const fromEnv = agentOptions.fromEnv(env, { otherNames: OTHER_ENV, notes });
  const config = agentOptions.resolve(fromFile, fromEnv, parsed.values);
  const base = {
    config,
    serverGiven: config.serverUrl !== undefined,
    stateDirGiven: [fromFile, fromEnv, parsed.values].some((layer) => layer.stateDir !== undefined),
    ros,
    json: extras.json === true,
    argv,
    notes,
    helpFor: undefined,
    tokenOnCommandLine: parsed.values.token !== undefined,
  };
  const [name, ...rest] = positionals;
  if (name !== undefined && !isCommand(name) && name !== 'help' && name !== 'version') {
    throw new UploadError('USAGE', `Unknown command "${name}": use ${Object.keys(commandInfo).join(', ')} or --help`);
  }
  if (extras.help || name === 'help') {
    const about = name === 'help' ? rest[0] : name;
    return {
      ...base,
      command: 'help',
      paths: [],
      helpFor: about !== undefined && isCommand(about) ? about : undefined,
    };
  }
  if (extras.version || name === 'version') return { ...base, command: 'version', paths: [] };
  if (name === undefined) {
    // `ros2 run` may start the node without a command: watch the configured folder (which may
    // also come as the ROS parameter watch_dir).
    if (config.watchDir || hasRosArgs(argv)) return { ...base, command: 'watch', paths: [] };
    throw new UploadError(
      'USAGE',
      `No command given: use ${Object.keys(commandInfo).join(', ')} (ros2-upload-agent <command> --help)`,
    );
  }
  checkApplies(name, parsed.values, extras);
  switch (name) {
    case 'watch': {
      if (rest.length > 1)
        throw new UploadError('USAGE', `watch takes one folder, got ${rest.length}: ${rest.join(' ')}`);
      const dir = rest[0] ?? config.watchDir;
      if (!dir && !hasRosArgs(argv))
        throw new UploadError('USAGE', 'watch needs a folder: ros2-upload-agent watch <dir> (or set watchDir)');
      if (dir) config.watchDir = agentOptions.parseValue('watchDir', dir, 'the command line');
      return { ...base, command: name, paths: [] };
    }
    case 'upload':
      if (rest.length === 0)
        throw new UploadError(
          'USAGE',
          'upload needs at least one file or bag folder: ros2-upload-agent upload <path>...',
        );
      return { ...base, command: name, paths: rest };
    default:
      if (rest.length > 0) throw new UploadError('USAGE', `${name} takes no arguments, got: ${rest.join(' ')}`);
      return { ...base, command: name, paths: [] };
  }
}

/** Refuses a flag the command does not use (`upload --after-upload delete` would do nothing: say so). */
function checkApplies(
  command: keyof typeof commandInfo,
  values: Partial<AgentConfig>,
  extras: Record<string, unknown>,
): void {
  const info = commandInfo[command];
  const allowed = new Set<string>(info.keys);
  for (const key of Object.keys(values)) {
    if (allowed.has(key)) continue;
    const users = Object.entries(commandInfo)
      .filter(([, other]) => (other.keys as readonly string[]).includes(key))
      .map(([other]) => other);
    throw new UploadError(
      'USAGE',
      `${agentOptions.names(key as keyof AgentConfig & string).flag} does not apply to ${command} ` +
        `(it is a setting of ${users.join(', ')}); see ros2-upload-agent ${command} --help`,
    );
  }
  for (const flag of ['ros', 'json']) {
    // `--no-ros` holds for every command (only `watch` may use ROS), so scripts may pass it to any.
    if (flag === 'ros' && extras.ros === false) continue;
    if (extras[flag] !== undefined && !info.flags.includes(flag))
      throw new UploadError('USAGE', `--${flag} does not apply to ${command}; see ros2-upload-agent ${command} --help`);
  }
}
