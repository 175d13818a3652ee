import path from 'node:path';
import { UploadError } from '../../common/errors/upload-error.js';
import { normaliseRelativePath } from '../../common/protocol/relative-path.js';
import { DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY } from './queue/upload-queue.js';
import { statFile } from './source/local-file.js';

export interface AddUploadOptions {
  /** 1 (first) to 10 (last); default 5. FIFO within a priority. */
  priority?: number;
  /** Free-form JSON object stored with the file on the server. */
  metadata?: Record<string, unknown>;
  /** Path on the server, relative to this robot's folder; default: the file's name. */
  remotePath?: string;
  /** Replace a different file already stored at remotePath. Default false (the server refuses with FILE_EXISTS). */
  replace?: boolean;
  /** The bag this file belongs to, for status; default: the remote path's parent folder name. */
  bagName?: string;
}

/** One entry of addUploads()'s answer: the upload's id, or why that file was refused. */
export type AddUploadResult = { id: string } | { error: UploadError };

/** A file addUploads() checked: its path on both sides, its priority and size. */
export interface CheckedUpload {
  localPath: string;
  remotePath: string;
  priority: number;
  size: number;
  options: AddUploadOptions;
}

/** The checks of addUpload: priority, metadata, remote path, and the file itself (stat). */
export async function checkUpload(filePath: string, options: AddUploadOptions): Promise<CheckedUpload> {
  const localPath = path.resolve(filePath);
  const priority = options.priority ?? DEFAULT_PRIORITY;
  if (!Number.isInteger(priority) || priority < MIN_PRIORITY || priority > MAX_PRIORITY) {
    throw new UploadError(
      'INVALID_FIELD',
      `priority must be a whole number from ${MIN_PRIORITY} to ` +
        `${MAX_PRIORITY}, not ${JSON.stringify(options.priority)} (${localPath})`,
    );
  }
  if (
    options.metadata !== undefined &&
    (typeof options.metadata !== 'object' || options.metadata === null || Array.isArray(options.metadata))
  ) {
    throw new UploadError('INVALID_FIELD', `metadata must be an object (${localPath})`);
  }
  const remotePath = normaliseRelativePath(options.remotePath ?? path.basename(localPath), 'remotePath');
  const version = await statFile(localPath);
  return { localPath, remotePath, priority, size: version.size, options };
}

/** The bag folder of a remote path (its parent folder's name), or '' for a file at the top. */
export function bagNameOf(remotePath: string): string {
  const parts = remotePath.split('/');
  return parts.at(-2) ?? '';
}
