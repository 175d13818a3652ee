import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { routes } from '../../../common/protocol/native-protocol.js';
import { call, putChunk } from '../../helpers/native-upload.js';
import { legacyChunk, legacyPost } from '../../helpers/legacy-client.js';
import { contentOf, fingerprintOfContent, type LegitSessions, type PoolEntry } from './fuzz-cases.js';
import type { FuzzServer } from './fuzz-target.js';

/**
 * Two well-behaved uploads by robot1 (one native, one through the legacy API) that advance one
 * chunk at a time between batches of garbage, out of order and with a re-sent chunk, and must
 * end byte-identical on the server's disk.
 */
export class LegitUploads {
  static readonly CHUNK = 4096;
  static readonly CHUNKS = 24;
  readonly #server: FuzzServer;
  readonly #token: string;
  readonly #order: number[];
  #step = 0;
  sessions: LegitSessions | undefined;

  constructor(server: FuzzServer, seed: number) {
    this.#server = server;
    this.#token = server.tokens.robot1;
    this.#order = shuffled(LegitUploads.CHUNKS, seed);
    // One chunk is sent twice (a client retrying after a lost answer).
    this.#order.splice(LegitUploads.CHUNKS >> 1, 0, this.#order[0]!);
  }

  async start(serverIndex: number): Promise<LegitSessions> {
    const size = LegitUploads.CHUNK * LegitUploads.CHUNKS - 123;
    const nativeContent = contentOf(0x1e617, size);
    const legacyContent = contentOf(0x5eed, size);
    const created = await call(
      this.#server.url,
      'POST',
      routes.sessions,
      {
        path: 'legit-7f3/native.bin',
        size,
        fingerprint: fingerprintOfContent(nativeContent),
        chunkSize: LegitUploads.CHUNK,
      },
      { token: this.#token },
    );
    if (created.status !== 201)
      throw new Error(`legit create answered ${created.status}: ${JSON.stringify(created.json)}`);
    const md5 = createHash('md5').update(legacyContent).digest('hex');
    const init = await legacyPost(
      this.#server.url,
      '/upload/init',
      { filename: 'legit-7f3/legacy.bin', filesize: size, chunks: LegitUploads.CHUNKS, checksum: md5 },
      this.#token,
    );
    if (init.status !== 200) throw new Error(`legit legacy init answered ${init.status}: ${JSON.stringify(init.json)}`);
    const entry = (api: 'native' | 'legacy', id: string, content: Buffer, file: string): PoolEntry => ({
      server: serverIndex,
      uploader: 'robot1',
      api,
      id,
      path: file,
      content,
      chunkSize: LegitUploads.CHUNK,
      chunkCount: LegitUploads.CHUNKS,
    });
    this.sessions = {
      native: entry('native', created.json.id as string, nativeContent, 'legit-7f3/native.bin'),
      legacy: entry('legacy', init.json.upload_id as string, legacyContent, 'legit-7f3/legacy.bin'),
    };
    return this.sessions;
  }

  get done(): boolean {
    return this.#step >= this.#order.length;
  }

  /** Sends the next chunk of each upload; returns problems (an answer other than 200). */
  async step(): Promise<string[]> {
    if (this.done || !this.sessions) return [];
    const index = this.#order[this.#step]!;
    this.#step += 1;
    const problems: string[] = [];
    const { native, legacy } = this.sessions;
    const data = (entry: PoolEntry): Buffer =>
      entry.content.subarray(index * LegitUploads.CHUNK, (index + 1) * LegitUploads.CHUNK);
    const put = await putChunk(this.#server.url, native.id, index, data(native), { token: this.#token });
    if (put.status !== 200)
      problems.push(`the legitimate native chunk ${index} answered ${put.status}: ${JSON.stringify(put.json)}`);
    const form = await legacyChunk(this.#server.url, legacy.id, index, LegitUploads.CHUNKS, data(legacy), this.#token);
    if (form.status !== 200)
      problems.push(`the legitimate legacy chunk ${index} answered ${form.status}: ${JSON.stringify(form.json)}`);
    return problems;
  }

  /**
   * Sends what is left, completes both uploads and compares the stored files with what was
   * sent; returns problems.
   */
  async finish(): Promise<string[]> {
    const problems: string[] = [];
    while (!this.done) problems.push(...(await this.step()));
    const { native, legacy } = this.sessions!;
    const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
    const complete = await call(
      this.#server.url,
      'POST',
      routes.complete(native.id),
      { sha256: sha(native.content) },
      { token: this.#token },
    );
    if (complete.status !== 200)
      problems.push(
        `completing the legitimate native upload answered ${complete.status}: ${JSON.stringify(complete.json)}`,
      );
    else {
      const stored = await readFile(path.join(this.#server.root, 'completed', 'robot1', String(complete.json.path)));
      if (sha(stored) !== sha(native.content))
        problems.push(`the legitimate native upload is stored with sha256 ${sha(stored)}, not ${sha(native.content)}`);
    }
    const md5 = createHash('md5').update(legacy.content).digest('hex');
    const finalize = await legacyPost(
      this.#server.url,
      '/upload/finalize',
      { upload_id: legacy.id, checksum: md5 },
      this.#token,
    );
    if (finalize.status !== 200)
      problems.push(
        `finalizing the legitimate legacy upload answered ${finalize.status}: ${JSON.stringify(finalize.json)}`,
      );
    else {
      const stored = await readFile(path.join(this.#server.root, String(finalize.json.file_path)));
      if (sha(stored) !== sha(legacy.content))
        problems.push(`the legitimate legacy upload is stored with sha256 ${sha(stored)}, not ${sha(legacy.content)}`);
    }
    return problems;
  }
}

function shuffled(count: number, seed: number): number[] {
  const order = Array.from({ length: count }, (_, i) => i);
  let x = seed || 1;
  for (let i = count - 1; i > 0; i -= 1) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const j = x % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}
