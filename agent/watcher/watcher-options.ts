import { defineOptions, option } from '../../common/config/index.js';

/**
 * The recording watcher's settings (closing rules, rescans, after-upload policy, disk guard),
 * defined once. Durations are seconds, sizes bytes. They are spread into the agent's option
 * set (agent/app/agent-options.ts), which derives the flags, `UPLOAD_AGENT_*` variables, config
 * file keys and ROS parameters.
 */
export const watcherOptionSpecs = {
  watchDir: option.string({
    doc: 'Recording root to watch for bags (the folder of `watch <dir>`)',
    format: 'path',
  }),
  settleTime: option.duration({
    doc: 'Fallback closing signal: a file counts as closing once its size and mtime have not changed for this long',
    default: 30,
    min: 0.1,
  }),
  quietPeriod: option.duration({
    doc: 'A closing file must keep the same size and mtime for this long before it is uploaded',
    default: 1,
    min: 0,
    max: 3600,
  }),
  unclosedTimeout: option.duration({
    doc:
      'An .mcap never closed (no end magic: recorder crash, power loss), unchanged this long and written by no ' +
      'process, is uploaded anyway, flagged "recovered, unclosed" (ros2 bag reindex repairs it); 0: never',
    default: 600,
    min: 0,
  }),
  rescanInterval: option.duration({
    doc: 'Full rescan of the recording root, to catch missed file events; 0 turns it off',
    default: 30,
    min: 0,
  }),
  include: option.list({
    doc: 'Extra files to upload besides bag files: globs relative to the root (a glob without / matches file names)',
    default: [],
  }),
  exclude: option.list({
    doc: 'Files or folders never to upload: globs as for include',
    default: [],
  }),
  afterUpload: option.enum({
    doc: 'What happens to a file once the server verified its SHA-256: keep, delete or move (to moveTo)',
    values: ['keep', 'delete', 'move'],
    default: 'keep',
  }),
  moveTo: option.string({
    doc: 'Target folder for afterUpload=move; unset means <watch root>/.uploaded',
    format: 'path',
  }),
  minFreeSpace: option.size({
    doc: 'Warn in the status when free space on the recording disk is below this; 0 turns the disk guard off',
    default: 1024 ** 3,
    min: 0,
  }),
  deleteUploadedWhenLow: option.boolean({
    doc: 'Below minFreeSpace, delete already verified files, oldest first (never a file that was not uploaded)',
    default: false,
  }),
  diskCheckInterval: option.duration({
    doc: 'How often free disk space on the recording disk is checked',
    default: 10,
    min: 0.1,
  }),
};

export const watcherOptions = defineOptions(watcherOptionSpecs, { envPrefix: 'UPLOAD_AGENT_' });
