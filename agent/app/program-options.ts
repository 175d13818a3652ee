import { option } from '../../common/config/index.js';

/**
 * Settings of the `ros2-upload-agent` program itself (logging, and the bundled server it starts
 * when no `--server` is given). Spread into agent/app/agent-options.ts with the engine's and the
 * watcher's.
 */
export const programOptionSpecs = {
  logLevel: option.enum({
    doc: 'Log level (logs are human-readable on a terminal, JSON lines otherwise)',
    values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
    default: 'info',
  }),
  createWatchDir: option.boolean({
    doc: 'Create the watch folder when it does not exist (otherwise a missing folder is an error)',
    default: false,
  }),
  embeddedUploadDir: option.string({
    doc: 'Without a server URL: the storage folder of the bundled server the agent starts on 127.0.0.1',
    format: 'path',
    default: './uploads',
  }),
  allowLocalDelete: option.boolean({
    doc:
      'Let afterUpload delete or move recordings although no serverUrl is set: the bundled server then keeps ' +
      'the only copy, on this machine (without this, that combination is refused)',
    default: false,
  }),
  progressLogInterval: option.duration({
    doc: 'How often the log reports each running upload (bytes, rate, ETA) when it is not a terminal; 0 turns it off',
    default: 30,
    min: 0,
  }),
  embeddedPort: option.integer({
    doc: 'Without a server URL: the port of the bundled server on 127.0.0.1; 0 picks a free port',
    default: 0,
    min: 0,
    max: 65535,
  }),
};
