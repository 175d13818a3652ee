import { engineOptionSpecs } from '../engine/engine-options.js';
import type { AgentConfig } from '../app/agent-options.js';
import { agentOptions } from '../app/agent-options.js';

export type CommandName = 'watch' | 'upload' | 'status' | 'retry' | 'pause' | 'resume' | 'help' | 'version';

type Key = keyof AgentConfig & string;

/** The commands that talk to a running agent over its control socket (state directory only). */
export const CONTROL_COMMANDS = ['retry', 'pause', 'resume'] as const;

/** One command: what it does, its usage line, the settings and the program flags that apply to it. */
export interface CommandInfo {
  usage: string;
  summary: string;
  /**
   * Settings whose flags this command takes; others given as flags are refused (from the
   * environment or a config file they are ignored).
   */
  keys: readonly Key[];
  /** Program flags (not settings) this command takes, besides --config and --help. */
  flags: readonly string[];
}

const engineKeys = Object.keys(engineOptionSpecs) as Key[];
const local: readonly Key[] = ['stateDir', 'logLevel'];

export const commandInfo: Record<Exclude<CommandName, 'help' | 'version'>, CommandInfo> = {
  watch: {
    usage: 'ros2-upload-agent watch <dir> [options]',
    summary: 'the daemon: upload every bag split in <dir> as soon as it is closed',
    keys: agentOptions.keys(),
    flags: ['ros'],
  },
  upload: {
    usage: 'ros2-upload-agent upload <file|bag folder>... [options]',
    summary: 'upload once; exit 0 only when the server verified every file (never deletes or moves anything)',
    keys: [...engineKeys, 'logLevel', 'embeddedUploadDir', 'embeddedPort'],
    flags: [],
  },
  status: {
    usage: 'ros2-upload-agent status [--state-dir DIR] [--json]',
    summary: 'what the agent is doing: uploads running (bytes, rate, ETA), queued, held back, failed',
    keys: local,
    flags: ['json'],
  },
  retry: {
    usage: 'ros2-upload-agent retry [--state-dir DIR]',
    summary: 'put the failed uploads of the running agent back in its queue',
    keys: local,
    flags: [],
  },
  pause: {
    usage: 'ros2-upload-agent pause [--state-dir DIR]',
    summary: 'the running agent starts no new chunk until resumed',
    keys: local,
    flags: [],
  },
  resume: {
    usage: 'ros2-upload-agent resume [--state-dir DIR]',
    summary: 'the running agent uploads again after pause',
    keys: local,
    flags: [],
  },
};

export function isCommand(name: string): name is Exclude<CommandName, 'help' | 'version'> {
  return Object.hasOwn(commandInfo, name);
}
