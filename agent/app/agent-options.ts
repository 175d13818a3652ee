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
  ...watcherOptionSpecs,
  ...programOptionSpecs,
};

export const agentOptions = defineOptions(agentOptionSpecs, { envPrefix: 'UPLOAD_AGENT_' });

export type AgentConfig = ReturnType<typeof agentOptions.defaults>;
