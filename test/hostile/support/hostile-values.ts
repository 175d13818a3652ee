import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { RawJson, chunkedFaults, type Framing } from './http-bytes.js';

/**
 * Adversarial values for the server's inputs, as fast-check arbitraries: paths, numbers, ids,
 * chunk indexes, auth headers, content types and encodings, and body framings.
 */

/**
 * Every file name the fuzzer makes contains this, so a stray file is found wherever it lands,
 * even in the shared temp folder. Seven letters that no other program's temporary names contain
 * (gcc's `ccXXXXXX.s` have six random ones: a three-letter mark once matched one of them), and
 * new for every test process: a stray file another run left (this suite in another checkout, at
 * the same time or earlier) is not this run's finding.
 */
export const MARK = `hx${Array.from(randomBytes(5), (byte) => String.fromCharCode(97 + (byte % 26))).join('')}`;

/** Replaced at run time by the absolute path of a folder outside the storage root. */
export const OUTSIDE = '{{OUTSIDE}}';

/** Names planted as symlinks inside the storage root, pointing outside it (see fuzz-target.ts). */
export const SYMLINK_DIR = 'escape-dir';
export const SYMLINK_FILE = 'evil.bin';

const segmentPieces = [
  `${MARK}.bin`,
  `run1_0.mcap`,
  'metadata.yaml',
  '..',
  '.',
  '...',
  '',
  ' ',
  '.hidden',
  'a b',
  MARK,
  'e\u0301', // NFD
  '\u00e9', // NFC
  '\u212b', // ANGSTROM SIGN, NFC → U+00C5
  '\u202e', // RIGHT-TO-LEFT OVERRIDE
  '\u200f', // RIGHT-TO-LEFT MARK
  '\u200d', // ZERO WIDTH JOINER
  '\ufeff', // BOM
  '\ud800', // lone high surrogate
  '\udc00', // lone low surrogate
  '\udc00\ud800', // reversed pair
  '\ud83d\ude00', // emoji
  '\ud83d\udc68\u200d\ud83d\udc69\u200d\ud83d\udc67', // ZWJ sequence
  '\uff0f', // FULLWIDTH SOLIDUS
  '\uff0e\uff0e', // FULLWIDTH FULL STOPs
  '\u2215', // DIVISION SLASH
  '\u2024\u2024', // ONE DOT LEADERs
  '\uffff', // noncharacter
  '\u0000',
  '\u0001',
  '\n',
  '\r',
  '\u007f',
  '\u0085', // NEL
  '\u2028', // LINE SEPARATOR
  '\\',
  '..\\..',
  'C:',
  'CON',
  'nul',
  '%2e%2e',
  '%2f',
  '%00',
  '*',
  '?',
  '<>|',
  '"',
  "'",
  `$(touch ${MARK})`,
  SYMLINK_DIR,
  SYMLINK_FILE,
  'x'.repeat(255),
  'x'.repeat(256),
  `${MARK}${'y'.repeat(251 - MARK.length)}.bag`, // 255 bytes
  '\u00e9'.repeat(127), // 254 bytes
  '\u00e9'.repeat(128), // 256 bytes
  '\ud83d\ude00'.repeat(64), // 256 bytes
];

const segment: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...segmentPieces) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom(...segmentPieces), fc.constantFrom(...segmentPieces))
      .map(([a, b]) => `${MARK}${a}${b}`),
  },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }).map((s) => `${MARK}${s}`) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }).map((s) => `${s}.${MARK}`) },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9._-]{1,16}$/).map((s) => `${MARK}-${s}`) },
);

/** Relative paths as a client might send them: plausible, traversal, absolute, odd Unicode, over-long. */
export const pathArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/')) },
  { weight: 1, arbitrary: fc.array(segment, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('\\')) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 8 }).map((n) => `${'../'.repeat(n)}outside/${MARK}-dotdot.bin`) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 5 }).map((n) => `a/${'../'.repeat(n)}${MARK}.bin`) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      `${OUTSIDE}/${MARK}-abs.bin`,
      `/tmp/${MARK}-abs.bin`,
      `/${MARK}-root.bin`,
      `//${MARK}.bin`,
      `C:\\${MARK}.bin`,
      `C:/${MARK}.bin`,
      `\\\\server\\share\\${MARK}`,
      `file:///${MARK}`,
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      `${SYMLINK_DIR}/${MARK}-via-link.bin`,
      SYMLINK_FILE,
      SYMLINK_DIR,
      `${SYMLINK_DIR}/../${MARK}.bin`,
      `${SYMLINK_DIR}/sub/${MARK}.bin`,
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '',
      '/',
      '//',
      'a//b',
      `${MARK}/`,
      `./${MARK}`,
      `${MARK}/.`,
      `${MARK}\u0000.bin`,
      `${MARK}.bin\u0000.txt`,
    ),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1000, max: 1100 }).map((n) => `${MARK}/${'d/'.repeat(Math.floor(n / 2))}`.slice(0, n)),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      `${MARK}-${'p'.repeat(1023 - MARK.length)}`, // 1024 bytes
      `${'x'.repeat(250)}/${'y'.repeat(250)}/${'z'.repeat(250)}/${'w'.repeat(250)}/${MARK}`,
    ),
  },
);

/** Numbers and things that are not quite numbers: for sizes, chunk counts, chunk sizes. */
export const numberLikeArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 5000 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      -1,
      -0.5,
      0,
      1.5,
      1023,
      1024,
      64 * 1024 * 1024,
      64 * 1024 * 1024 + 1,
      2 ** 31,
      2 ** 32,
      2 ** 53 - 1,
      -(2 ** 53),
      5 * 1024 ** 3,
      5 * 1024 ** 3 + 1,
      Number.MAX_VALUE,
      Number.MIN_VALUE,
      new RawJson('9007199254740993'),
      new RawJson('18446744073709551616'),
      new RawJson('1e400'),
      new RawJson('-1e400'),
      new RawJson('-0'),
      new RawJson('1e3'),
      new RawJson('1E-7'),
      new RawJson('0.0'),
      new RawJson(`1${'0'.repeat(400)}`),
      '10',
      'NaN',
      'Infinity',
      '-1',
      '1e3',
      '0x10',
      '',
      ' 5',
      null,
      true,
      [],
      {},
      [5],
    ),
  },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.integer() },
);

const HEX64 = /^[0-9a-f]{64}$/;

export const fingerprintLikeArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.stringMatching(HEX64).map((hex) => `fp1:${hex}`),
  fc.constantFrom(
    `fp1:${'0'.repeat(64)}`,
    `FP1:${'0'.repeat(64)}`,
    `fp1:${'A'.repeat(64)}`,
    `fp1:${'0'.repeat(63)}`,
    'fp1:',
    '',
    `fp2:${'0'.repeat(64)}`,
    42,
    null,
    ['fp1:'],
    { fp: 1 },
  ),
);

export const sha256LikeArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.stringMatching(HEX64),
  fc.constantFrom(
    '0'.repeat(64),
    'A'.repeat(64),
    'g'.repeat(64),
    '0'.repeat(63),
    '0'.repeat(65),
    '',
    `sha256:${'0'.repeat(64)}`,
    7,
    null,
    [],
    {},
    `${'0'.repeat(64)}\u0000`,
  ),
);

export const md5LikeArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.stringMatching(/^[0-9a-f]{32}$/),
  fc.constantFrom('md5hash', '', 'Z'.repeat(32), '0'.repeat(31), 5, null, true),
);

/** A metadata value: plausible objects, non-objects, huge, deeply nested, prototype keys. */
export const metadataArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      null,
      'robot',
      7,
      [1, 2],
      true,
      new RawJson(`{${'"__proto__":{"polluted":true},'}"constructor":{"prototype":{"x":1}}}`),
      new RawJson(`{"deep":${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}}`),
      new RawJson(`{"deep":${'['.repeat(12_000)}${']'.repeat(12_000)}}`),
      new RawJson(`{"big":"${'x'.repeat(66 * 1024)}"}`),
      new RawJson(`{"s":"\\ud800","t":"\\u0000"}`),
      new RawJson('{"a":1,"a":2}'),
    ),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 1, max: 400 })
      .map((depth) => new RawJson(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`)),
  },
);

/** Session ids that are not ids of anything: unknown UUIDs, traversal, SQL, over-long, encoded. */
export const foreignIdArb: fc.Arbitrary<string> = fc.oneof(
  fc.uuid(),
  fc.constantFrom(
    '',
    'x'.repeat(101),
    'x'.repeat(5000),
    '..',
    '..%2F..%2F..%2Foutside',
    '%2e%2e',
    '%00',
    '%ZZ',
    '%E0%A4%A',
    "1' OR '1'='1",
    "'; DROP TABLE sessions; --",
    'incoming',
    'compress-x.gz',
    'null',
    'undefined',
    '__proto__',
    'constructor',
    '%F0%9F%98%80',
    '%C0%AE%C0%AE',
    '0',
    '-1',
  ),
  fc.string({ unit: 'grapheme-ascii', maxLength: 20 }).map(encodeURIComponent),
);

/** Chunk indexes as they appear in a URL or a form field. */
export const indexTextArb = (
  chunkCount: fc.Arbitrary<number> = fc.constant(4),
): fc.Arbitrary<(count: number) => string> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.nat({ max: 8 }).map((i) => (count: number) => String(i % Math.max(1, count + 1))) },
    { weight: 1, arbitrary: chunkCount.map(() => (count: number) => String(count)) },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom(
          '-1',
          '1e3',
          '0x1',
          ' 1',
          '1.0',
          'NaN',
          '99999999999999999999',
          '9007199254740993',
          '4294967296',
          '+1',
          '01',
          '',
          '%31',
          '1%00',
          '０',
          '१',
          '1 ',
          'Infinity',
          '[0]',
        )
        .map((text) => () => text),
    },
  );

/** Authorization header choices; `owner`/`other` are resolved against the session a case targets. */
export type AuthChoice =
  | { kind: 'none' }
  | { kind: 'owner' }
  | { kind: 'other' }
  | { kind: 'robot1' }
  | { kind: 'robot2' }
  | { kind: 'wrong' }
  | { kind: 'malformed'; header: string }
  | { kind: 'twice' };

export const authArb: fc.Arbitrary<AuthChoice> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<AuthChoice>({ kind: 'owner' }) },
  { weight: 2, arbitrary: fc.constant<AuthChoice>({ kind: 'other' }) },
  { weight: 1, arbitrary: fc.constant<AuthChoice>({ kind: 'none' }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<AuthChoice>(
      { kind: 'robot1' },
      { kind: 'robot2' },
      { kind: 'wrong' },
      { kind: 'twice' },
    ),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(
        'Bearer',
        'Bearer ',
        'Bearer  ',
        'Basic dXNlcjpwYXNz',
        'Token abc',
        'Bearer a b',
        'Bearer\ttoken-with-tab',
        `Bearer ${'t'.repeat(10_000)}`,
        'Bearer ../../etc/passwd',
        'Bearer \u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9',
        'Bearer null',
        'Negotiate YII=',
        'bearer',
        ',',
      )
      .map((header) => ({ kind: 'malformed', header }) as AuthChoice),
  },
);

export const jsonContentTypeArb: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      undefined,
      'application/json; charset=utf-8',
      'application/json; charset=utf-16',
      'application/json; charset=klingon',
      'APPLICATION/JSON',
      'application/vnd.api+json',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data',
      'multipart/form-data; boundary=x',
      'application/octet-stream',
      'application/json, text/plain',
      '',
      ';;;',
      `application/json; charset="utf-8"; x=${'y'.repeat(3000)}`,
    ),
  },
);

export type BodyEncoding =
  | 'identity'
  | 'gzip'
  | 'gzip-garbage'
  | 'gzip-bomb'
  | 'gzip-truncated'
  | 'deflate-garbage'
  | 'br'
  | 'unknown'
  | 'double-gzip-header'
  | 'x-gzip';

export const encodingArb: fc.Arbitrary<BodyEncoding> = fc.oneof(
  { weight: 8, arbitrary: fc.constant<BodyEncoding>('identity') },
  {
    weight: 3,
    arbitrary: fc.constantFrom<BodyEncoding>(
      'gzip',
      'gzip-garbage',
      'gzip-bomb',
      'gzip-truncated',
      'deflate-garbage',
      'br',
      'unknown',
      'double-gzip-header',
      'x-gzip',
    ),
  },
);

export const framingArb: fc.Arbitrary<Framing> = fc.oneof(
  { weight: 12, arbitrary: fc.constant<Framing>({ kind: 'length' }) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 4 }).map((pieces): Framing => ({ kind: 'chunked', pieces })) },
  { weight: 1, arbitrary: fc.constant<Framing>({ kind: 'no-length' }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 40 }).map((by): Framing => ({ kind: 'length-short', by })) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 100_000 }).map((by): Framing => ({ kind: 'length-long', by })) },
  {
    weight: 2,
    arbitrary: fc
      .record({ keep: fc.double({ min: 0, max: 0.99, noNaN: true }), abrupt: fc.boolean() })
      .map((cut): Framing => ({ kind: 'cut', ...cut })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(...chunkedFaults).map((variant): Framing => ({ kind: 'chunked-bad', variant })),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(
        'abc',
        '-1',
        '+5',
        '1e3',
        ' 5 ',
        '0x10',
        '99999999999999999999',
        '18446744073709551616',
        '',
        '5, 5',
        '1.0',
        '\u0665',
      )
      .map((value): Framing => ({ kind: 'length-invalid', value })),
  },
  { weight: 1, arbitrary: fc.nat({ max: 100 }).map((other): Framing => ({ kind: 'length-twice', other })) },
  { weight: 1, arbitrary: fc.constant<Framing>({ kind: 'length-and-chunked' }) },
  { weight: 1, arbitrary: fc.constant<Framing>({ kind: 'expect-continue' }) },
  { weight: 1, arbitrary: fc.integer({ min: 2, max: 5 }).map((pieces): Framing => ({ kind: 'trickle', pieces })) },
);

/** Methods, valid and not. */
export const oddMethodArb: fc.Arbitrary<string> = fc.constantFrom(
  'GET',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'HEAD',
  'OPTIONS',
  'TRACE',
  'PROPFIND',
  'MKCOL',
  'SEARCH',
  'PURGE',
  'FOO',
  'get',
  'G ET',
  'CONNECT',
);

/** Extra headers a hostile client adds. */
export const extraHeadersArb: fc.Arbitrary<[string, string][]> = fc.oneof(
  { weight: 6, arbitrary: fc.constant<[string, string][]>([]) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<[string, string][]>(
      [['Connection', 'close']],
      [
        ['Connection', 'upgrade'],
        ['Upgrade', 'websocket'],
      ],
      [
        ['Upgrade', 'h2c'],
        ['Connection', 'Upgrade, HTTP2-Settings'],
        ['HTTP2-Settings', 'AAMAAABkAARAAAAA'],
      ],
      [['X-Forwarded-For', '1.2.3.4, 127.0.0.1']],
      [['X-Padding', 'p'.repeat(17_000)]],
      [
        ['Host', 'a'],
        ['Host', 'b'],
      ],
      [['X-Injected', 'a\r\nX-Evil: 1']],
      [['X-Bad\u0000Name', '1']],
      [['Transfer-Encoding', 'identity']],
      [
        ['Content-Encoding', 'gzip'],
        ['Content-Encoding', 'br'],
      ],
      [['Accept-Encoding', 'gzip, br']],
      [['Range', 'bytes=0-10']],
      [['X-HTTP-Method-Override', 'DELETE']],
      [[' Leading-Space', '1']],
      [
        ['Content-Type', 'text/plain'],
        ['Content-Type', 'application/json'],
      ],
    ),
  },
);
