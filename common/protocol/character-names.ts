/**
 * Names of the characters a path may not contain (relative-path.ts), so a refusal can say which
 * one it found: `U+202E RIGHT-TO-LEFT OVERRIDE`. Controls have no Unicode name; they get their
 * formal alias (Unicode's NameAliases.txt). Format characters outside this table (Egyptian
 * hieroglyph and musical format controls, the invisible tag characters) are described by their
 * category instead.
 */
const C0_CONTROLS = [
  'NULL',
  'START OF HEADING',
  'START OF TEXT',
  'END OF TEXT',
  'END OF TRANSMISSION',
  'ENQUIRY',
  'ACKNOWLEDGE',
  'ALERT',
  'BACKSPACE',
  'CHARACTER TABULATION',
  'LINE FEED',
  'LINE TABULATION',
  'FORM FEED',
  'CARRIAGE RETURN',
  'SHIFT OUT',
  'SHIFT IN',
  'DATA LINK ESCAPE',
  'DEVICE CONTROL ONE',
  'DEVICE CONTROL TWO',
  'DEVICE CONTROL THREE',
  'DEVICE CONTROL FOUR',
  'NEGATIVE ACKNOWLEDGE',
  'SYNCHRONOUS IDLE',
  'END OF TRANSMISSION BLOCK',
  'CANCEL',
  'END OF MEDIUM',
  'SUBSTITUTE',
  'ESCAPE',
  'INFORMATION SEPARATOR FOUR',
  'INFORMATION SEPARATOR THREE',
  'INFORMATION SEPARATOR TWO',
  'INFORMATION SEPARATOR ONE',
];

const C1_CONTROLS = [
  'PADDING CHARACTER',
  'HIGH OCTET PRESET',
  'BREAK PERMITTED HERE',
  'NO BREAK HERE',
  'INDEX',
  'NEXT LINE',
  'START OF SELECTED AREA',
  'END OF SELECTED AREA',
  'CHARACTER TABULATION SET',
  'CHARACTER TABULATION WITH JUSTIFICATION',
  'LINE TABULATION SET',
  'PARTIAL LINE FORWARD',
  'PARTIAL LINE BACKWARD',
  'REVERSE LINE FEED',
  'SINGLE SHIFT TWO',
  'SINGLE SHIFT THREE',
  'DEVICE CONTROL STRING',
  'PRIVATE USE ONE',
  'PRIVATE USE TWO',
  'SET TRANSMIT STATE',
  'CANCEL CHARACTER',
  'MESSAGE WAITING',
  'START OF GUARDED AREA',
  'END OF GUARDED AREA',
  'START OF STRING',
  'SINGLE GRAPHIC CHARACTER INTRODUCER',
  'SINGLE CHARACTER INTRODUCER',
  'CONTROL SEQUENCE INTRODUCER',
  'STRING TERMINATOR',
  'OPERATING SYSTEM COMMAND',
  'PRIVACY MESSAGE',
  'APPLICATION PROGRAM COMMAND',
];

/** Format characters and separators by code point (Unicode's names). */
const FORMAT_CHARACTERS: Readonly<Record<number, string>> = {
  173: 'SOFT HYPHEN',
  1536: 'ARABIC NUMBER SIGN',
  1537: 'ARABIC SIGN SANAH',
  1538: 'ARABIC FOOTNOTE MARKER',
  1539: 'ARABIC SIGN SAFHA',
  1540: 'ARABIC SIGN SAMVAT',
  1541: 'ARABIC NUMBER MARK ABOVE',
  1564: 'ARABIC LETTER MARK',
  1757: 'ARABIC END OF AYAH',
  1807: 'SYRIAC ABBREVIATION MARK',
  2192: 'ARABIC POUND MARK ABOVE',
  2193: 'ARABIC PIASTRE MARK ABOVE',
  2274: 'ARABIC DISPUTED END OF AYAH',
  6158: 'MONGOLIAN VOWEL SEPARATOR',
  8203: 'ZERO WIDTH SPACE',
  8204: 'ZERO WIDTH NON-JOINER',
  8205: 'ZERO WIDTH JOINER',
  8206: 'LEFT-TO-RIGHT MARK',
  8207: 'RIGHT-TO-LEFT MARK',
  8232: 'LINE SEPARATOR',
  8233: 'PARAGRAPH SEPARATOR',
  8234: 'LEFT-TO-RIGHT EMBEDDING',
  8235: 'RIGHT-TO-LEFT EMBEDDING',
  8236: 'POP DIRECTIONAL FORMATTING',
  8237: 'LEFT-TO-RIGHT OVERRIDE',
  8238: 'RIGHT-TO-LEFT OVERRIDE',
  8288: 'WORD JOINER',
  8289: 'FUNCTION APPLICATION',
  8290: 'INVISIBLE TIMES',
  8291: 'INVISIBLE SEPARATOR',
  8292: 'INVISIBLE PLUS',
  8294: 'LEFT-TO-RIGHT ISOLATE',
  8295: 'RIGHT-TO-LEFT ISOLATE',
  8296: 'FIRST STRONG ISOLATE',
  8297: 'POP DIRECTIONAL ISOLATE',
  8298: 'INHIBIT SYMMETRIC SWAPPING',
  8299: 'ACTIVATE SYMMETRIC SWAPPING',
  8300: 'INHIBIT ARABIC FORM SHAPING',
  8301: 'ACTIVATE ARABIC FORM SHAPING',
  8302: 'NATIONAL DIGIT SHAPES',
  8303: 'NOMINAL DIGIT SHAPES',
  65279: 'ZERO WIDTH NO-BREAK SPACE (BYTE ORDER MARK)',
  65529: 'INTERLINEAR ANNOTATION ANCHOR',
  65530: 'INTERLINEAR ANNOTATION SEPARATOR',
  65531: 'INTERLINEAR ANNOTATION TERMINATOR',
  69821: 'KAITHI NUMBER SIGN',
  69837: 'KAITHI NUMBER SIGN ABOVE',
  917505: 'LANGUAGE TAG',
  917631: 'CANCEL TAG',
};

/** `U+0041`: the code point in upper-case hex, at least four digits. */
export function codePointLabel(codePoint: number): string {
  return `U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * `U+202E RIGHT-TO-LEFT OVERRIDE`: the code point and the character's name (or alias); for a
 * character without an entry here, what kind of character it is.
 */
export function describeCharacter(codePoint: number): string {
  const label = codePointLabel(codePoint);
  if (codePoint < 0x20) return `${label} ${C0_CONTROLS[codePoint]}`;
  if (codePoint === 0x7f) return `${label} DELETE`;
  if (codePoint >= 0x80 && codePoint <= 0x9f) return `${label} ${C1_CONTROLS[codePoint - 0x80]}`;
  const name = FORMAT_CHARACTERS[codePoint];
  if (name !== undefined) return `${label} ${name}`;
  if (codePoint >= 0xe0020 && codePoint <= 0xe007e)
    return `${label} TAG ${JSON.stringify(String.fromCodePoint(codePoint - 0xe0000))} (an invisible tag character)`;
  if (/\p{Noncharacter_Code_Point}/u.test(String.fromCodePoint(codePoint)))
    return `${label} (a noncharacter, never assigned)`;
  return `${label} (an invisible format character)`;
}
