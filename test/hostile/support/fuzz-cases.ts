import { createHash } from 'node:crypto';
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { Crc32, formatChunkChecksum } from '../../../common/protocol/chunk-checksum.js';
import { fingerprintOf, fingerprintRanges } from '../../../common/protocol/fingerprint.js';
import {
  gzipBomb,
  JsonPairs,
  jsonText,
  multipartBody,
  RawJson,
  toWire,
  type FormPart,
  type Framing,
  type RequestSpec,
} from './http-bytes.js';
import {
  authArb,
  encodingArb,
  extraHeadersArb,
  fingerprintLikeArb,
  foreignIdArb,
  framingArb,
  jsonContentTypeArb,
  MARK,
  md5LikeArb,
  metadataArb,
  numberLikeArb,
  oddMethodArb,
  OUTSIDE,
  pathArb,
  sha256LikeArb,
  type AuthChoice,
  type BodyEncoding,
} from './hostile-values.js';
import type { FuzzServer, TokenUploader } from './fuzz-target.js';
import { jsonOf, type RawExchange, type RawResponse } from './raw-http.js';

/**
 * The hostile requests of the property test, as data (fast-check arbitraries) and their
 * execution against the servers. A case targets one route; some cases are small scenarios
 * (concurrent completes, finalizes, cancels and creates of one upload). Cases that target a
 * session pick it at run time from the sessions earlier cases created (the pool), or use the
 * legitimate uploads running alongside, or ids of nothing.
 */

export type Uploader = TokenUploader | 'anonymous';

export type Target =
  | { kind: 'pool'; pick: number }
  | { kind: 'legit-native' }
  | { kind: 'legit-legacy' }
  | { kind: 'foreign'; id: string };
export type IndexChoice = { kind: 'in-range'; n: number } | { kind: 'count' } | { kind: 'text'; text: string };
export type ChunkPayload = 'exact' | 'flipped' | 'short' | 'long' | 'empty' | 'random' | 'huge';
export type CrcChoice = { kind: 'right' } | { kind: 'wrong' } | { kind: 'missing' } | { kind: 'raw'; value: string };
export type ChecksumChoice =
  | { kind: 'right' }
  | { kind: 'wrong' }
  | { kind: 'none' }
  | { kind: 'hostile'; value: unknown };
export type BodyOverride = { kind: 'none' } | { kind: 'raw'; text: string } | { kind: 'bytes'; bytes: number[] };

export interface Wire {
  framing: Framing;
  encoding: BodyEncoding;
  extraHeaders: [string, string][];
  /** Another method than the route's. */
  method: string | undefined;
  /** `default`: the route's content type; otherwise this one (undefined: no Content-Type). */
  contentType: 'default' | { value: string | undefined };
  override: BodyOverride;
}

export type FuzzCase = { server: number; auth: AuthChoice; wire: Wire } & (
  | { kind: 'create'; valid: ValidCreate; mutation: Mutation }
  | {
      kind: 'chunk';
      target: Target;
      index: IndexChoice;
      payload: ChunkPayload;
      crc: CrcChoice;
      contentTypeOctet: string | undefined;
    }
  | { kind: 'complete'; target: Target; sha: ChecksumChoice }
  | { kind: 'cancel'; target: Target }
  | { kind: 'status'; target: Target }
  | { kind: 'file'; path: string; style: 'encoded' | 'raw' | 'double' }
  | {
      kind: 'put-file';
      path: string;
      style: 'encoded' | 'raw' | 'double';
      size: number;
      seed: number;
      sha: ChecksumChoice;
      metadata: MetadataHeader;
      replace: string | undefined;
      contentTypeOctet: string | undefined;
    }
  | {
      kind: 'race-put';
      uploader: number;
      path: string;
      size: number;
      n: number;
      differ: boolean;
      replace: boolean;
      seed: number;
    }
  | { kind: 'race-nest'; uploader: number; depth: number; replace: boolean; seed: number }
  | { kind: 'legacy-init'; valid: ValidLegacyInit; mutation: Mutation }
  | { kind: 'legacy-chunk'; target: Target; form: LegacyForm }
  | { kind: 'legacy-finalize'; target: Target; checksum: ChecksumChoice }
  | { kind: 'legacy-status'; target: Target }
  | { kind: 'list' }
  | { kind: 'health' }
  | { kind: 'unknown'; method: string; path: string }
  | {
      kind: 'race-native';
      uploader: number;
      path: string;
      size: number;
      chunkSize: number;
      completes: number;
      wrongCompletes: number;
      cancels: number;
      resends: number;
      seed: number;
    }
  | {
      kind: 'race-legacy';
      uploader: number;
      path: string;
      size: number;
      chunks: number;
      finalizes: number;
      wrongFinalizes: number;
      statuses: number;
      again: boolean;
      seed: number;
    }
  | { kind: 'race-create'; uploader: number; path: string; size: number; n: number; seed: number }
  | { kind: 'finish'; pick: number }
);

/**
 * How a JSON body is spoiled: not at all, one or two fields of a valid body replaced by hostile
 * values (so validation reaches every field), or a body of hostile fields only.
 */
export type Mutation =
  | { mode: 'none' }
  | { mode: 'some'; fields: Record<string, unknown> }
  | { mode: 'all'; fields: Record<string, unknown> };

export interface ValidCreate {
  path: string;
  size: number;
  chunkSize: number;
  compress: boolean;
  replace: boolean;
  withSha: boolean;
  metadata: unknown;
  seed: number;
}

/** The `x-upload-metadata` header of a whole-file PUT. */
export type MetadataHeader = { kind: 'none' } | { kind: 'json'; value: unknown } | { kind: 'raw'; text: string };

export interface ValidLegacyInit {
  path: string;
  size: number;
  chunks: number;
  compression: boolean;
  md5: 'right' | 'wrong' | 'none';
  metadata: unknown;
  seed: number;
}

export interface LegacyForm {
  index: IndexChoice;
  total: 'right' | 'wrong' | { text: string };
  payload: 'exact' | 'random' | 'too-big' | 'none' | 'two' | 'wrong-name' | 'empty';
  idFirst: boolean;
  extraFields: number;
  longField: boolean;
  boundary: 'ok' | 'mismatch' | 'missing' | 'unclosed' | 'garbage';
  filename: string;
}

/** A session created by a case, that later cases may target. */
export interface PoolEntry {
  server: number;
  uploader: Uploader;
  api: 'native' | 'legacy';
  id: string;
  path: string;
  content: Buffer;
  /** Native: the session's chunk size; legacy: the size of every chunk but the last. */
  chunkSize: number;
  chunkCount: number;
}

/** The legitimate uploads running alongside the garbage (robot1, on server 0). */
export interface LegitSessions {
  native: PoolEntry;
  legacy: PoolEntry;
}

export interface World {
  servers: FuzzServer[];
  pool: PoolEntry[];
  legit: LegitSessions | undefined;
  outside: string;
}

export interface CaseOutcome {
  /** Every exchange, with what was sent (for the failure report). */
  exchanges: { request: string; exchange: RawExchange }[];
  /** Invariant violations found. */
  problems: string[];
}

// ---------------------------------------------------------------- arbitraries

const targetArb: fc.Arbitrary<Target> = fc.oneof(
  { weight: 6, arbitrary: fc.nat().map((pick): Target => ({ kind: 'pool', pick })) },
  { weight: 2, arbitrary: fc.constantFrom<Target>({ kind: 'legit-native' }, { kind: 'legit-legacy' }) },
  { weight: 2, arbitrary: foreignIdArb.map((id): Target => ({ kind: 'foreign', id })) },
);

const indexArb: fc.Arbitrary<IndexChoice> = fc.oneof(
  { weight: 6, arbitrary: fc.nat({ max: 64 }).map((n): IndexChoice => ({ kind: 'in-range', n })) },
  { weight: 1, arbitrary: fc.constant<IndexChoice>({ kind: 'count' }) },
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
        '%EF%BC%90',
        '%E0%A5%A7',
        'Infinity',
        '[0]',
        '..',
        '%2e%2e',
      )
      .map((text): IndexChoice => ({ kind: 'text', text })),
  },
);

const wireArb: fc.Arbitrary<Wire> = fc.record({
  framing: framingArb,
  encoding: encodingArb,
  extraHeaders: extraHeadersArb,
  method: fc.oneof({ weight: 12, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: oddMethodArb }),
  contentType: fc.oneof(
    { weight: 8, arbitrary: fc.constant<'default'>('default') },
    { weight: 1, arbitrary: jsonContentTypeArb.map((value) => ({ value })) },
  ),
  override: fc.oneof(
    { weight: 14, arbitrary: fc.constant<BodyOverride>({ kind: 'none' }) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(
          '',
          '{',
          'null',
          '[]',
          '"text"',
          '{"path":',
          '\ufeff{}',
          '{}garbage',
          '{"a":1}{"b":2}',
          `[${'['.repeat(30_000)}`,
          'x'.repeat(100_000),
          'true',
          '1e400',
          '{"__proto__":{"x":1}}',
        )
        .map((text): BodyOverride => ({ kind: 'raw', text })),
    },
    {
      weight: 1,
      arbitrary: fc
        .array(fc.integer({ min: 0, max: 255 }), { maxLength: 64 })
        .map((bytes): BodyOverride => ({ kind: 'bytes', bytes })),
    },
  ),
});

const checksumArb = (hostile: fc.Arbitrary<unknown>): fc.Arbitrary<ChecksumChoice> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom<ChecksumChoice>({ kind: 'right' }, { kind: 'wrong' }, { kind: 'none' }) },
    { weight: 1, arbitrary: hostile.map((value): ChecksumChoice => ({ kind: 'hostile', value })) },
  );

const plausiblePathArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[a-z0-9_]{1,8}$/).map((s) => `${MARK}-run/${s}.mcap`) },
  { weight: 4, arbitrary: pathArb },
  // Names at the file system's limit (255 bytes), where the server's own suffixes (.gz, .1) no longer fit.
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.integer({ min: 245, max: 255 }),
        fc.constantFrom('L', '\u00e9', '\ud83d\ude00'),
        fc.constantFrom('.bin', '.mcap', ''),
      )
      .map(([bytes, unit, ext]) => {
        const unitBytes = Buffer.byteLength(unit);
        const name = unit.repeat(Math.floor((bytes - MARK.length - ext.length) / unitBytes));
        return `${MARK}-long/${MARK}${name}${ext}`;
      }),
  },
);

const validCreateArb: fc.Arbitrary<ValidCreate> = fc.record({
  path: plausiblePathArb,
  size: fc.oneof(fc.integer({ min: 0, max: 6000 }), fc.constantFrom(0, 1, 1024, 2048)),
  chunkSize: fc.integer({ min: 1024, max: 4096 }),
  compress: fc.boolean(),
  replace: fc.boolean(),
  withSha: fc.boolean(),
  metadata: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: metadataArb }),
  seed: fc.nat(),
});

const hostileCreateFields = {
  path: fc.oneof(pathArb, numberLikeArb),
  size: numberLikeArb,
  fingerprint: fingerprintLikeArb,
  chunkSize: numberLikeArb,
  sha256: sha256LikeArb,
  metadata: metadataArb,
  replace: fc.oneof(fc.boolean(), numberLikeArb),
  compress: fc.oneof(fc.boolean(), numberLikeArb),
  proto: fc.constant({ polluted: true }),
  extra: fc.constant('unknown field'),
};

/** A Mutation of a body with these hostile field arbitraries. */
function mutationArb(fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<Mutation> {
  const keys = Object.keys(fields);
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant<Mutation>({ mode: 'none' }) },
    {
      weight: 5,
      arbitrary: fc
        .tuple(fc.constantFrom(...keys), fc.constantFrom(...keys), fc.boolean())
        .chain(([a, b, two]) => fc.record(Object.fromEntries((two ? [a, b] : [a]).map((key) => [key, fields[key]!]))))
        .map((picked): Mutation => ({ mode: 'some', fields: picked })),
    },
    {
      weight: 2,
      arbitrary: fc.record(fields, { requiredKeys: [] }).map((all): Mutation => ({ mode: 'all', fields: all })),
    },
  );
}

const validLegacyArb: fc.Arbitrary<ValidLegacyInit> = fc.record({
  path: plausiblePathArb,
  size: fc.integer({ min: 0, max: 6000 }),
  chunks: fc.integer({ min: 1, max: 4 }),
  compression: fc.boolean(),
  md5: fc.constantFrom<'right' | 'wrong' | 'none'>('right', 'right', 'wrong', 'none'),
  metadata: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: metadataArb }),
  seed: fc.nat(),
});

const hostileLegacyFields = {
  filename: fc.oneof(pathArb, numberLikeArb),
  filesize: numberLikeArb,
  chunks: numberLikeArb,
  checksum: md5LikeArb,
  metadata: metadataArb,
  compression: fc.oneof(fc.boolean(), numberLikeArb),
  proto: fc.constant({ polluted: true }),
};

const legacyFormArb: fc.Arbitrary<LegacyForm> = fc.record({
  index: indexArb,
  total: fc.oneof(
    { weight: 4, arbitrary: fc.constant<'right'>('right') },
    { weight: 1, arbitrary: fc.constant<'wrong'>('wrong') },
    {
      weight: 1,
      arbitrary: fc.constantFrom('-1', '0', '', 'x', '99999999999999999999', '1e3').map((text) => ({ text })),
    },
  ),
  payload: fc.constantFrom<LegacyForm['payload']>(
    'exact',
    'exact',
    'exact',
    'random',
    'too-big',
    'none',
    'two',
    'wrong-name',
    'empty',
  ),
  idFirst: fc.boolean(),
  extraFields: fc.oneof(
    { weight: 5, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 40 }) },
  ),
  longField: fc.boolean().map((b) => b && Math.random() < 0.2),
  boundary: fc.constantFrom<LegacyForm['boundary']>(
    'ok',
    'ok',
    'ok',
    'ok',
    'ok',
    'mismatch',
    'missing',
    'unclosed',
    'garbage',
  ),
  filename: fc.oneof(fc.constant('chunk_0'), pathArb),
});

const kindWeights = {
  create: 9,
  chunk: 12,
  complete: 4,
  cancel: 2,
  status: 3,
  file: 3,
  'legacy-init': 6,
  'legacy-chunk': 9,
  'legacy-finalize': 3,
  'legacy-status': 2,
  'put-file': 6,
  'race-put': 1,
  'race-nest': 1,
  list: 2,
  health: 1,
  unknown: 3,
  'race-native': 2,
  'race-legacy': 1,
  'race-create': 1,
  finish: 3,
} as const;

/** One hostile case against server 0 (open to anonymous) or server 1 (tokens only). */
export function caseArb(serverCount: number): fc.Arbitrary<FuzzCase> {
  const common = fc.record({
    server: fc.oneof(
      { weight: 4, arbitrary: fc.constant(0) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: serverCount - 1 }) },
    ),
    auth: authArb,
    wire: wireArb,
  });
  const kinds: {
    [K in FuzzCase['kind']]: fc.Arbitrary<Omit<Extract<FuzzCase, { kind: K }>, 'server' | 'auth' | 'wire'>>;
  } = {
    create: fc.record({
      kind: fc.constant('create' as const),
      valid: validCreateArb,
      mutation: mutationArb(hostileCreateFields),
    }),
    chunk: fc.record({
      kind: fc.constant('chunk' as const),
      target: targetArb,
      index: indexArb,
      payload: fc.constantFrom<ChunkPayload>(
        'exact',
        'exact',
        'exact',
        'flipped',
        'short',
        'long',
        'empty',
        'random',
        'huge',
      ),
      crc: fc.oneof(
        { weight: 5, arbitrary: fc.constant<CrcChoice>({ kind: 'right' }) },
        { weight: 2, arbitrary: fc.constantFrom<CrcChoice>({ kind: 'wrong' }, { kind: 'missing' }) },
        {
          weight: 1,
          arbitrary: fc
            .constantFrom(
              'crc32:',
              'crc32:zzzzzzzz',
              'CRC32:00000000',
              'md5:abc',
              'crc32:000000000',
              ' crc32:00000000 ',
              'crc32:00000000, crc32:00000000',
              'sha256:00',
            )
            .map((value): CrcChoice => ({ kind: 'raw', value })),
        },
      ),
      contentTypeOctet: fc.oneof(
        { weight: 8, arbitrary: fc.constant('application/octet-stream') },
        {
          weight: 1,
          arbitrary: fc.constantFrom(
            undefined,
            'application/json',
            'text/plain',
            'application/octet-stream; charset=utf-8',
            'APPLICATION/OCTET-STREAM',
            'multipart/form-data; boundary=x',
            '',
          ),
        },
      ),
    }),
    complete: fc.record({ kind: fc.constant('complete' as const), target: targetArb, sha: checksumArb(sha256LikeArb) }),
    cancel: fc.record({ kind: fc.constant('cancel' as const), target: targetArb }),
    status: fc.record({ kind: fc.constant('status' as const), target: targetArb }),
    file: fc.record({
      kind: fc.constant('file' as const),
      path: pathArb,
      style: fc.constantFrom<'encoded' | 'raw' | 'double'>('encoded', 'encoded', 'raw', 'double'),
    }),
    'legacy-init': fc.record({
      kind: fc.constant('legacy-init' as const),
      valid: validLegacyArb,
      mutation: mutationArb(hostileLegacyFields),
    }),
    'put-file': fc.record({
      kind: fc.constant('put-file' as const),
      path: plausiblePathArb,
      style: fc.constantFrom<'encoded' | 'raw' | 'double'>('encoded', 'encoded', 'encoded', 'raw', 'double'),
      size: fc.oneof(fc.integer({ min: 0, max: 6000 }), fc.constantFrom(0, 1)),
      seed: fc.nat(),
      sha: checksumArb(sha256LikeArb),
      metadata: fc.oneof(
        { weight: 4, arbitrary: fc.constant<MetadataHeader>({ kind: 'none' }) },
        { weight: 2, arbitrary: metadataArb.map((value): MetadataHeader => ({ kind: 'json', value })) },
        {
          weight: 1,
          arbitrary: fc
            .constantFrom(
              '',
              '!!!',
              'e30',
              'e30=',
              'e30==',
              'W10',
              'bnVsbA',
              Buffer.from('{"a":').toString('base64url'),
              'x'.repeat(100_000),
              Buffer.from('\u00ff\u00fe').toString('base64url'),
            )
            .map((text): MetadataHeader => ({ kind: 'raw', text })),
        },
      ),
      replace: fc.constantFrom(undefined, undefined, 'true', 'false', 'TRUE', 'yes', '', 'true, true'),
      contentTypeOctet: fc.oneof(
        { weight: 8, arbitrary: fc.constant('application/octet-stream') },
        { weight: 1, arbitrary: fc.constantFrom(undefined, 'application/json', 'text/plain', '') },
      ),
    }),
    'race-nest': fc.record({
      kind: fc.constant('race-nest' as const),
      uploader: fc.nat({ max: 2 }),
      depth: fc.integer({ min: 2, max: 6 }),
      replace: fc.boolean(),
      seed: fc.nat(),
    }),
    'race-put': fc.record({
      kind: fc.constant('race-put' as const),
      uploader: fc.nat({ max: 2 }),
      path: plausiblePathArb,
      size: fc.integer({ min: 0, max: 5000 }),
      n: fc.integer({ min: 2, max: 5 }),
      differ: fc.boolean(),
      replace: fc.boolean(),
      seed: fc.nat(),
    }),
    'legacy-chunk': fc.record({ kind: fc.constant('legacy-chunk' as const), target: targetArb, form: legacyFormArb }),
    'legacy-finalize': fc.record({
      kind: fc.constant('legacy-finalize' as const),
      target: targetArb,
      checksum: checksumArb(md5LikeArb),
    }),
    'legacy-status': fc.record({ kind: fc.constant('legacy-status' as const), target: targetArb }),
    list: fc.record({ kind: fc.constant('list' as const) }),
    health: fc.record({ kind: fc.constant('health' as const) }),
    unknown: fc.record({
      kind: fc.constant('unknown' as const),
      method: oddMethodArb,
      path: fc.oneof(
        fc.constantFrom(
          '/',
          '*',
          '/v1',
          '/v1/',
          '/v1/sessions/',
          '/v1/sessions/x/chunks',
          '/v1/sessions/x/chunks/',
          '/v1/files',
          '/v1/files/',
          '/upload',
          '/upload/status/',
          '/uploads/x',
          '/health/x',
          '//health',
          '/HEALTH',
          '/v1/sessions/x/complete/x',
          '/.env',
          '/../../etc/passwd',
          '/%2e%2e/%2e%2e/etc/passwd',
          'http://evil.example/v1/sessions',
          '/v1/sessions?x=1&x=2',
          `/${'a'.repeat(20_000)}`,
          '/health#frag',
          '/\u00e9',
        ),
        fc.webPath(),
      ),
    }),
    'race-native': fc.record({
      kind: fc.constant('race-native' as const),
      uploader: fc.nat({ max: 2 }),
      path: plausiblePathArb,
      size: fc.integer({ min: 0, max: 5000 }),
      chunkSize: fc.integer({ min: 1024, max: 2048 }),
      completes: fc.integer({ min: 1, max: 4 }),
      wrongCompletes: fc.integer({ min: 0, max: 2 }),
      cancels: fc.integer({ min: 0, max: 2 }),
      resends: fc.integer({ min: 0, max: 2 }),
      seed: fc.nat(),
    }),
    'race-legacy': fc.record({
      kind: fc.constant('race-legacy' as const),
      uploader: fc.nat({ max: 2 }),
      path: plausiblePathArb,
      size: fc.integer({ min: 0, max: 5000 }),
      chunks: fc.integer({ min: 1, max: 3 }),
      finalizes: fc.integer({ min: 1, max: 4 }),
      wrongFinalizes: fc.integer({ min: 0, max: 1 }),
      statuses: fc.integer({ min: 0, max: 2 }),
      again: fc.boolean(),
      seed: fc.nat(),
    }),
    'race-create': fc.record({
      kind: fc.constant('race-create' as const),
      uploader: fc.nat({ max: 2 }),
      path: plausiblePathArb,
      size: fc.integer({ min: 0, max: 5000 }),
      n: fc.integer({ min: 2, max: 5 }),
      seed: fc.nat(),
    }),
    finish: fc.record({ kind: fc.constant('finish' as const), pick: fc.nat() }),
  };
  const specific = fc.oneof(
    ...Object.entries(kinds).map(([kind, arbitrary]) => ({
      weight: kindWeights[kind as FuzzCase['kind']],
      arbitrary: arbitrary as fc.Arbitrary<object>,
    })),
  );
  return fc.tuple(common, specific).map(([base, rest]) => ({ ...base, ...rest }) as FuzzCase);
}

// ---------------------------------------------------------------- execution

/** Deterministic pseudo-random bytes (xorshift32), so a failing case replays with the same data. */
export function contentOf(seed: number, size: number): Buffer {
  const data = Buffer.alloc(size);
  let x = seed | 0 || 0x9e3779b9;
  for (let i = 0; i < size; i += 1) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 0xff;
  }
  return data;
}

export function fingerprintOfContent(content: Buffer): string {
  return fingerprintOf(
    content.length,
    fingerprintRanges(content.length).map(([at, length]) => content.subarray(at, at + length)),
  );
}

function crcOf(data: Uint8Array): string {
  return formatChunkChecksum(new Crc32().update(data).value);
}

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
const md5 = (data: Uint8Array): string => createHash('md5').update(data).digest('hex');

let bomb: Buffer | undefined;

/** Runs one case and checks the per-answer invariants. */
export async function runCase(world: World, fuzz: FuzzCase): Promise<CaseOutcome> {
  const outcome: CaseOutcome = { exchanges: [], problems: [] };
  const server = world.servers[Math.min(fuzz.server, world.servers.length - 1)]!;
  const ctx = new CaseContext(world, server, fuzz, outcome);
  switch (fuzz.kind) {
    case 'create':
      await ctx.create(fuzz.valid, fuzz.mutation);
      break;
    case 'chunk':
      await ctx.chunk(fuzz.target, fuzz.index, fuzz.payload, fuzz.crc, fuzz.contentTypeOctet);
      break;
    case 'complete':
      await ctx.complete(fuzz.target, fuzz.sha);
      break;
    case 'cancel':
      await ctx.simple('DELETE', fuzz.target, (id) => `/v1/sessions/${encodeId(id)}`, 'native');
      break;
    case 'status':
      await ctx.simple('GET', fuzz.target, (id) => `/v1/sessions/${encodeId(id)}`, 'native');
      break;
    case 'file':
      await ctx.file(fuzz.path, fuzz.style);
      break;
    case 'legacy-init':
      await ctx.legacyInit(fuzz.valid, fuzz.mutation);
      break;
    case 'put-file':
      await ctx.putFile(fuzz);
      break;
    case 'race-put':
      await ctx.racePut(fuzz);
      break;
    case 'race-nest':
      await ctx.raceNest(fuzz);
      break;
    case 'legacy-chunk':
      await ctx.legacyChunk(fuzz.target, fuzz.form);
      break;
    case 'legacy-finalize':
      await ctx.legacyFinalize(fuzz.target, fuzz.checksum);
      break;
    case 'legacy-status':
      await ctx.simple('GET', fuzz.target, (id) => `/upload/status/${encodeId(id)}`, 'legacy');
      break;
    case 'list':
      await ctx.send(ctx.request('GET', '/uploads', undefined, Buffer.alloc(0), undefined));
      break;
    case 'health':
      await ctx.send(ctx.request('GET', '/health', undefined, Buffer.alloc(0), undefined));
      break;
    case 'unknown':
      await ctx.send(ctx.request(fuzz.method, fuzz.path, undefined, Buffer.alloc(0), undefined));
      break;
    case 'race-native':
      await ctx.raceNative(fuzz);
      break;
    case 'race-legacy':
      await ctx.raceLegacy(fuzz);
      break;
    case 'race-create':
      await ctx.raceCreate(fuzz);
      break;
    case 'finish':
      await ctx.finish(fuzz.pick);
      break;
  }
  return outcome;
}

/**
 * Percent-encodes every UTF-16 code unit as WTF-8 bytes: unlike encodeURIComponent it does not
 * throw on a lone surrogate, which then reaches the server as the (invalid UTF-8) bytes ED A0 80.
 */
export function percentEncode(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i += 1) {
    const code = text.codePointAt(i)!;
    if (code > 0xffff) i += 1;
    const char = String.fromCodePoint(code);
    if (/^[A-Za-z0-9._~-]$/.test(char)) {
      out += char;
      continue;
    }
    const bytes: number[] =
      code < 0x80
        ? [code]
        : code < 0x800
          ? [0xc0 | (code >> 6), 0x80 | (code & 63)]
          : code < 0x10000
            ? [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63)]
            : [0xf0 | (code >> 18), 0x80 | ((code >> 12) & 63), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63)];
    out += bytes.map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  }
  return out;
}

/**
 * The chunk index the server reads from this text (a URL segment is percent-decoded first), or
 * undefined when it refuses it.
 */
function serverIndexOf(text: string, urlSegment: boolean): number | undefined {
  let decoded = text;
  if (urlSegment) {
    try {
      decoded = decodeURIComponent(text);
    } catch {
      return undefined;
    }
  }
  return /^\d{1,15}$/.test(decoded) ? Number(decoded) : undefined;
}

function encodeId(id: string): string {
  // Foreign ids are already URL text (they may hold %-escapes on purpose); real ids are UUIDs.
  return id;
}

/** A chunk of a pool entry. */
function chunkOf(entry: PoolEntry, index: number): Buffer {
  const start = index * entry.chunkSize;
  return entry.content.subarray(
    Math.min(start, entry.content.length),
    Math.min(entry.content.length, start + entry.chunkSize),
  );
}

function resolveIndex(choice: IndexChoice, count: number): string {
  if (choice.kind === 'in-range') return String(choice.n % Math.max(1, count));
  if (choice.kind === 'count') return String(count);
  return choice.text;
}

class CaseContext {
  readonly #world: World;
  readonly #server: FuzzServer;
  readonly #fuzz: FuzzCase;
  readonly #outcome: CaseOutcome;

  constructor(world: World, server: FuzzServer, fuzz: FuzzCase, outcome: CaseOutcome) {
    this.#world = world;
    this.#server = server;
    this.#fuzz = fuzz;
    this.#outcome = outcome;
  }

  get #serverIndex(): number {
    return this.#world.servers.indexOf(this.#server);
  }

  /** The session a target names: a pool entry, a legitimate upload, or nothing (a foreign id). */
  resolveTarget(
    target: Target,
    api: 'native' | 'legacy',
  ): { id: string; entry: PoolEntry | undefined; legit: boolean } {
    if (target.kind === 'foreign') return { id: target.id, entry: undefined, legit: false };
    if (target.kind === 'legit-native' || target.kind === 'legit-legacy') {
      const legit = this.#world.legit;
      if (legit && this.#serverIndex === legit.native.server) {
        const entry = target.kind === 'legit-native' ? legit.native : legit.legacy;
        return { id: entry.id, entry, legit: true };
      }
    }
    const candidates = this.#world.pool.filter((entry) => entry.server === this.#serverIndex);
    // Mostly the route's own API; sometimes the other one (a legacy id on a native route and back).
    const sameApi = candidates.filter((entry) => entry.api === api);
    const list = target.kind === 'pool' && target.pick % 5 === 0 ? candidates : sameApi.length ? sameApi : candidates;
    const pick = target.kind === 'pool' ? target.pick : 0;
    const entry = list.length ? list[pick % list.length] : undefined;
    return entry
      ? { id: entry.id, entry, legit: false }
      : { id: `00000000-0000-4000-8000-${String(pick % 1e12).padStart(12, '0')}`, entry: undefined, legit: false };
  }

  /** Who a request with this auth choice acts as, for a session of `owner` (undefined: refused with 401). */
  identity(owner: Uploader | undefined, choice: AuthChoice = this.#fuzz.auth): Uploader | undefined {
    const defaultOwner: Uploader = owner ?? (this.#server.anonymous ? 'anonymous' : 'robot1');
    switch (choice.kind) {
      case 'none':
        return this.#server.anonymous ? 'anonymous' : undefined;
      case 'owner':
        return defaultOwner;
      case 'other':
        return defaultOwner === 'robot1' ? 'robot2' : 'robot1';
      case 'robot1':
      case 'robot2':
        return choice.kind;
      case 'twice':
        // Node keeps the first of repeated Authorization headers.
        return 'robot1';
      default:
        return undefined;
    }
  }

  /** Authorization headers for the case's auth choice, relative to the owner of the targeted session. */
  authHeaders(owner: Uploader | undefined, choice: AuthChoice = this.#fuzz.auth): [string, string][] {
    const tokenOf = (uploader: Uploader): [string, string][] =>
      uploader === 'anonymous' ? [] : [['Authorization', `Bearer ${this.#server.tokens[uploader]}`]];
    switch (choice.kind) {
      case 'none':
        return [];
      case 'wrong':
        return [['Authorization', 'Bearer wrong-token-0000000000']];
      case 'malformed':
        return [['Authorization', choice.header]];
      case 'twice':
        return [...tokenOf('robot1'), ...tokenOf('robot2')];
      default:
        return tokenOf(this.identity(owner, choice)!);
    }
  }

  /** Whether the auth choice acts as the owner of a legitimate upload (its garbage must then stay harmless). */
  actsAsLegitOwner(legit: boolean, entry: PoolEntry | undefined, choice: AuthChoice = this.#fuzz.auth): boolean {
    return legit && entry !== undefined && this.identity(entry.uploader, choice) === entry.uploader;
  }

  /**
   * A request with the case's wire options applied (method override, content type, encoding,
   * framing, extra headers, body override) unless `plain`.
   */
  request(
    method: string,
    target: string,
    contentType: string | undefined,
    body: Buffer,
    auth: [string, string][] | undefined,
    plain = false,
    keepMethod = false,
  ): RequestSpec {
    const wire = this.#fuzz.wire;
    const headers: [string, string][] = [['Host', '127.0.0.1'], ...(auth ?? this.authHeaders(undefined))];
    let payload = body;
    if (!plain && wire.override.kind === 'raw') payload = Buffer.from(wire.override.text, 'utf8');
    if (!plain && wire.override.kind === 'bytes') payload = Buffer.from(wire.override.bytes);
    const type = plain || wire.contentType === 'default' ? contentType : wire.contentType.value;
    if (type !== undefined) headers.push(['Content-Type', type]);
    if (!plain) {
      const encoded = encode(payload, wire.encoding);
      payload = encoded.body;
      if (encoded.header !== undefined) headers.push(['Content-Encoding', encoded.header]);
      headers.push(...wire.extraHeaders);
    }
    return {
      method: plain || keepMethod || wire.method === undefined ? method : wire.method,
      target: target.replace(OUTSIDE, this.#world.outside),
      headers,
      body: payload,
      framing: plain ? { kind: 'length' } : wire.framing,
    };
  }

  /** Sends a request, records it and checks every answer (no 5xx but 503/507, JSON errors). */
  async send(spec: RequestSpec): Promise<RawResponse | undefined> {
    const wire = toWire(spec);
    const shown = describeRequest(spec);
    let exchange: RawExchange;
    try {
      exchange = await this.#server.client.send({ ...wire, method: spec.method, label: shown });
    } catch (error) {
      this.#outcome.problems.push(`cannot reach server ${this.#server.name} (${(error as Error).message}): ${shown}`);
      return undefined;
    }
    this.#outcome.exchanges.push({ request: shown, exchange });
    const before = exchange.previous ? `\n      the request before it on that connection: ${exchange.previous}` : '';
    if (exchange.hung)
      this.#outcome.problems.push(
        `no answer and the connection was not closed within the deadline ` +
          `(${exchange.reused ? 'a reused keep-alive connection' : 'a new connection'}, ` +
          `${exchange.leftover.length} bytes of a partial answer): ` +
          `${shown}${before}`,
      );
    for (const response of exchange.responses) {
      const problem = checkResponse(response, spec.method);
      if (problem)
        this.#outcome.problems.push(
          `${problem}: ${shown} → ${response.status} ${response.body.toString('utf8').slice(0, 300)}`,
        );
    }
    return exchange.responses[0];
  }

  problem(message: string): void {
    this.#outcome.problems.push(message);
  }

  /** A well-formed request with the given identity (for scenario steps). */
  async plain(
    method: string,
    target: string,
    uploader: Uploader,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<RawResponse | undefined> {
    const payload = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(jsonText(body));
    return this.send(
      this.request(
        method,
        target,
        body === undefined ? undefined : contentType,
        payload,
        this.authHeaders(uploader, { kind: 'owner' }),
        true,
      ),
    );
  }

  remember(entry: PoolEntry): void {
    this.#world.pool.push(entry);
    if (this.#world.pool.length > 400) this.#world.pool.splice(0, 100);
  }

  uploaderOf(index: number): Uploader {
    const choices: Uploader[] = this.#server.anonymous ? ['anonymous', 'robot1', 'robot2'] : ['robot1', 'robot2'];
    return choices[index % choices.length]!;
  }

  /** The uploader the case's auth choice acts as on a route without a session. */
  callerOf(): Uploader | undefined {
    return this.identity(undefined);
  }

  async create(valid: ValidCreate, mutation: Mutation): Promise<void> {
    const content = contentOf(valid.seed, valid.size);
    const body: Record<string, unknown> = {
      path: valid.path.replace(OUTSIDE, this.#world.outside),
      size: valid.size,
      fingerprint: fingerprintOfContent(content),
      chunkSize: valid.chunkSize,
      replace: valid.replace,
      compress: valid.compress,
    };
    if (valid.withSha) body.sha256 = sha256(content);
    if (valid.metadata !== undefined) body.metadata = valid.metadata;
    const response = await this.send(
      this.request(
        'POST',
        '/v1/sessions',
        'application/json',
        Buffer.from(jsonText(mutated(body, mutation))),
        undefined,
      ),
    );
    const json = response && jsonOf(response);
    const caller = this.callerOf();
    if (
      mutation.mode === 'none' &&
      response &&
      (response.status === 201 || response.status === 200) &&
      json?.state === 'open' &&
      caller &&
      typeof json.id === 'string'
    ) {
      this.remember({
        server: this.#serverIndex,
        uploader: caller,
        api: 'native',
        id: json.id,
        path: String(json.path),
        content,
        chunkSize: Number(json.chunkSize),
        chunkCount: Number(json.chunkCount),
      });
    }
  }

  async chunk(
    target: Target,
    indexChoice: IndexChoice,
    payloadChoice: ChunkPayload,
    crcChoice: CrcChoice,
    contentType: string | undefined,
  ): Promise<void> {
    const { id, entry, legit } = this.resolveTarget(target, 'native');
    const count = entry?.chunkCount ?? 4;
    const index = resolveIndex(indexChoice, count);
    const numeric = serverIndexOf(index, true) ?? 0;
    const exact = entry ? chunkOf(entry, numeric) : Buffer.alloc(1024, 7);
    let data: Buffer;
    switch (payloadChoice) {
      case 'exact':
        data = exact;
        break;
      case 'flipped':
        data = Buffer.from(exact);
        if (data.length) data[data.length >> 1]! ^= 0x40;
        break;
      case 'short':
        data = exact.subarray(0, Math.max(0, exact.length - 1));
        break;
      case 'long':
        data = Buffer.concat([exact, Buffer.from('+')]);
        break;
      case 'empty':
        data = Buffer.alloc(0);
        break;
      case 'random':
        data = contentOf(numeric + 17, exact.length);
        break;
      case 'huge':
        data = contentOf(numeric + 31, 300_000);
        break;
    }
    let crc = crcChoice;
    // Garbage from the legitimate uploader itself must not be acceptable: its own well-formed
    // garbage would be a legitimate (if odd) request, not an attack on it. (The exact bytes are
    // harmless only when the server reads the same index.)
    const owner = this.actsAsLegitOwner(legit, entry);
    if (owner && crc.kind === 'right' && (payloadChoice !== 'exact' || serverIndexOf(index, true) === undefined))
      crc = { kind: 'wrong' };
    const headers: [string, string][] = [];
    if (crc.kind === 'right') headers.push(['X-Chunk-Checksum', crcOf(data)]);
    if (crc.kind === 'wrong')
      headers.push(['X-Chunk-Checksum', formatChunkChecksum((new Crc32().update(data).value ^ 0x5a5a) >>> 0)]);
    if (crc.kind === 'raw') headers.push(['X-Chunk-Checksum', crc.value]);
    const spec = this.request(
      'PUT',
      `/v1/sessions/${encodeId(id)}/chunks/${index}`,
      contentType,
      data,
      this.authHeaders(entry?.uploader),
      false,
      owner,
    );
    spec.headers.push(...headers);
    await this.send(spec);
  }

  async complete(target: Target, choice: ChecksumChoice): Promise<void> {
    const { id, entry, legit } = this.resolveTarget(target, 'native');
    const auth: AuthChoice = this.actsAsLegitOwner(legit, entry) ? { kind: 'other' } : this.#fuzz.auth;
    const body: Record<string, unknown> = {};
    if (choice.kind === 'right') body.sha256 = sha256(entry?.content ?? Buffer.alloc(0));
    if (choice.kind === 'wrong') body.sha256 = sha256(Buffer.from('not the content'));
    if (choice.kind === 'hostile') body.sha256 = choice.value;
    await this.send(
      this.request(
        'POST',
        `/v1/sessions/${encodeId(id)}/complete`,
        'application/json',
        Buffer.from(jsonText(body)),
        this.authHeaders(entry?.uploader, auth),
      ),
    );
  }

  /** A request without a body to a session route (GET status, DELETE). */
  async simple(method: string, target: Target, route: (id: string) => string, api: 'native' | 'legacy'): Promise<void> {
    const { id, entry, legit } = this.resolveTarget(target, api);
    const owner = this.actsAsLegitOwner(legit, entry);
    const auth: AuthChoice = method === 'DELETE' && owner ? { kind: 'other' } : this.#fuzz.auth;
    // The owner of a legitimate upload never gets its GET turned into a DELETE.
    await this.send(
      this.request(
        method,
        route(id),
        undefined,
        Buffer.alloc(0),
        this.authHeaders(entry?.uploader, auth),
        false,
        owner,
      ),
    );
  }

  async file(relativePath: string, style: 'encoded' | 'raw' | 'double'): Promise<void> {
    const text = relativePath.replace(OUTSIDE, this.#world.outside);
    const encoded = text.split('/').map(percentEncode).join('/');
    const route = style === 'encoded' ? encoded : style === 'double' ? percentEncode(encoded) : text;
    await this.send(this.request('GET', `/v1/files/${route}`, undefined, Buffer.alloc(0), undefined));
  }

  /** PUT /v1/files/<path>: a whole file in one request; a stored one must be byte-identical. */
  async putFile(fuzz: Extract<FuzzCase, { kind: 'put-file' }>): Promise<void> {
    const text = fuzz.path.replace(OUTSIDE, this.#world.outside);
    const encoded = text.split('/').map(percentEncode).join('/');
    const route = fuzz.style === 'encoded' ? encoded : fuzz.style === 'double' ? percentEncode(encoded) : text;
    const content = contentOf(fuzz.seed, fuzz.size);
    const spec = this.request('PUT', `/v1/files/${route}`, fuzz.contentTypeOctet, content, undefined);
    if (fuzz.sha.kind === 'right') spec.headers.push(['X-Content-SHA256', sha256(content)]);
    if (fuzz.sha.kind === 'wrong') spec.headers.push(['X-Content-SHA256', sha256(Buffer.from('not it'))]);
    if (fuzz.sha.kind === 'hostile') spec.headers.push(['X-Content-SHA256', String(fuzz.sha.value)]);
    if (fuzz.metadata.kind === 'json')
      spec.headers.push(['X-Upload-Metadata', Buffer.from(jsonText(fuzz.metadata.value)).toString('base64url')]);
    if (fuzz.metadata.kind === 'raw') spec.headers.push(['X-Upload-Metadata', fuzz.metadata.text]);
    if (fuzz.replace !== undefined) spec.headers.push(['X-Upload-Replace', fuzz.replace]);
    const response = await this.send(spec);
    const caller = this.callerOf();
    const json = response && jsonOf(response);
    // 201 means this body was stored: it must be exactly the content whose SHA-256 the header gave.
    // (200 may answer from the index alone: the header names content already stored at the path.)
    if (response?.status === 201 && caller && json?.state === 'complete') {
      if (fuzz.sha.kind !== 'right')
        this.problem(
          `PUT /v1/files stored (201) a body whose SHA-256 did not match its header: ${JSON.stringify(json)}`,
        );
      else
        await this.checkStored(
          caller,
          `completed/${caller}/${String(json.path)}`,
          content,
          `whole-file upload ${JSON.stringify(text)}`,
        );
    }
  }

  /**
   * Concurrent whole-file PUTs of one path: the same content is stored once; different ones at most
   * one wins (or the last, with replace).
   */
  async racePut(fuzz: Extract<FuzzCase, { kind: 'race-put' }>): Promise<void> {
    const uploader = this.uploaderOf(fuzz.uploader);
    const relative = `${MARK}-rp-${fuzz.seed}/${fuzz.path.replace(OUTSIDE, this.#world.outside)}`;
    const route = `/v1/files/${relative.split('/').map(percentEncode).join('/')}`;
    const contents = Array.from({ length: fuzz.n }, (_, i) =>
      contentOf(fuzz.seed + (fuzz.differ ? i : 0), fuzz.size + (fuzz.differ ? i : 0)),
    );
    const answers = await Promise.all(
      contents.map((content) => {
        const spec = this.request(
          'PUT',
          route,
          'application/octet-stream',
          content,
          this.authHeaders(uploader, { kind: 'owner' }),
          true,
        );
        spec.headers.push(['X-Content-SHA256', sha256(content)]);
        if (fuzz.replace) spec.headers.push(['X-Upload-Replace', 'true']);
        return this.send(spec);
      }),
    );
    const created = answers.filter((a) => a?.status === 201).length;
    if (!fuzz.differ && created > 1)
      this.problem(
        `${created} concurrent PUTs of the same content to ${JSON.stringify(relative)} each stored it (201)`,
      );
    if (fuzz.differ && !fuzz.replace && created > 1)
      this.problem(
        `${created} concurrent PUTs of different files to ` +
          `${JSON.stringify(relative)} without replace each stored one (201)`,
      );
    const stored = answers.map((a, i) => ({ a, i })).filter(({ a }) => a?.status === 201 || a?.status === 200);
    if (stored.length === 0) return;
    // Whatever is on disk now is one of the contents sent, and the index says which.
    const lookup = await this.plain('GET', route, uploader);
    const sha = lookup && jsonOf(lookup)?.sha256;
    const match = contents.find((content) => sha256(content) === sha);
    if (!match)
      this.problem(
        `after concurrent PUTs to ${JSON.stringify(relative)} the ` +
          `index holds sha256 ${String(sha)}, none of the contents sent`,
      );
    else
      await this.checkStored(
        uploader,
        `completed/${uploader}/${String(jsonOf(lookup!)?.path)}`,
        match,
        `raced whole-file upload ${JSON.stringify(relative)}`,
      );
  }

  /**
   * Files and folders of the same names at once: `x/d` as a file while `x/d/d/f` needs `x/d` as
   * a folder, through every API. One of them wins each name; the others are refused (409), never 500.
   */
  async raceNest(fuzz: Extract<FuzzCase, { kind: 'race-nest' }>): Promise<void> {
    const uploader = this.uploaderOf(fuzz.uploader);
    const base = `${MARK}-nest-${fuzz.seed}`;
    const tasks: Promise<unknown>[] = [];
    for (let depth = 1; depth <= fuzz.depth; depth += 1) {
      const content = contentOf(fuzz.seed + depth, 10 + depth);
      const asFile = `${base}/${'d/'.repeat(depth - 1)}d`;
      const spec = this.request(
        'PUT',
        `/v1/files/${asFile}`,
        'application/octet-stream',
        content,
        this.authHeaders(uploader, { kind: 'owner' }),
        true,
      );
      spec.headers.push(['X-Content-SHA256', sha256(content)]);
      if (fuzz.replace) spec.headers.push(['X-Upload-Replace', 'true']);
      tasks.push(this.send(spec));
      const deeper = `${base}/${'d/'.repeat(depth)}f`;
      if (depth % 2 === 0) {
        const legacyEntry = (id: string): PoolEntry => ({
          server: this.#serverIndex,
          uploader,
          api: 'legacy',
          id,
          path: deeper,
          content,
          chunkSize: content.length,
          chunkCount: 1,
        });
        tasks.push(
          this.plain('POST', '/upload/init', uploader, { filename: deeper, filesize: content.length, chunks: 1 }).then(
            async (init) => {
              const id = init && jsonOf(init)?.upload_id;
              if (typeof id !== 'string') return;
              await this.sendLegacyChunk(legacyEntry(id), 0, content);
              await this.plain('POST', '/upload/finalize', uploader, { upload_id: id });
            },
          ),
        );
      } else {
        const nested = this.request(
          'PUT',
          `/v1/files/${deeper}`,
          'application/octet-stream',
          content,
          this.authHeaders(uploader, { kind: 'owner' }),
          true,
        );
        nested.headers.push(['X-Content-SHA256', sha256(content)]);
        if (fuzz.replace) nested.headers.push(['X-Upload-Replace', 'true']);
        tasks.push(this.send(nested));
      }
    }
    await Promise.all(tasks);
  }

  async legacyInit(valid: ValidLegacyInit, mutation: Mutation): Promise<void> {
    const content = contentOf(valid.seed, valid.size);
    const chunks = Math.max(1, Math.min(valid.chunks, valid.size || 1));
    const body: Record<string, unknown> = {
      filename: valid.path.replace(OUTSIDE, this.#world.outside),
      filesize: valid.size,
      chunks,
      compression: valid.compression,
    };
    if (valid.md5 === 'right') body.checksum = md5(content);
    if (valid.md5 === 'wrong') body.checksum = md5(Buffer.from('wrong'));
    if (valid.metadata !== undefined) body.metadata = valid.metadata;
    const response = await this.send(
      this.request(
        'POST',
        '/upload/init',
        'application/json',
        Buffer.from(jsonText(mutated(body, mutation))),
        undefined,
      ),
    );
    const json = response && jsonOf(response);
    const caller = this.callerOf();
    if (mutation.mode === 'none' && response?.status === 200 && caller && typeof json?.upload_id === 'string') {
      this.remember({
        server: this.#serverIndex,
        uploader: caller,
        api: 'legacy',
        id: json.upload_id,
        path: String(body.filename),
        content,
        chunkSize: Math.ceil(valid.size / chunks) || 1,
        chunkCount: chunks,
      });
    }
  }

  async legacyChunk(target: Target, form: LegacyForm): Promise<void> {
    const { id, entry, legit } = this.resolveTarget(target, 'legacy');
    const count = entry?.chunkCount ?? 2;
    const indexText = resolveIndex(form.index, count);
    const numeric = serverIndexOf(indexText, false) ?? 0;
    let total = form.total === 'right' ? String(count) : form.total === 'wrong' ? String(count + 1) : form.total.text;
    const owner = this.actsAsLegitOwner(legit, entry);
    if (owner && (form.payload !== 'exact' || serverIndexOf(indexText, false) === undefined)) total = String(count + 3);
    const exact = entry ? chunkOf(entry, numeric) : Buffer.from('some chunk bytes');
    const fields: FormPart[] = [
      { name: 'upload_id', value: form.longField ? id + 'x'.repeat(2000) : id },
      { name: 'chunk_index', value: indexText },
      { name: 'chunk_total', value: total },
    ];
    for (let i = 0; i < form.extraFields; i += 1) fields.push({ name: `extra${i}`, value: 'v' });
    const files: FormPart[] = [];
    const file = (value: Buffer, name = 'chunk'): FormPart => ({
      name,
      value,
      filename: form.filename.replace(OUTSIDE, this.#world.outside),
      contentType: 'application/octet-stream',
    });
    if (form.payload === 'exact') files.push(file(exact));
    if (form.payload === 'random') files.push(file(contentOf(numeric + 5, exact.length)));
    if (form.payload === 'too-big') files.push(file(contentOf(numeric + 9, (entry?.content.length ?? 100) + 10)));
    if (form.payload === 'empty') files.push(file(Buffer.alloc(0)));
    if (form.payload === 'two') files.push(file(exact), file(exact));
    if (form.payload === 'wrong-name') files.push(file(exact, 'file'));
    const parts = form.idFirst ? [...fields, ...files] : [...files, ...fields];
    const boundary = `----hostile${numeric}`;
    const body = multipartBody(
      form.boundary === 'mismatch' ? `${boundary}X` : boundary,
      parts,
      form.boundary !== 'unclosed',
    );
    const type =
      form.boundary === 'missing'
        ? 'multipart/form-data'
        : form.boundary === 'garbage'
          ? `multipart/form-data; boundary="${'b'.repeat(100)}"; boundary=x`
          : `multipart/form-data; boundary=${boundary}`;
    await this.send(this.request('POST', '/upload/chunk', type, body, this.authHeaders(entry?.uploader), false, owner));
  }

  async legacyFinalize(target: Target, choice: ChecksumChoice): Promise<void> {
    const { id, entry, legit } = this.resolveTarget(target, 'legacy');
    const body: Record<string, unknown> = { upload_id: id };
    if (choice.kind === 'right') body.checksum = md5(entry?.content ?? Buffer.alloc(0));
    if (choice.kind === 'wrong') body.checksum = md5(Buffer.from('wrong'));
    if (choice.kind === 'hostile') body.checksum = choice.value;
    await this.send(
      this.request(
        'POST',
        '/upload/finalize',
        'application/json',
        Buffer.from(jsonText(body)),
        this.authHeaders(entry?.uploader),
        false,
        this.actsAsLegitOwner(legit, entry),
      ),
    );
  }

  /**
   * Uploads every chunk of a pool session properly and completes it; a stored file must be
   * byte-identical and inside the root.
   */
  async finish(pick: number): Promise<void> {
    const candidates = this.#world.pool.filter((entry) => entry.server === this.#serverIndex);
    const entry = candidates.length ? candidates[pick % candidates.length] : undefined;
    if (!entry) return;
    await this.finishEntry(entry);
  }

  async finishEntry(entry: PoolEntry): Promise<RawResponse | undefined> {
    for (let index = 0; index < entry.chunkCount; index += 1) {
      const data = chunkOf(entry, index);
      if (entry.api === 'native') {
        const spec = this.request(
          'PUT',
          `/v1/sessions/${entry.id}/chunks/${index}`,
          'application/octet-stream',
          data,
          this.authHeaders(entry.uploader, { kind: 'owner' }),
          true,
        );
        spec.headers.push(['X-Chunk-Checksum', crcOf(data)]);
        await this.send(spec);
      } else {
        await this.sendLegacyChunk(entry, index, data);
      }
    }
    const done =
      entry.api === 'native'
        ? await this.plain('POST', `/v1/sessions/${entry.id}/complete`, entry.uploader, {
            sha256: sha256(entry.content),
          })
        : await this.plain('POST', '/upload/finalize', entry.uploader, {
            upload_id: entry.id,
            checksum: md5(entry.content),
          });
    const json = done && jsonOf(done);
    if (done?.status === 200 && json) {
      const stored =
        entry.api === 'native' ? `completed/${entry.uploader}/${String(json.path)}` : String(json.file_path);
      await this.checkStored(
        entry.uploader,
        stored,
        entry.content,
        `${entry.api} upload ${JSON.stringify(entry.path)}`,
      );
      if (entry.api === 'native') {
        // The path the server answered must find the file again.
        const lookup = await this.plain(
          'GET',
          `/v1/files/${String(json.path).split('/').map(percentEncode).join('/')}`,
          entry.uploader,
        );
        if (lookup?.status !== 200)
          this.problem(
            `GET /v1/files/ with the path the server answered for a stored ` +
              `file (${JSON.stringify(json.path)}) answered ${lookup?.status}`,
          );
      }
    }
    return done;
  }

  async sendLegacyChunk(entry: PoolEntry, index: number, data: Buffer): Promise<RawResponse | undefined> {
    const boundary = '----legit';
    const body = multipartBody(boundary, [
      { name: 'upload_id', value: entry.id },
      { name: 'chunk_index', value: String(index) },
      { name: 'chunk_total', value: String(entry.chunkCount) },
      { name: 'chunk', value: data, filename: `chunk_${index}`, contentType: 'application/octet-stream' },
    ]);
    return this.send(
      this.request(
        'POST',
        '/upload/chunk',
        `multipart/form-data; boundary=${boundary}`,
        body,
        this.authHeaders(entry.uploader, { kind: 'owner' }),
        true,
      ),
    );
  }

  /**
   * The stored file at `relative` (to the root) is inside the root and holds exactly `content`,
   * or, when another upload of the batch replaced it since, what the server's index says it holds.
   */
  async checkStored(uploader: Uploader, relative: string, content: Buffer, what: string): Promise<void> {
    const root = this.#server.root;
    let stored: Buffer;
    try {
      const real = await realpath(path.join(root, relative));
      if (!real.startsWith(root + path.sep)) this.problem(`${what} was stored outside the root: ${real}`);
      stored = await readFile(real);
    } catch (error) {
      this.problem(`${what} answered 200 but ${relative} cannot be read: ${(error as Error).message}`);
      return;
    }
    if (stored.equals(content)) return;
    const prefix = `completed/${uploader}/`;
    const lookup = relative.startsWith(prefix)
      ? await this.plain(
          'GET',
          `/v1/files/${relative.slice(prefix.length).split('/').map(percentEncode).join('/')}`,
          uploader,
        )
      : undefined;
    if (lookup?.status === 200 && jsonOf(lookup)?.sha256 === sha256(stored) && sha256(stored) !== sha256(content))
      return;
    this.problem(
      `${what} is stored with different bytes (${stored.length} bytes, sha256 ` +
        `${sha256(stored)}; sent ${content.length} bytes, sha256 ${sha256(content)})`,
    );
  }

  async raceNative(fuzz: Extract<FuzzCase, { kind: 'race-native' }>): Promise<void> {
    const uploader = this.uploaderOf(fuzz.uploader);
    const content = contentOf(fuzz.seed, fuzz.size);
    // A folder of its own, so no other case of the batch touches this file meanwhile.
    const path = `${MARK}-rn-${fuzz.seed}/${fuzz.path.replace(OUTSIDE, this.#world.outside)}`;
    const created = await this.plain('POST', '/v1/sessions', uploader, {
      path,
      size: fuzz.size,
      fingerprint: fingerprintOfContent(content),
      chunkSize: fuzz.chunkSize,
      replace: true,
    });
    const json = created && jsonOf(created);
    if (!created || !(created.status === 201 || created.status === 200) || json?.state !== 'open') return;
    const entry: PoolEntry = {
      server: this.#serverIndex,
      uploader,
      api: 'native',
      id: String(json.id),
      path,
      content,
      chunkSize: Number(json.chunkSize),
      chunkCount: Number(json.chunkCount),
    };
    for (let index = 0; index < entry.chunkCount; index += 1) {
      const data = chunkOf(entry, index);
      const spec = this.request(
        'PUT',
        `/v1/sessions/${entry.id}/chunks/${index}`,
        'application/octet-stream',
        data,
        this.authHeaders(uploader, { kind: 'owner' }),
        true,
      );
      spec.headers.push(['X-Chunk-Checksum', crcOf(data)]);
      await this.send(spec);
    }
    const right = sha256(content);
    const tasks: Promise<{ what: string; response: RawResponse | undefined }>[] = [];
    const tag = (what: string, promise: Promise<RawResponse | undefined>): void => {
      tasks.push(promise.then((response) => ({ what, response })));
    };
    for (let i = 0; i < fuzz.completes; i += 1)
      tag('complete', this.plain('POST', `/v1/sessions/${entry.id}/complete`, uploader, { sha256: right }));
    for (let i = 0; i < fuzz.wrongCompletes; i += 1)
      tag(
        'wrong-complete',
        this.plain('POST', `/v1/sessions/${entry.id}/complete`, uploader, { sha256: sha256(Buffer.from(`wrong${i}`)) }),
      );
    for (let i = 0; i < fuzz.cancels; i += 1) tag('cancel', this.plain('DELETE', `/v1/sessions/${entry.id}`, uploader));
    for (let i = 0; i < fuzz.resends; i += 1) {
      const data = chunkOf(entry, 0);
      const spec = this.request(
        'PUT',
        `/v1/sessions/${entry.id}/chunks/0`,
        'application/octet-stream',
        data,
        this.authHeaders(uploader, { kind: 'owner' }),
        true,
      );
      spec.headers.push(['X-Chunk-Checksum', crcOf(data)]);
      tag('resend', this.send(spec));
    }
    tag('status', this.plain('GET', `/v1/sessions/${entry.id}`, uploader));
    const results = await Promise.all(tasks);
    for (const { what, response } of results) {
      if (what === 'wrong-complete' && response?.status === 200)
        this.problem(`a complete with a wrong sha256 answered 200 for ${entry.id}`);
      if (what === 'complete' && response?.status === 200 && jsonOf(response)?.sha256 !== right)
        this.problem(`a complete answered a different sha256 for ${entry.id}`);
    }
    const completed = results.find((r) => r.what === 'complete' && r.response?.status === 200);
    if (completed)
      await this.checkStored(
        uploader,
        `completed/${uploader}/${String(jsonOf(completed.response!)?.path)}`,
        content,
        `raced native upload ${JSON.stringify(path)}`,
      );
  }

  async raceLegacy(fuzz: Extract<FuzzCase, { kind: 'race-legacy' }>): Promise<void> {
    const uploader = this.uploaderOf(fuzz.uploader);
    const content = contentOf(fuzz.seed, fuzz.size);
    const chunks = Math.max(1, Math.min(fuzz.chunks, fuzz.size || 1));
    const filename = `${MARK}-rs-${fuzz.seed}/${fuzz.path.replace(OUTSIDE, this.#world.outside)}`;
    const init = await this.plain('POST', '/upload/init', uploader, { filename, filesize: fuzz.size, chunks });
    const id = init && jsonOf(init)?.upload_id;
    if (init?.status !== 200 || typeof id !== 'string') return;
    const entry: PoolEntry = {
      server: this.#serverIndex,
      uploader,
      api: 'legacy',
      id,
      path: filename,
      content,
      chunkSize: Math.ceil(fuzz.size / chunks) || 1,
      chunkCount: chunks,
    };
    for (let index = 0; index < chunks; index += 1) await this.sendLegacyChunk(entry, index, chunkOf(entry, index));
    const right = md5(content);
    const tasks: Promise<{ what: string; response: RawResponse | undefined }>[] = [];
    for (let i = 0; i < fuzz.finalizes; i += 1)
      tasks.push(
        this.plain('POST', '/upload/finalize', uploader, { upload_id: id, checksum: right }).then((response) => ({
          what: 'finalize',
          response,
        })),
      );
    for (let i = 0; i < fuzz.wrongFinalizes; i += 1)
      tasks.push(
        this.plain('POST', '/upload/finalize', uploader, { upload_id: id, checksum: md5(Buffer.from(`x${i}`)) }).then(
          (response) => ({ what: 'wrong', response }),
        ),
      );
    for (let i = 0; i < fuzz.statuses; i += 1)
      tasks.push(
        this.plain('GET', `/upload/status/${id}`, uploader).then((response) => ({ what: 'status', response })),
      );
    const results = await Promise.all(tasks);
    const paths = new Set<string>();
    for (const { what, response } of results) {
      if (what === 'wrong' && response?.status === 200)
        this.problem(`a legacy finalize with a wrong MD5 answered 200 for ${id}`);
      if (what === 'finalize' && response?.status === 200) paths.add(String(jsonOf(response)?.file_path));
    }
    if (paths.size > 1)
      this.problem(`concurrent finalizes of ${id} answered different files: ${[...paths].join(', ')}`);
    for (const stored of paths)
      await this.checkStored(uploader, stored, content, `raced legacy upload ${JSON.stringify(filename)}`);
    if (!fuzz.again || paths.size !== 1) return;
    // A different file under the same name: the legacy API keeps both (name.1.ext), never overwrites.
    const other = contentOf(fuzz.seed + 1, fuzz.size + 1);
    const second = await this.plain('POST', '/upload/init', uploader, { filename, filesize: other.length, chunks: 1 });
    const secondId = second && jsonOf(second)?.upload_id;
    if (second?.status !== 200 || typeof secondId !== 'string') return;
    const secondEntry: PoolEntry = {
      ...entry,
      id: secondId,
      content: other,
      chunkSize: other.length || 1,
      chunkCount: 1,
    };
    await this.sendLegacyChunk(secondEntry, 0, other);
    const done = await this.plain('POST', '/upload/finalize', uploader, { upload_id: secondId, checksum: md5(other) });
    if (done?.status !== 200) return;
    const secondPath = String(jsonOf(done)?.file_path);
    if (paths.has(secondPath))
      this.problem(`a different file under the same legacy filename was stored over the first one: ${secondPath}`);
    await this.checkStored(uploader, secondPath, other, `second legacy upload under ${JSON.stringify(filename)}`);
    for (const stored of paths)
      await this.checkStored(uploader, stored, content, `first legacy upload under ${JSON.stringify(filename)}`);
  }

  async raceCreate(fuzz: Extract<FuzzCase, { kind: 'race-create' }>): Promise<void> {
    const uploader = this.uploaderOf(fuzz.uploader);
    const content = contentOf(fuzz.seed, fuzz.size);
    const body = {
      path: `${MARK}-rc-${fuzz.seed}/${fuzz.path.replace(OUTSIDE, this.#world.outside)}`,
      size: fuzz.size,
      fingerprint: fingerprintOfContent(content),
      chunkSize: 1024,
      replace: true,
    };
    const answers = await Promise.all(
      Array.from({ length: fuzz.n }, () => this.plain('POST', '/v1/sessions', uploader, body)),
    );
    const ids = new Set(
      answers
        .filter((a) => a && (a.status === 200 || a.status === 201) && jsonOf(a)?.state === 'open')
        .map((a) => String(jsonOf(a!)?.id)),
    );
    if (ids.size > 1)
      this.problem(
        `concurrent creates of one file by one uploader opened ${ids.size} sessions: ${[...ids].join(', ')}`,
      );
  }
}

/** The body a mutation makes of a valid one; `proto` becomes a real `__proto__` key. */
function mutated(body: Record<string, unknown>, mutation: Mutation): unknown {
  if (mutation.mode === 'none') return body;
  const base = mutation.mode === 'some' ? { ...body, ...mutation.fields } : mutation.fields;
  return new JsonPairs(
    Object.entries(base).map(([key, value]) => [key === 'proto' ? '__proto__' : key, value] as const),
  );
}

function encode(body: Buffer, encoding: BodyEncoding): { body: Buffer; header: string | undefined } {
  switch (encoding) {
    case 'identity':
      return { body, header: undefined };
    case 'gzip':
      return { body: gzipSync(body), header: 'gzip' };
    case 'x-gzip':
      return { body: gzipSync(body), header: 'x-gzip' };
    case 'gzip-garbage':
      return { body: Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), body]), header: 'gzip' };
    case 'gzip-bomb':
      bomb ??= gzipBomb(64 * 1024 * 1024);
      return { body: bomb, header: 'gzip' };
    case 'gzip-truncated': {
      const gz = gzipSync(body);
      return { body: gz.subarray(0, Math.max(1, gz.length >> 1)), header: 'gzip' };
    }
    case 'deflate-garbage':
      return { body: Buffer.concat([Buffer.from('not deflate'), body]), header: 'deflate' };
    case 'br':
      return { body, header: 'br' };
    case 'unknown':
      return { body, header: 'x-hostile, compress' };
    case 'double-gzip-header':
      return { body: gzipSync(gzipSync(body)), header: 'gzip, gzip' };
  }
}

/** The per-answer invariant: no 5xx other than 503 and 507; an error answer (but to HEAD) is the JSON error. */
export function checkResponse(response: RawResponse, method: string): string | undefined {
  if (response.status >= 500 && response.status !== 503 && response.status !== 507) return `status ${response.status}`;
  if (response.status >= 400 && method.toUpperCase() !== 'HEAD') {
    const json = jsonOf(response);
    if (json?.success !== false || typeof json.code !== 'string' || typeof json.error !== 'string' || json.error === '')
      return `an error answer without the JSON error body`;
  }
  return undefined;
}

/** The request as text for a failure report (the body shortened). */
export function describeRequest(spec: RequestSpec): string {
  const body =
    spec.body.length > 200
      ? `${JSON.stringify(spec.body.subarray(0, 200).toString('latin1'))}… (${spec.body.length} bytes)`
      : JSON.stringify(spec.body.toString('latin1'));
  const target = spec.target.length > 200 ? `${spec.target.slice(0, 200)}…` : spec.target;
  const headers = spec.headers.map(([n, v]) => `${n}: ${v.length > 100 ? `${v.slice(0, 100)}…` : v}`).join(' | ');
  return `${spec.method} ${JSON.stringify(target)} [${headers}] framing=${JSON.stringify(spec.framing)} body=${body}`;
}

export { RawJson };
