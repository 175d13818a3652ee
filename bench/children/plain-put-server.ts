/**
 * Baseline (a) of the throughput benchmark, the server half: a minimal node:http server on
 * 127.0.0.1 that streams each PUT body into a file in the folder given as argument (no
 * checksums, no fsync: the transport limit, not a durable store). Prints `listening <port>`.
 */
import { createWriteStream } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

const folder = process.argv[2];
if (!folder) throw new Error('usage: plain-put-server.ts <folder>');
let count = 0;
const server = http.createServer((req, res) => {
  if (req.method !== 'PUT') {
    res.writeHead(405).end();
    return;
  }
  let bytes = 0;
  req.on('data', (piece: Buffer) => {
    bytes += piece.length;
  });
  count += 1;
  pipeline(req, createWriteStream(path.join(folder, `put-${count}.bin`))).then(
    () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes })),
    (error: unknown) => res.writeHead(500).end(String(error)),
  );
});
server.requestTimeout = 0;
server.listen(0, '127.0.0.1', () => console.log(`listening ${(server.address() as AddressInfo).port}`));
process.on('SIGTERM', () => process.exit(0));
