// A hostile local user's process: swaps a path (a file or a folder) in and out for a symbolic link
// to somewhere else, as fast as it can, with atomic renames, for a number of milliseconds. Every
// round leaves the real entry back in place. Prints the number of rounds (each round is two swaps)
// on stdout when it ends.
//
//   node path-swapper.mjs <target> <link target> <milliseconds>
import { renameSync, symlinkSync, unlinkSync } from 'node:fs';

const [target, elsewhere, milliseconds] = process.argv.slice(2);
if (!target || !elsewhere || !milliseconds) {
  process.stderr.write('usage: node path-swapper.mjs <target> <link target> <milliseconds>\n');
  process.exit(64);
}
const link = `${target}.swap-link`;
const parked = `${target}.swap-parked`;
symlinkSync(elsewhere, link);
const until = Date.now() + Number(milliseconds);
let rounds = 0;
while (Date.now() < until) {
  for (let i = 0; i < 200; i += 1) {
    renameSync(target, parked); // the real entry steps aside
    renameSync(link, target); // the link takes its name
    renameSync(target, link); // the link steps aside
    renameSync(parked, target); // the real entry is back
    rounds += 1;
  }
}
unlinkSync(link);
process.stdout.write(`${rounds}\n`);
