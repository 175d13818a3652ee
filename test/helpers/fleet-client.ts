import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { routes } from '../../common/protocol/native-protocol.js';
import { FIXTURES } from './bag-writer.js';
import { call, type Answer } from './native-upload.js';

/** Stores a small file in one request (PUT /v1/files/<path>), as the agent does for files up to 8 MiB. */
export async function putWholeFile(base: string, relativePath: string, data: Buffer, token?: string): Promise<Answer> {
  return call(base, 'PUT', routes.file(relativePath), data, {
    ...(token ? { token } : {}),
    headers: {
      'content-type': 'application/octet-stream',
      'x-content-sha256': createHash('sha256').update(data).digest('hex'),
    },
  });
}

/** A fixture bag's files (test/fixtures/rosbag2-humble/<bag>/), split files first in order, metadata.yaml last. */
export function fixtureFiles(bag: string): { name: string; data: Buffer }[] {
  const dir = path.join(FIXTURES, bag);
  return readdirSync(dir)
    .sort((a, b) => (a === 'metadata.yaml' ? 1 : b === 'metadata.yaml' ? -1 : a.localeCompare(b)))
    .map((name) => ({ name, data: readFileSync(path.join(dir, name)) }));
}

/** GET with a bearer token (or none), parsed. */
export function viewerGet<T = Record<string, unknown>>(
  base: string,
  route: string,
  token?: string,
): Promise<Answer<T>> {
  return call<T>(base, 'GET', route, undefined, token ? { token } : {});
}
