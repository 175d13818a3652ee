import { UploadError } from '../../../common/errors/upload-error.js';

/** What the agent asked the server to store: the answer must name exactly this. */
export interface AskedFile {
  path: string;
  size: number;
  /** The whole file's SHA-256, when the agent sent or knows it. */
  sha256?: string | undefined;
}

/** The fields of an answer that name a stored file (or the file a session is for). */
export interface AnsweredFile {
  path?: unknown;
  size?: unknown;
  sha256?: unknown;
}

/**
 * Checks that an answer naming a stored file (or the file a session is for) names the file the
 * agent asked for: the same `path` and `size`, and the same `sha256` where both sides have one.
 * A byte damaged on the wire in the request (the path in a create body or a whole-file URL)
 * makes a server store the file under another name and say so; a byte damaged in the answer
 * makes it look so. Either way the transfer is not verified: ANSWER_MISMATCH, which is retried
 * and never recorded as done, so no after-upload action runs on it. The message carries both
 * values.
 */
export function checkAnswer(what: string, asked: AskedFile, answer: AnsweredFile): void {
  const differences: string[] = [];
  if (answer.path !== asked.path)
    differences.push(`path ${JSON.stringify(answer.path)} (sent: ${JSON.stringify(asked.path)})`);
  if (answer.size !== asked.size) differences.push(`size ${String(answer.size)} (sent: ${asked.size})`);
  if (asked.sha256 !== undefined && answer.sha256 !== undefined && answer.sha256 !== asked.sha256)
    differences.push(`SHA-256 ${String(answer.sha256)} (sent: ${asked.sha256})`);
  if (differences.length === 0) return;
  throw new UploadError(
    'ANSWER_MISMATCH',
    `${what}: the server answered for another file: ${differences.join(', ')}; ` +
      'not counted as uploaded (damaged on the way?), sending it again',
  );
}
