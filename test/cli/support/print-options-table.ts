/**
 * Prints the agent's options as the Markdown table the README's "The agent program" section
 * holds (test/cli/command-line.test.ts checks they match). Regenerate after changing an option:
 * `npx tsx test/cli/support/print-options-table.ts`.
 */
import { formatOptionsTable } from '../../../common/config/index.js';
import { agentOptions } from '../../../agent/app/agent-options.js';

process.stdout.write(`${formatOptionsTable(agentOptions)}\n`);
