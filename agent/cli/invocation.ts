import { parseCommandLine, readConfigFile, type ExtraFlags } from '../../common/config/index.js';
import { UploadError } from '../../common/errors/upload-error.js';
import { agentOptions, type AgentConfig } from '../app/agent-options.js';
import { hasRosArgs, stripRosArgs } from '../ros/ros-args.js';

export type CommandName = 'watch' | 'upload' | 'status' | 'help' | 'version';

/** A parsed and validated command line, with every setting resolved. */
export interface Invocation {
  command: CommandName;
  /** `upload`: the files and bag folders. `watch`: empty (the folder is config.watchDir). */
  paths: string[];
  config: AgentConfig;
  /** True when a server URL was given by flag, environment or config file (else: the embedded server). */
  serverGiven: boolean;
  /** `--ros` true, `--no-ros` false, neither undefined (automatic). */
  ros: boolean | undefined;
  /** The argv as given, ROS arguments included (for rclnodejs.init). */
  argv: string[];
  /** True when the token came as a flag (visible to local users in /proc/<pid>/cmdline: warned about). */
  tokenOnCommandLine: boolean;
}

/** The program's own flags that are not settings. */
export const extraFlags: ExtraFlags = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
  ros: { type: 'boolean' },
};

/** The environment variable naming a config file, like `--config`. */
export const CONFIG_ENV = 'UPLOAD_AGENT_CONFIG';

const commands: readonly CommandName[] = ['watch', 'upload', 'status', 'help', 'version'];

/**
 * Parses argv (without node and the script): `--ros-args ... [--]` sections are dropped first
 * (they are rclnodejs's), then the command, flags and positionals. Settings are layered:
 * defaults, then the config file (`--config` or UPLOAD_AGENT_CONFIG; an `agent:` section is
 * used when present), then UPLOAD_AGENT_* variables, then flags. Every problem is an
 * UploadError with one clear line.
 */
export function parseInvocation(argv: string[], env: NodeJS.ProcessEnv = process.env): Invocation {
  const own = stripRosArgs(argv);
  const parsed = parseCommandLine(agentOptions, own, extraFlags);
  const { extras, positionals } = parsed;
  const ros = typeof extras.ros === 'boolean' ? extras.ros : undefined;
  const configFile = typeof extras.config === 'string' ? extras.config : env[CONFIG_ENV] || undefined;
  const fromFile = configFile ? readConfigFile(agentOptions, configFile, 'agent') : {};
  const fromEnv = agentOptions.fromEnv(env);
  const config = agentOptions.resolve(fromFile, fromEnv, parsed.values);
  const base = {
    config,
    serverGiven: config.uploadUrl !== undefined,
    ros,
    argv,
    tokenOnCommandLine: parsed.values.token !== undefined,
  };
  if (extras.help) return { ...base, command: 'help', paths: [] };
  if (extras.version) return { ...base, command: 'version', paths: [] };
  const [name, ...rest] = positionals;
  if (name === undefined) {
    // `ros2 run` may start the node without a command: watch the configured folder (which may
    // also come as the ROS parameter watch_dir).
    if (config.watchDir || hasRosArgs(argv)) return { ...base, command: 'watch', paths: [] };
    throw new UploadError('USAGE', 'No command given: use watch <dir>, upload <path>..., status or --help');
  }
  if (!commands.includes(name as CommandName)) {
    throw new UploadError('USAGE', `Unknown command "${name}": use watch, upload, status or --help`);
  }
  const command = name as CommandName;
  switch (command) {
    case 'watch': {
      if (rest.length > 1)
        throw new UploadError('USAGE', `watch takes one folder, got ${rest.length}: ${rest.join(' ')}`);
      const dir = rest[0] ?? config.watchDir;
      if (!dir && !hasRosArgs(argv))
        throw new UploadError('USAGE', 'watch needs a folder: ros2-upload-agent watch <dir> (or set watchDir)');
      if (dir) config.watchDir = agentOptions.parseValue('watchDir', dir, 'the command line');
      return { ...base, command, paths: [] };
    }
    case 'upload':
      if (rest.length === 0)
        throw new UploadError(
          'USAGE',
          'upload needs at least one file or bag folder: ros2-upload-agent upload <path>...',
        );
      return { ...base, command, paths: rest };
    default:
      if (rest.length > 0) throw new UploadError('USAGE', `${command} takes no arguments, got: ${rest.join(' ')}`);
      return { ...base, command, paths: [] };
  }
}
