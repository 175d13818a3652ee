import type { RequestHandler } from 'express';
import { packageVersion } from '../../common/program/package-version.js';
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
  'request-checksum',
] as const;

/** The package version (common/program/package-version.ts), reported by /health and --version. */
export const VERSION: string = packageVersion();

/** The features the legacy API's own server reports (its deployment guide). */
export const LEGACY_FEATURES = ['chunked-upload', 'compression', 'rate-limiting', 'ssl-support'] as const;

/**
 * GET /health: the legacy API's answer plus `protocol`. Never authenticated or rate limited.
 * Without the native API, the legacy server's answer: no `protocol`, its four features.
 */
export function healthRoute(nativeApi = true): RequestHandler {
  return (_req, res) => {
    const body: HealthResponse | Omit<HealthResponse, 'protocol'> = nativeApi
      ? {
          status: 'ok',
          timestamp: new Date().toISOString(),
          version: VERSION,
          features: [...FEATURES],
          protocol: PROTOCOL_VERSION,
        }
      : { status: 'ok', timestamp: new Date().toISOString(), version: VERSION, features: [...LEGACY_FEATURES] };
    res.setHeader('Cache-Control', 'no-store');
    res.json(body);
  };
}
