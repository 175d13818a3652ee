/**
 * Prints the server's option table for the README ("Server configuration"), generated from the
 * option specs: `npx tsx test/server/scripts/print-options-table.ts`. test/server/readme.test.ts
 * checks that the README holds exactly this table.
 */
import { formatOptionsTable } from '../../../common/config/index.js';
import { serverOptions } from '../../../server/config/server-options.js';

/** The table without the ROS column (the server has no ROS parameters). */
export function serverOptionsTable(): string {
  return formatOptionsTable(serverOptions)
    .split('\n')
    .map((line) => {
      const cells = line.split(/(?<!\\)\|/);
      cells.splice(4, 1);
      return cells.join('|');
    })
    .join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(serverOptionsTable());
