import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TargetResult } from './benchmark.js';
import type { MachineInfo } from './machine.js';

export const RESULTS_FILE = fileURLToPath(new URL('../RESULTS.md', import.meta.url));

export interface ResultRow {
  bench: string;
  date: string;
  quick: boolean;
  cells: Record<string, string>;
  targets: Record<string, TargetResult>;
  before: MachineInfo;
  after: MachineInfo;
}

/**
 * Appends one row to the benchmark's table in bench/RESULTS.md (`--record`), under its
 * `## <name>` heading; older rows stay. When the columns changed, a new table starts under the
 * same heading. A missing section is added at the end.
 */
export function recordResult(row: ResultRow, file = RESULTS_FILE): void {
  const columns = ['Date', 'Mode', ...Object.keys(row.cells), 'Targets', 'Load avg (1 min) before/after', 'Machine'];
  const targets = Object.entries(row.targets)
    .map(([name, result]) => `${name} ${result.met ? 'met' : 'NOT met'}`)
    .join('; ');
  const machine = `${row.before.cores} × ${row.before.cpuModel}, Node ${row.before.node}`;
  const cells = [
    row.date,
    row.quick ? 'quick' : 'full',
    ...Object.values(row.cells),
    targets,
    `${row.before.loadAverage[0]} / ${row.after.loadAverage[0]}`,
    machine,
  ];
  const header = `| ${columns.join(' | ')} |`;
  const line = `| ${cells.map((cell) => cell.replace(/\|/g, '\\|')).join(' | ')} |`;

  const lines = readFileSync(file, 'utf8').replace(/\n+$/, '').split('\n');
  const heading = lines.findIndex((l) => l.trim() === `## ${row.bench}`);
  if (heading < 0) {
    lines.push('', `## ${row.bench}`, '', header, `|${columns.map(() => '---').join('|')}|`, line);
  } else {
    let end = lines.findIndex((l, i) => i > heading && l.startsWith('## '));
    if (end < 0) end = lines.length;
    // The last table of the section, if its header matches.
    let lastHeader = -1;
    for (let i = heading + 1; i < end; i += 1) if (lines[i]!.startsWith('| Date |')) lastHeader = i;
    if (lastHeader >= 0 && lines[lastHeader] === header) {
      let last = lastHeader + 1;
      while (last + 1 < end && lines[last + 1]!.startsWith('|')) last += 1;
      lines.splice(last + 1, 0, line);
    } else {
      let insertAt = end;
      while (insertAt > heading + 1 && lines[insertAt - 1]!.trim() === '') insertAt -= 1;
      lines.splice(insertAt, 0, '', header, `|${columns.map(() => '---').join('|')}|`, line);
    }
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
}
