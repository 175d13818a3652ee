import type { RequestHandler } from 'express';
import { readFileSync } from 'node:fs';
import { PROTOCOL_VERSION, type HealthResponse } from '../../common/protocol/native-protocol.js';

/** The Python dashboard's features, then ours. */
export const FEATURES = [
  'chunked-upload',
  'compression',
  'rate-limiting',
  'ssl-support',
  'resumable',
  'sha256',
  'crc32-chunks',
  'native-protocol-v1',
  'auth',
  'gzip-transfer',
] as const;

/** The package version, read once from package.json (two folders up from dist/server/routes or server/routes). */
export const VERSION: string = (() => {
  for (const relative of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'ros2-upload-agent' && pkg.version) return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return 'unknown';
})();

/** GET /health: the legacy API's answer plus `protocol`. Never authenticated or rate limited. */
export function healthRoute(): RequestHandler {
  return (_req, res) => {
    const body: HealthResponse = { status: 'ok', timestamp: new Date().toISOString(), version: VERSION, features: [...FEATURES], protocol: PROTOCOL_VERSION };
    res.setHeader('Cache-Control', 'no-store');
    res.json(body);
  };
}
