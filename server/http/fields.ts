import { UploadError } from '../../common/errors/upload-error.js';

/**
 * Field checks for JSON and form bodies. Each names the field and what was wrong, and throws
 * INVALID_FIELD (400). `null` counts as absent for optional fields, as Python clients send None.
 */
export type Body = Record<string, unknown>;

export function requireObject(body: unknown, what = 'the request body'): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new UploadError('INVALID_FIELD', `${what} must be a JSON object`);
  }
  return body as Body;
}

export function requiredString(body: Body, field: string): string {
  const value = body[field];
  if (value === undefined || value === null) throw missing(field);
  if (typeof value !== 'string') throw wrongType(field, 'a string', value);
  return value;
}

export function optionalString(body: Body, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw wrongType(field, 'a string', value);
  return value;
}

/** A non-negative safe integer (JSON numbers only: "big" and "10" are refused). */
export function requiredInteger(body: Body, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const value = body[field];
  if (value === undefined || value === null) throw missing(field);
  return checkInteger(field, value, min, max);
}

export function optionalInteger(body: Body, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  return checkInteger(field, value, min, max);
}

export function checkInteger(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw wrongType(field, 'an integer', value);
  if (value < min) throw new UploadError('INVALID_FIELD', `${field} must be at least ${min}, not ${value}`);
  if (value > max) throw new UploadError('INVALID_FIELD', `${field} must be at most ${max}, not ${value}`);
  return value;
}

export function optionalBoolean(body: Body, field: string): boolean | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw wrongType(field, 'true or false', value);
  return value;
}

export function optionalObject(body: Body, field: string, maxBytes: number): Record<string, unknown> | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw wrongType(field, 'a JSON object', value);
  if (Buffer.byteLength(JSON.stringify(value)) > maxBytes)
    throw new UploadError('INVALID_FIELD', `${field} is larger than ${maxBytes} bytes of JSON`);
  return value as Record<string, unknown>;
}

/** Lowercase hex of exactly `length` digits (a SHA-256 is 64, an MD5 32). */
export function hexDigest(field: string, value: string, length: number): string {
  if (!new RegExp(`^[0-9a-fA-F]{${length}}$`).test(value)) {
    throw new UploadError('INVALID_FIELD', `${field} must be ${length} hexadecimal digits, not ${preview(value)}`);
  }
  return value.toLowerCase();
}

/** A decimal integer in a URL or form field ("3", not "3.0", "-1" or "0x3"). */
export function parseIndex(field: string, text: string | undefined): number {
  if (text === undefined || text === '') throw missing(field);
  if (!/^\d{1,15}$/.test(text))
    throw new UploadError('INVALID_FIELD', `${field} must be a non-negative integer, not ${preview(text)}`);
  return Number(text);
}

function missing(field: string): UploadError {
  return new UploadError('INVALID_FIELD', `${field} is required`);
}

function wrongType(field: string, expected: string, value: unknown): UploadError {
  return new UploadError('INVALID_FIELD', `${field} must be ${expected}, not ${preview(value)}`);
}

export function preview(value: unknown): string {
  const text =
    typeof value === 'string'
      ? JSON.stringify(value)
      : value === undefined
        ? 'undefined'
        : (JSON.stringify(value) ?? String(value));
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}
