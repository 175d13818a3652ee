import { checkSizeAndSpace } from './disk-space.js';
import { openSession } from './open-session.js';
import { checkOpenSessionCap } from './open-session-cap.js';
import type { UploadContext } from './upload-context.js';

/** POST /upload/init, its fields checked (filename normalised, checksum well-formed). */
export interface InitLegacySessionInput {
  uploader: string;
  filename: string;
  size: number;
  chunkCount: number;
  metadata: Record<string, unknown> | undefined;
  /** The MD5 the client gave, lowercase hex. */
  md5: string | undefined;
  compression: boolean;
}

export interface LegacyInitAnswer {
  success: true;
  upload_id: string;
  message: string;
  compression_enabled: boolean;
}

/**
 * A legacy upload: each init is a new session, as in the Python dashboard. `filename` may
 * contain folders and follows the native path rules (no `..`, no absolute paths, ...).
 */
export async function initLegacySession(
  context: UploadContext,
  input: InitLegacySessionInput,
): Promise<LegacyInitAnswer> {
  const { uploader, filename, size } = input;
  await checkOpenSessionCap(context, uploader);
  await checkSizeAndSpace(context, size, 'filesize');
  // Refuses now, not at finalize, a name that would leave the root through a symlink or whose folder is a file.
  await context.storage.stat({ uploader, path: filename });

  const { runtime } = await openSession(context, {
    api: 'legacy',
    uploader,
    path: filename,
    size,
    fingerprint: null,
    chunkSize: null,
    chunkCount: input.chunkCount,
    sha256Hint: null,
    md5Expected: input.md5 ?? null,
    metadata: input.metadata ?? null,
    replace: false,
    compressionRequested: input.compression,
  });
  return {
    success: true,
    upload_id: runtime.record.id,
    message: `Upload initialized: ${filename}`,
    compression_enabled: runtime.record.compress,
  };
}
