import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';

/**
 * A client of the legacy API for tests, as the Python dashboard's NetworkManager speaks it: JSON
 * init, multipart chunks (`upload_id`, `chunk_index`, `chunk_total`, file part `chunk`), JSON
 * finalize. Whole chunks in memory (test files are small).
 */
export interface LegacyAnswer {
  status: number;
  json: Record<string, unknown>;
  headers: Headers;
}

async function answer(response: Response): Promise<LegacyAnswer> {
  const text = await response.text();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { raw: text };
  }
  return { status: response.status, json, headers: response.headers };
}

export async function legacyPost(base: string, route: string, body: unknown, token?: string): Promise<LegacyAnswer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  return answer(await fetch(base + route, { method: 'POST', headers, body: JSON.stringify(body) }));
}

export async function legacyGet(base: string, route: string, token?: string): Promise<LegacyAnswer> {
  return answer(await fetch(base + route, { headers: token ? { authorization: `Bearer ${token}` } : {} }));
}

export async function legacyChunk(
  base: string,
  uploadId: string,
  index: number,
  total: number,
  data: Uint8Array,
  token?: string,
): Promise<LegacyAnswer> {
  const form = new FormData();
  form.append('upload_id', uploadId);
  form.append('chunk_index', String(index));
  form.append('chunk_total', String(total));
  form.append('chunk', new Blob([data]), `chunk_${index}`);
  return answer(
    await fetch(`${base}/upload/chunk`, {
      method: 'POST',
      body: form,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    }),
  );
}

export interface LegacyUpload {
  init: LegacyAnswer;
  chunks: LegacyAnswer[];
  finalize: LegacyAnswer;
  md5: string;
}

/** init → every chunk (in `order`) → finalize with the MD5, as the Python dashboard's client does. */
export async function legacyUploadFile(
  base: string,
  file: string,
  filename: string,
  options: { chunks: number; token?: string; compression?: boolean; order?: (indexes: number[]) => number[] },
): Promise<LegacyUpload> {
  const data = await readFile(file);
  const md5 = createHash('md5').update(data).digest('hex');
  const init = await legacyPost(
    base,
    '/upload/init',
    {
      filename,
      filesize: data.length,
      chunks: options.chunks,
      checksum: md5,
      compression: options.compression ?? false,
    },
    options.token,
  );
  const uploadId = init.json.upload_id as string;
  const size = Math.ceil(data.length / options.chunks);
  let indexes = Array.from({ length: options.chunks }, (_, i) => i);
  if (options.order) indexes = options.order(indexes);
  const chunks: LegacyAnswer[] = [];
  for (const index of indexes)
    chunks.push(
      await legacyChunk(
        base,
        uploadId,
        index,
        options.chunks,
        data.subarray(index * size, (index + 1) * size),
        options.token,
      ),
    );
  const finalize = await legacyPost(base, '/upload/finalize', { upload_id: uploadId, checksum: md5 }, options.token);
  return { init, chunks, finalize, md5 };
}
