import { UploadError } from '../errors/upload-error.js';
import { describeCharacter } from './character-names.js';
import { MAX_PATH_BYTES, MAX_SEGMENT_BYTES } from './native-protocol.js';

/**
 * The characters no path may contain, on either side: Unicode's controls (Cc: C0, DEL and C1),
 * format characters (Cf: the bidirectional controls that make `gpj.mcap` display as `mcap.jpg`,
 * zero-width characters, the byte order mark, the soft hyphen, invisible tags), the line and
 * paragraph separators (Zl, Zp), and the 66 noncharacters. Each of them is invisible or moves
 * other text when a name is displayed, so two names that look alike could name two files, or a
 * log line could lie about which file it names. Private-use (Co) and unassigned (Cn) code points
 * are accepted: they are drawn as a visible glyph or box and move nothing, private-use
 * characters are what macOS and Samba store for characters Windows forbids, and whether a code
 * point is assigned depends on each program's Unicode version, so refusing Cn would make an agent
 * and a server of different Node versions disagree.
 */
const REFUSED_CHARACTER = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Noncharacter_Code_Point}]/u;
const REFUSED_CHARACTERS = new RegExp(REFUSED_CHARACTER.source, 'gu');

/** Paths are shown up to this many characters in messages. */
const SHOWN_CHARACTERS = 160;

/** The first refused character in `text`: its description and byte offset (from 0) in UTF-8. */
export function refusedCharacterIn(text: string): { description: string; byteOffset: number } | undefined {
  const match = REFUSED_CHARACTER.exec(text);
  if (!match) return undefined;
  return {
    description: describeCharacter(match[0].codePointAt(0) ?? 0),
    byteOffset: Buffer.byteLength(text.slice(0, match.index)),
  };
}

/**
 * `text` with every refused character written as `\u{202E}`, so that a terminal or a log viewer
 * shows it instead of obeying it (a name is printed as it is, not as it would display).
 */
export function escapeRefusedCharacters(text: string): string {
  return text.replace(
    REFUSED_CHARACTERS,
    (character) => `\\u{${(character.codePointAt(0) ?? 0).toString(16).toUpperCase()}}`,
  );
}

/** A path as a message shows it: quoted, refused characters escaped, cut after 160 characters. */
export function showPath(text: string): string {
  const cut = text.length > SHOWN_CHARACTERS ? `${text.slice(0, SHOWN_CHARACTERS)}…` : text;
  return `"${escapeRefusedCharacters(cut)}"`;
}

/**
 * Validates and normalises a client-supplied relative path (Unicode NFC, `/` separators): the
 * one rule for the agent (before it uploads a file), the native API and the legacy API's
 * filename. Refused with INVALID_PATH and a message naming the problem: empty, absolute, `..` or
 * `.` segments, a control, format or separator character (named by code point, with its byte
 * offset), unpaired surrogates, backslashes, Windows drive letters, over-long paths or segments.
 * The server additionally refuses paths that would leave the storage root through a symlink
 * (server/storage/).
 */
export function normaliseRelativePath(input: unknown, field = 'path'): string {
  if (typeof input !== 'string') throw invalid(`${field} must be a string`);
  const value = input.normalize('NFC');
  if (value.length === 0) throw invalid(`${field} must not be empty`);
  // An unpaired surrogate is not text: it would be stored as U+FFFD, so two different paths
  // could name one file, and the path answered could not be sent back (it has no UTF-8 form).
  if (/[\uD800-\uDFFF]/u.test(value))
    throw invalid(`${field} is not valid Unicode (it contains an unpaired surrogate)`);
  const refused = refusedCharacterIn(value);
  if (refused) {
    const where = `${refused.description} at byte ${refused.byteOffset} of ${showPath(value)}`;
    throw invalid(`${field} must not contain control, invisible format or separator characters: ${where}`);
  }
  if (value.includes('\\')) throw invalid(`${field} must not contain a backslash`);
  if (value.startsWith('/')) throw invalid(`${field} must be relative, not absolute: ${showPath(value)}`);
  if (/^[a-zA-Z]:/.test(value)) throw invalid(`${field} must be relative, not a drive path: ${showPath(value)}`);
  if (Buffer.byteLength(value) > MAX_PATH_BYTES) throw invalid(`${field} is longer than ${MAX_PATH_BYTES} bytes`);
  const segments = value.split('/').filter((segment) => segment !== '');
  if (segments.length === 0) throw invalid(`${field} must name a file`);
  for (const segment of segments) {
    if (segment === '..') throw invalid(`${field} must not contain "..": ${showPath(value)}`);
    if (segment === '.') throw invalid(`${field} must not contain "." segments: ${showPath(value)}`);
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES)
      throw invalid(`${field} has a segment longer than ${MAX_SEGMENT_BYTES} bytes`);
  }
  return segments.join('/');
}

function invalid(message: string): UploadError {
  return new UploadError('INVALID_PATH', message);
}
