import { defineOptions } from '../../common/config/index.js';
import { programOptionSpecs } from './program-options.js';
import { engineOptionSpecs } from '../engine/engine-options.js';
import { watcherOptionSpecs } from '../watcher/watcher-options.js';

/**
 * Every setting of the agent program, composed from the specs of its parts (engine, watcher,
 * program). The CLI flags, `UPLOAD_AGENT_*` environment variables, config file keys and ROS
 * parameters all derive from this one set.
 */
export const agentOptionSpecs = {
  ...engineOptionSpecs,
  // The program's own meaning of an unset server (the engine alone would use 127.0.0.1:8080).
  serverUrl: {
    ...engineOptionSpecs.serverUrl,
    doc:
      'Base URL of the receiving server, e.g. https://uploads.example.com:8080 (a trailing /upload is accepted). ' +
      'Unset: the agent starts the bundled server in its own process on 127.0.0.1 and stores every upload on ' +
      'this machine, in embeddedUploadDir (./uploads): for trying it out, not for a robot',
  },
  ...watcherOptionSpecs,
  ...programOptionSpecs,
};

export const agentOptions = defineOptions(agentOptionSpecs, { envPrefix: 'UPLOAD_AGENT_' });

export type AgentConfig = ReturnType<typeof agentOptions.defaults>;
