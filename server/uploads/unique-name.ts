import path from 'node:path';
import { present } from '../../common/errors/present.js';
import { MAX_SEGMENT_BYTES } from '../../common/protocol/native-protocol.js';

/**
 * `run1/a.bag` → `run1/a.1.bag` (the legacy API's way of never overwriting another file). A name
 * already at the file system's limit (MAX_SEGMENT_BYTES) loses code points at the end of its stem
 * to make room for the counter, so the unique name can always be stored.
 */
export function uniqueName(relativePath: string, n: number): string {
  const dir = path.posix.dirname(relativePath);
  const base = path.posix.basename(relativePath);
  const dot = base.lastIndexOf('.');
  const name =
    (dot > 0 ? fitted(base.slice(0, dot), `.${n}${base.slice(dot)}`) : undefined) ??
    present(fitted(base, `.${n}`), `a unique name for ${base}`);
  return dir === '.' ? name : `${dir}/${name}`;
}

/**
 * `stem + suffix`, the stem shortened (by whole code points) to fit MAX_SEGMENT_BYTES; undefined
 * when no stem is left.
 */
function fitted(stem: string, suffix: string): string | undefined {
  const points = Array.from(stem);
  while (points.length > 0 && Buffer.byteLength(points.join('') + suffix) > MAX_SEGMENT_BYTES) points.pop();
  return points.length > 0 ? points.join('') + suffix : undefined;
}
