import { formatOptionsHelp } from '../../common/config/index.js';
import { agentOptions } from '../app/agent-options.js';
import { commandInfo, type CommandName } from './commands.js';
import { exitCodes } from './exit-codes.js';
import { CONFIG_ENV } from './invocation.js';

const programFlags: Record<string, string> = {
  config: `  -c, --config <file>      YAML or JSON config file (keys as below, camelCase, kebab-case or snake_case;
                           an "agent:" section is used when present) [env ${CONFIG_ENV}]`,
  ros: `  --ros / --no-ros         run as a ROS 2 node (fails when ROS 2 is unavailable) / never; default: a
                           ROS 2 node when ROS 2 is sourced and rclnodejs loads
  --ros-args ... [--]      ROS arguments, passed to rclnodejs (-p name:=value, --params-file, -r)`,
  json: '  --json                   print the status as one JSON object',
  help: '  -h, --help               this text',
};

const footer = `Sizes take units (2MiB, 500k, 1GB); durations take 500ms, 30s, 5m, 1h (a bare number is seconds).
Every setting is also an UPLOAD_AGENT_* variable and a config file key (docs/configuration.md).

Exit codes: ${Object.entries(exitCodes)
  .map(([name, code]) => `${code} ${name.toLowerCase().replace(/_/g, ' ')}`)
  .join(', ')}.
`;

/** `ros2-upload-agent --help`, or `ros2-upload-agent <command> --help`: generated from the option specs. */
export function helpText(command?: Exclude<CommandName, 'help' | 'version'>): string {
  if (command !== undefined) {
    const info = commandInfo[command];
    const flags = ['config', ...info.flags, 'help'].map((flag) => programFlags[flag]).join('\n');
    return `Usage: ${info.usage}
  ${info.summary}

Program flags:
${flags}

Settings (flag, environment variable, default):
${formatOptionsHelp(agentOptions, info.keys)}

${footer}`;
  }
  const width = Math.max(...Object.values(commandInfo).map((info) => info.usage.length)) + 2;
  return `Usage:
${Object.values(commandInfo)
  .map((info) => `  ${info.usage.padEnd(width)}${info.summary}`)
  .join('\n')}
  ros2-upload-agent --help | --version | <command> --help

Without --server-url (flag, UPLOAD_AGENT_SERVER_URL or serverUrl in a config file), the agent starts
the bundled server in its own process on 127.0.0.1 and stores every upload on this machine, in
--embedded-upload-dir (./uploads). Give a server URL for a real deployment.

Program flags:
${Object.values(programFlags).join('\n')}
  -V, --version            the version

Settings (flag, environment variable, default); <command> --help lists the ones of a command:
${formatOptionsHelp(agentOptions)}

${footer}`;
}
