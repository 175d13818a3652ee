import { describe, expect, it } from 'vitest';
import { UploadError } from '../../common/errors/upload-error.js';
import { describeCharacter } from '../../common/protocol/character-names.js';
import { escapeRefusedCharacters, normaliseRelativePath } from '../../common/protocol/relative-path.js';

/** The refusal of `path`, or undefined when it is accepted. */
function refusal(path: string): string | undefined {
  try {
    normaliseRelativePath(path);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(UploadError);
    expect((error as UploadError).code).toBe('INVALID_PATH');
    return (error as Error).message;
  }
}

describe('the path rule: control, format and separator characters', () => {
  // Each class the hardening issue names, with the name the message must give.
  const refused: [number, string][] = [
    [0x00, 'NULL'],
    [0x01, 'START OF HEADING'],
    [0x09, 'CHARACTER TABULATION'],
    [0x0a, 'LINE FEED'],
    [0x1b, 'ESCAPE'],
    [0x1f, 'INFORMATION SEPARATOR ONE'],
    [0x7f, 'DELETE'],
    [0x80, 'PADDING CHARACTER'],
    [0x85, 'NEXT LINE'],
    [0x9b, 'CONTROL SEQUENCE INTRODUCER'],
    [0x9f, 'APPLICATION PROGRAM COMMAND'],
    [0xad, 'SOFT HYPHEN'],
    [0x061c, 'ARABIC LETTER MARK'],
    [0x200b, 'ZERO WIDTH SPACE'],
    [0x200c, 'ZERO WIDTH NON-JOINER'],
    [0x200d, 'ZERO WIDTH JOINER'],
    [0x200e, 'LEFT-TO-RIGHT MARK'],
    [0x200f, 'RIGHT-TO-LEFT MARK'],
    [0x2028, 'LINE SEPARATOR'],
    [0x2029, 'PARAGRAPH SEPARATOR'],
    [0x202a, 'LEFT-TO-RIGHT EMBEDDING'],
    [0x202b, 'RIGHT-TO-LEFT EMBEDDING'],
    [0x202c, 'POP DIRECTIONAL FORMATTING'],
    [0x202d, 'LEFT-TO-RIGHT OVERRIDE'],
    [0x202e, 'RIGHT-TO-LEFT OVERRIDE'],
    [0x2060, 'WORD JOINER'],
    [0x2066, 'LEFT-TO-RIGHT ISOLATE'],
    [0x2067, 'RIGHT-TO-LEFT ISOLATE'],
    [0x2068, 'FIRST STRONG ISOLATE'],
    [0x2069, 'POP DIRECTIONAL ISOLATE'],
    [0xfeff, 'ZERO WIDTH NO-BREAK SPACE (BYTE ORDER MARK)'],
    [0xe0001, 'LANGUAGE TAG'],
    [0xe0041, 'TAG "A" (an invisible tag character)'],
    [0x1d173, '(an invisible format character)'],
    [0xfdd0, '(a noncharacter, never assigned)'],
    [0xfffe, '(a noncharacter, never assigned)'],
    [0x10ffff, '(a noncharacter, never assigned)'],
  ];

  it('refuses each one, naming it by code point and name, with its byte offset in UTF-8', () => {
    for (const [codePoint, name] of refused) {
      const character = String.fromCodePoint(codePoint);
      const label = `U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}`;
      // "run1/abcdefg" is 12 bytes: the character is at byte 12.
      const message = refusal(`run1/abcdefg${character}x.mcap`);
      expect(message, label).toBeDefined();
      expect(message).toContain(`${label} ${name} at byte 12 `);
      // The message never carries the character itself (a terminal would obey it).
      expect(message!.includes(character), label).toBe(false);
      expect(message).toContain(`\\u{${codePoint.toString(16).toUpperCase()}}`);
    }
  });

  it('counts the byte offset in UTF-8 bytes, whatever precedes the character', () => {
    expect(refusal('ü/日本\u202Egpj.mcap')).toContain('U+202E RIGHT-TO-LEFT OVERRIDE at byte 9 ');
    expect(refusal('\u2066x')).toContain('U+2066 LEFT-TO-RIGHT ISOLATE at byte 0 ');
    // A character outside the BMP before it counts 4 bytes.
    expect(refusal('🤖\u0085')).toContain('U+0085 NEXT LINE at byte 4 ');
  });

  it('names the first of several refused characters, and says what the rule is', () => {
    const message = refusal('a/b\u200Bc\u202Ed');
    expect(message).toBe(
      'path must not contain control, invisible format or separator characters: ' +
        'U+200B ZERO WIDTH SPACE at byte 3 of "a/b\\u{200B}c\\u{202E}d"',
    );
  });

  it('accepts private-use and unassigned code points, other spaces, accents, scripts and emoji', () => {
    for (const path of [
      'run1/\uE000private.mcap', // Co, BMP (macOS and Samba store characters Windows forbids here)
      'run1/\u{F0001}.mcap', // Co, plane 15
      'run1/\u0378unassigned.mcap', // Cn (unassigned in every Unicode version so far)
      'run1/no\u00A0break space.mcap', // Zs
      'Prüfstand/Ångström_日本語_🤖.mcap',
      'run 1/file with spaces.db3',
      'run1/e\u0301.mcap', // a combining mark (normalised to NFC)
    ]) {
      expect(refusal(path), path).toBeUndefined();
    }
    expect(normaliseRelativePath('run1/e\u0301.mcap')).toBe('run1/\u00E9.mcap');
  });

  it('escapes refused characters for display and leaves everything else as it is', () => {
    expect(escapeRefusedCharacters('a\u202Eb\u0007c日')).toBe('a\\u{202E}b\\u{7}c日');
    expect(describeCharacter(0x202e)).toBe('U+202E RIGHT-TO-LEFT OVERRIDE');
    expect(describeCharacter(0x9)).toBe('U+0009 CHARACTER TABULATION');
  });
});
