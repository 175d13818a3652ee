/**
 * True for the system errors of a full disk (ENOSPC) or an exhausted quota (EDQUOT), which the
 * storage passes on as they are (see UploadStorage.writePart). They are a condition of the
 * server's storage, answered 507 INSUFFICIENT_STORAGE, never a fault (500).
 */
export function isDiskFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
