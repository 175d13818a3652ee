import { formatOptionsHelp } from '../../common/config/index.js';
import { agentOptions } from '../app/agent-options.js';
import { exitCodes } from './exit-codes.js';

/** `ros2-upload-agent --help`. The options part is generated from the option specs. */
export function helpText(): string {
  return `Usage:
  ros2-upload-agent watch <dir> [options]         upload every bag split in <dir> as soon as it is closed
  ros2-upload-agent upload <file|bag folder>... [options]
                                                  upload once; exit 0 only when the server verified every file
  ros2-upload-agent status [--state-dir DIR]      the queue and recent uploads, from the journal
  ros2-upload-agent --help | --version

Without --server (flag, UPLOAD_AGENT_SERVER_URL or config file), the agent starts the bundled
server on 127.0.0.1 and stores uploads in --embedded-upload-dir (./uploads).

Program flags:
  -c, --config <file>      YAML or JSON config file (keys as below, camelCase, kebab-case or snake_case;
                           an "agent:" section is used when present) [env ${'UPLOAD_AGENT_CONFIG'}]
  --ros / --no-ros         run as a ROS 2 node (fails when ROS 2 is unavailable) / never; default: a
                           ROS 2 node when ROS 2 is sourced and rclnodejs loads
  --ros-args ... [--]      ROS arguments, passed to rclnodejs (-p name:=value, --params-file, -r)
  -h, --help               this text
  -V, --version            the version

Settings (flag, environment variable, default):
${formatOptionsHelp(agentOptions)}

Sizes take units (2MiB, 500k, 1GB); durations take 500ms, 30s, 5m, 1h (a bare number is seconds).

Exit codes: ${Object.entries(exitCodes)
    .map(([name, code]) => `${code} ${name.toLowerCase().replace(/_/g, ' ')}`)
    .join(', ')}.
`;
}
