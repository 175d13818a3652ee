import { createHash } from 'node:crypto';
import { UploadError } from '../../common/errors/upload-error.js';
import { WholeFileDigest } from '../integrity/whole-file-digest.js';
import type { FileRecord } from '../sessions/session-record.js';
import type { SessionStore } from '../sessions/session-store.js';
import type { StoredFile, UploadStorage } from '../storage/upload-storage.js';

/** What adopting a file needs (an UploadContext has it; so does the start-up job). */
export interface AdoptionDeps {
  readonly store: SessionStore;
  readonly storage: UploadStorage;
}

/**
 * Records a stored file that the index does not describe: a crash or power cut between the
 * commit and its index row, a file copied in by hand, an index restored from an older backup.
 * The file is read once (SHA-256, MD5 and fingerprint), so it is recognised afterwards exactly as
 * if it had been uploaded: a client sending the same content is told it is stored, never that a
 * different file is in the way. The caller holds the path's lock (or runs before serving).
 */
export async function adoptStoredFile(
  deps: AdoptionDeps,
  file: StoredFile,
  size: number,
  completedAt: number,
  previous: FileRecord | undefined,
): Promise<FileRecord> {
  const digest = new WholeFileDigest(size, size, (length) => grew(file, size, length));
  const md5 = createHash('md5');
  for await (const piece of digest.through(deps.storage.read(file))) md5.update(piece);
  if (digest.length !== size) throw grew(file, size, digest.length);
  const sha256 = digest.sha256();
  const record: FileRecord = {
    uploader: file.uploader,
    path: file.path,
    size,
    sha256,
    md5: md5.digest('hex'),
    fingerprint: digest.fingerprint()!,
    completedAt,
    // Metadata and the gzip copy described the content the old entry was about.
    metadata: previous?.sha256 === sha256 ? previous.metadata : null,
    compressedSize: previous?.sha256 === sha256 ? previous.compressedSize : null,
    sessionId: previous?.sha256 === sha256 ? previous.sessionId : null,
  };
  if (previous?.sha256 === sha256 && previous.size === size) return { ...previous, md5: previous.md5 ?? record.md5 };
  await deps.store.putFile(record);
  return record;
}

function grew(file: StoredFile, size: number, length: number): UploadError {
  return new UploadError(
    'SESSION_BUSY',
    `${file.path} changed while it was being read (${length} bytes instead of ${size}); ask again`,
  );
}
