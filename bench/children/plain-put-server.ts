/**
 * Baseline (a) of the throughput benchmark, the server half: a minimal node:http server on
 * 127.0.0.1 that streams each PUT body into a file in the folder given as argument (no
 * checksums, no fsync: the transport limit, not a durable store). Prints `listening <port>`.
 *
 * With `--verify` it is the server half of baseline (d), the least a server must do for the
 * guarantee ours gives: it computes the body's SHA-256 while writing it, syncs the file to disk
 * before answering, and answers 200 only when the digest equals the client's `x-sha256` trailer
 * (422 otherwise). No sessions, no resumption, no chunk checks: the cost floor of "verified and
 * durable", in the same runtime as ours.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

const [folder, mode] = process.argv.slice(2);
if (!folder || (mode !== undefined && mode !== '--verify'))
  throw new Error('usage: plain-put-server.ts <folder> [--verify]');
const verify = mode === '--verify';
let count = 0;
const server = http.createServer((req, res) => {
  if (req.method !== 'PUT') {
    res.writeHead(405).end();
    return;
  }
  let bytes = 0;
  const hash = verify ? createHash('sha256') : undefined;
  req.on('data', (piece: Buffer) => {
    bytes += piece.length;
    hash?.update(piece);
  });
  count += 1;
  const answer = (status: number, body: object): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  // `flush`: the file is fsynced before the stream finishes, so the answer follows durability.
  pipeline(req, createWriteStream(path.join(folder, `put-${count}.bin`), { flush: verify })).then(
    () => {
      if (!hash) return answer(200, { bytes });
      const sha256 = hash.digest('hex');
      const claimed = req.trailers['x-sha256'];
      answer(claimed === sha256 ? 200 : 422, { bytes, sha256, claimed });
    },
    (error: unknown) => res.writeHead(500).end(String(error)),
  );
});
server.requestTimeout = 0;
server.listen(0, '127.0.0.1', () => console.log(`listening ${(server.address() as AddressInfo).port}`));
process.on('SIGTERM', () => process.exit(0));
