import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { formatChunkChecksum, Crc32 } from '../../common/protocol/chunk-checksum.js';
import { fingerprintFile } from '../../common/protocol/fingerprint.js';
import { routes, type CreateSessionRequest } from '../../common/protocol/native-protocol.js';

/**
 * A minimal native-protocol client for tests (not the agent's engine): plain fetch, whole
 * chunks in memory. `json` is the parsed answer, whatever the status.
 */
export interface Answer<T = Record<string, unknown>> {
  status: number;
  json: T;
  headers: Headers;
}

export interface ClientOptions {
  token?: string;
  /** Extra fetch options (e.g. a TLS dispatcher). */
  init?: RequestInit;
}

export async function call<T = Record<string, unknown>>(
  base: string,
  method: string,
  route: string,
  body?: unknown,
  options: ClientOptions & { headers?: Record<string, string> } = {},
): Promise<Answer<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let payload: Uint8Array | string | undefined;
  if (body instanceof Uint8Array) payload = body;
  else if (body !== undefined) {
    headers['content-type'] ??= 'application/json';
    payload = JSON.stringify(body);
  }
  const response = await fetch(base + route, { ...options.init, method, headers, body: payload });
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = { raw: text };
  }
  return { status: response.status, json: json as T, headers: response.headers };
}

export async function readChunk(file: string, index: number, chunkSize: number, size: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const offset = index * chunkSize;
    const length = Math.max(0, Math.min(chunkSize, size - offset));
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, offset);
    return buffer;
  } finally {
    await handle.close();
  }
}

export function crcHeader(data: Uint8Array): string {
  return formatChunkChecksum(new Crc32().update(data).value);
}

export async function putChunk(
  base: string,
  id: string,
  index: number,
  data: Uint8Array,
  options: ClientOptions & { checksum?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return call(base, 'PUT', routes.chunk(id, index), data, {
    ...options,
    headers: {
      'content-type': 'application/octet-stream',
      'x-chunk-checksum': options.checksum ?? crcHeader(data),
      ...options.headers,
    },
  });
}

export async function createSession(
  base: string,
  file: string,
  request: Partial<CreateSessionRequest> & { path: string },
  options: ClientOptions = {},
): Promise<Answer> {
  const { size } = await stat(file);
  const body: CreateSessionRequest = { size, fingerprint: await fingerprintFile(file), ...request };
  return call(base, 'POST', routes.sessions, body, options);
}

/** Creates a session for `file` stored at `remote` in chunks of `chunkSize`; its id (the creation must answer 201). */
export async function openSession(base: string, file: string, remote: string, chunkSize: number): Promise<string> {
  const created = await createSession(base, file, { path: remote, chunkSize });
  if (created.status !== 201)
    throw new Error(`creating ${remote} answered ${created.status}: ${JSON.stringify(created.json)}`);
  return String(created.json.id);
}

/** The chunk indexes the server holds for session `id` (its status's `received`). */
export async function receivedChunks(base: string, id: string): Promise<unknown> {
  return (await call(base, 'GET', routes.session(id))).json.received;
}

export interface UploadResult {
  create: Answer;
  complete: Answer;
  chunkAnswers: Answer[];
}

/**
 * Uploads a whole file: create, chunks in the given order with `parallel` requests at a time,
 * complete with the file's SHA-256.
 */
export async function uploadFile(
  base: string,
  file: string,
  relativePath: string,
  options: ClientOptions & {
    chunkSize?: number;
    parallel?: number;
    order?: (indexes: number[]) => number[];
    skip?: number[];
    /** Extra fields of the create request (replace, compress, metadata...). */
    create?: Partial<CreateSessionRequest>;
  } = {},
): Promise<UploadResult> {
  const create = await createSession(
    base,
    file,
    { path: relativePath, ...(options.chunkSize ? { chunkSize: options.chunkSize } : {}), ...options.create },
    options,
  );
  if (create.status >= 300 || create.json.state !== 'open') return { create, complete: create, chunkAnswers: [] };
  const { id, chunkSize, chunkCount, size, received } = create.json as {
    id: string;
    chunkSize: number;
    chunkCount: number;
    size: number;
    received: number[];
  };
  let indexes = Array.from({ length: chunkCount }, (_, i) => i).filter(
    (i) => !received.includes(i) && !(options.skip ?? []).includes(i),
  );
  if (options.order) indexes = options.order(indexes);
  const chunkAnswers: Answer[] = [];
  const queue = [...indexes];
  await Promise.all(
    Array.from({ length: options.parallel ?? 1 }, async () => {
      for (let index = queue.shift(); index !== undefined; index = queue.shift()) {
        chunkAnswers.push(await putChunk(base, id, index, await readChunk(file, index, chunkSize, size), options));
      }
    }),
  );
  const hash = createHash('sha256');
  const handle = await open(file, 'r');
  try {
    for await (const piece of handle.createReadStream()) hash.update(piece as Buffer);
  } finally {
    await handle.close().catch(() => undefined);
  }
  const complete = await call(base, 'POST', routes.complete(id), { sha256: hash.digest('hex') }, options);
  return { create, complete, chunkAnswers };
}
