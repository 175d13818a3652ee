/**
 * A peer of the throughput benchmark, the server half: @tus/server with its FileStore on
 * 127.0.0.1, storing uploads in the folder given as argument (what a team would deploy for
 * resumable uploads; it checks no checksum and does not fsync). Prints `listening <port>`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';

const folder = process.argv[2];
if (!folder) throw new Error('usage: tus-server.ts <folder>');
const tus = new Server({ path: '/files', datastore: new FileStore({ directory: folder }) });
const server = http.createServer((req, res) => void tus.handle(req, res));
server.requestTimeout = 0;
server.listen(0, '127.0.0.1', () => console.log(`listening ${(server.address() as AddressInfo).port}`));
process.on('SIGTERM', () => process.exit(0));
