import type { Request } from 'express';

/** The relative path of `/v1/files/<path>` as the router split it (not yet normalised). */
export function filePathOf(req: Request): string {
  const segments = (req.params as { path?: string[] | string }).path;
  return Array.isArray(segments) ? segments.join('/') : String(segments ?? '');
}
