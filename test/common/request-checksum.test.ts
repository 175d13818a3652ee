import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  canonicalRequestText,
  checkRequestChecksum,
  requestChecksum,
  type RequestToCheck,
} from '../../common/protocol/request-checksum.js';

const chunkPut: RequestToCheck = {
  method: 'put',
  target: '/v1/sessions/0f4c/chunks/3',
  headers: { 'x-chunk-checksum': 'crc32:1c291ca3', 'content-length': '8388608' },
};

describe('request checksum', () => {
  it('covers the method, the target as sent, the covered headers and a JSON body, in a fixed text', () => {
    const body = Buffer.from('{"sha256":"ab"}');
    const text = canonicalRequestText({ ...chunkPut, jsonBody: body });
    expect(text).toBe(
      [
        'PUT',
        '/v1/sessions/0f4c/chunks/3',
        'x-chunk-checksum:crc32:1c291ca3',
        'x-content-sha256:',
        'x-upload-metadata:',
        'x-upload-replace:',
        'content-encoding:',
        'content-length:8388608',
        `body:${(zlib.crc32(body) >>> 0).toString(16).padStart(8, '0')}`,
      ].join('\n'),
    );
    // A fixed vector (computed independently with Python's zlib.crc32), so a client written in
    // another language can check its implementation.
    expect(requestChecksum(chunkPut)).toBe('crc32:31e253fc');
  });

  it('finds one damaged byte in the target, a header or the body, and accepts the request as sent', () => {
    const header = requestChecksum({ ...chunkPut, jsonBody: Buffer.from('{"a":1}') });
    const sent = { ...chunkPut, jsonBody: Buffer.from('{"a":1}') };
    expect(checkRequestChecksum(header, sent)).toBe('ok');
    expect(checkRequestChecksum(header, { ...sent, target: '/v1/sessions/0f4c/chunks/7' })).toBe('mismatch');
    expect(
      checkRequestChecksum(header, { ...sent, headers: { ...sent.headers, 'x-chunk-checksum': 'crc32:1c291ca2' } }),
    ).toBe('mismatch');
    expect(checkRequestChecksum(header, { ...sent, jsonBody: Buffer.from('{"a":2}') })).toBe('mismatch');
    expect(checkRequestChecksum(undefined, sent)).toBe('absent');
    expect(checkRequestChecksum('md5:xyz', sent)).toBe('malformed');
  });
});
