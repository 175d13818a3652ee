import {
  isWireErrorCode,
  wireErrorCodes,
  type WireErrorCode,
  type WireErrorDetails,
} from '../protocol/errors/wire-errors.js';
import {
  localErrorCodes,
  type FileChangedDetails,
  type LocalErrorCode,
  type NetworkErrorDetails,
  type OptionErrorDetails,
} from './local-errors.js';

/**
 * The one error class of the project, after undici's `lib/core/errors.js`: every failure carries
 * a stable string `code` (safe to match on and to log) and, where there is one, the underlying
 * `cause`. A code is either a wire code (common/protocol/errors/: what a server sends, with its
 * HTTP status) or a local one (common/errors/local-errors.ts: what a program raises for itself);
 * `kind` tells which. Codes map to ROS diagnostic levels (agent/ros/) and process exit codes
 * (common/program/exit-codes.ts), each in one place.
 */

/** Every code, with what it means: the wire contract's and the local ones. */
export const errorCodes = { ...wireErrorCodes, ...localErrorCodes } as const;

export type UploadErrorCode = WireErrorCode | LocalErrorCode;

/** A code is wire or local, never both (a compile error here names the overlap). */
const disjoint: [WireErrorCode & LocalErrorCode] extends [never] ? true : WireErrorCode & LocalErrorCode = true;
void disjoint;

/** The details each code may carry; a code with `never` carries none. */
type LocalErrorDetails = {
  [C in LocalErrorCode]: C extends 'CONFIG_INVALID' | 'CONFIG_UNKNOWN_OPTION'
    ? OptionErrorDetails
    : C extends 'NETWORK'
      ? NetworkErrorDetails
      : C extends 'HTTP_STATUS'
        ? WireErrorDetails
        : C extends 'FILE_CHANGED'
          ? FileChangedDetails
          : never;
};
export type ErrorDetails = { [C in WireErrorCode]: WireErrorDetails } & LocalErrorDetails;

/** Every field any code's details may have, each optional. */
export type AnyErrorDetails = WireErrorDetails & OptionErrorDetails & NetworkErrorDetails & Partial<FileChangedDetails>;

/**
 * The details as an error holds them: its code's fields (required ones stay required), and the
 * other codes' fields as optional, so an error whose code is known only at run time can still be
 * read (`error.details?.status`). Covariant in the code, so `UploadError<'X'>` is an UploadError.
 */
export type DetailsOf<C extends UploadErrorCode> = ErrorDetails[C] & AnyErrorDetails;

export interface UploadErrorOptions<C extends UploadErrorCode = UploadErrorCode> {
  cause?: unknown;
  /** Structured details that are safe to log and to send to a client (never secrets). */
  details?: ErrorDetails[C];
}

export class UploadError<C extends UploadErrorCode = UploadErrorCode> extends Error {
  override readonly name = 'UploadError';
  readonly code: C;
  readonly details: DetailsOf<C> | undefined;

  constructor(code: C, message: string, options: UploadErrorOptions<C> = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details as DetailsOf<C> | undefined;
  }

  /** `wire`: a code of the wire contract (a server may send it); `local`: raised by a program for itself. */
  get kind(): 'wire' | 'local' {
    return isWireErrorCode(this.code) ? 'wire' : 'local';
  }

  toJSON(): { code: C; message: string; details?: DetailsOf<C> } {
    return this.details
      ? { code: this.code, message: this.message, details: this.details }
      : { code: this.code, message: this.message };
  }
}

export function isUploadError<C extends UploadErrorCode = UploadErrorCode>(
  value: unknown,
  code?: C,
): value is UploadError<C> {
  return value instanceof UploadError && (code === undefined || value.code === code);
}

export function isUploadErrorCode(value: unknown): value is UploadErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorCodes, value);
}

export { isWireErrorCode, type WireErrorCode, type WireErrorDetails };
export type { LocalErrorCode } from './local-errors.js';
