import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { fixtureFiles, putWholeFile } from '../helpers/fleet-client.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const TOKENS = ['robot1=robot1-token-0123456789abcdef0123456789-0001'];
const VIEWERS = ['ops=viewer-token-0123456789abcdef0123456789-0001'];
const AS_VIEWER = { headers: { authorization: 'Bearer viewer-token-0123456789abcdef0123456789-0001' } };
const ROBOT1 = 'robot1-token-0123456789abcdef0123456789-0001';
const SECRET = 'webhook-secret-for-tests';

interface Received {
  id: string;
  type: string;
  status: number;
  body: { id: string; type: string; data: Record<string, unknown> };
  signature: string | undefined;
  valid: boolean;
}

/**
 * A real webhook receiver: answers 500 to its first `failFirst` requests, 200 afterwards, and
 * records every request. It can be stopped and started again on the same port.
 */
class Receiver {
  readonly received: Received[] = [];
  #failLeft: number;
  #server: http.Server | undefined;
  port = 0;

  constructor(failFirst: number) {
    this.#failLeft = failFirst;
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      const pieces: Buffer[] = [];
      req.on('data', (piece: Buffer) => pieces.push(piece));
      req.on('end', () => {
        const raw = Buffer.concat(pieces);
        const status = this.#failLeft > 0 ? 500 : 200;
        if (status === 500) this.#failLeft -= 1;
        const signature = req.headers['x-webhook-signature'] as string | undefined;
        this.received.push({
          id: String(req.headers['x-event-id']),
          type: String(req.headers['x-event-type']),
          status,
          body: JSON.parse(raw.toString('utf8')) as Received['body'],
          signature,
          valid: signature === `sha256=${createHmac('sha256', SECRET).update(raw).digest('hex')}`,
        });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Event ids the receiver accepted (answered 2xx), with how often. */
  accepted(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const request of this.received) {
      if (request.status === 200) counts.set(request.id, (counts.get(request.id) ?? 0) + 1);
    }
    return counts;
  }
}

let server: TestServer | undefined;
let receiver: Receiver | undefined;
let dir: TempDir | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  await receiver?.stop();
  receiver = undefined;
  await dir?.remove();
  dir = undefined;
});

async function uploadBag(target: TestServer, bag: string, folder: string): Promise<void> {
  for (const file of fixtureFiles(bag)) {
    const answer = await putWholeFile(target.url, `${folder}/${file.name}`, file.data, ROBOT1);
    expect(answer.status).toBe(201);
  }
}

describe('webhooks: --on-file-complete and --on-bag-complete', () => {
  it('delivers every event through failures, an outage and a server restart, none accepted twice', async () => {
    receiver = await (async () => {
      const r = new Receiver(3);
      await r.start();
      return r;
    })();
    dir = await createTempDir('webhooks');
    const options = {
      tokens: TOKENS,
      viewerTokens: VIEWERS,
      uploadDir: dir.path,
      onFileComplete: `http://127.0.0.1:${receiver.port}/files`,
      onBagComplete: `http://127.0.0.1:${receiver.port}/bags`,
      webhookSecret: SECRET,
    };
    server = await startTestServer(options);
    const live = receiver;

    // Bag 1 while the receiver answers 500 to the first three deliveries: they are retried.
    await uploadBag(server, 'sqlite_plain', 'run1');
    await waitFor(
      () => [...live.received].some((r) => r.type === 'bag.completed' && r.status === 200),
      'the first bag event to be accepted',
      60_000,
    );
    expect(live.received.filter((r) => r.status === 500)).toHaveLength(3);

    // Bag 2 while the receiver is down: the deliveries wait in the session store ...
    await live.stop();
    const firstServer = server;
    await uploadBag(firstServer, 'mcap_plain', 'run2');
    await firstServer.server.settled();
    await waitFor(async () => {
      const metrics = await (await fetch(`${firstServer.url}/metrics`, AS_VIEWER)).text();
      return /ros2_upload_server_webhook_attempts_total\{hook="bag",outcome="failed"\} [1-9]/.test(metrics);
    }, 'a failed attempt at the second bag event');
    // ... across a restart of the server, and are delivered once the receiver is back.
    await firstServer.close({ keepFiles: true });
    server = undefined;
    await live.start();
    server = await startTestServer(options);

    const files = [...fixtureFiles('sqlite_plain'), ...fixtureFiles('mcap_plain')].length;
    await waitFor(() => live.accepted().size === files + 2, `all ${files + 2} events to be accepted`, 60_000);
    const accepted = live.received.filter((r) => r.status === 200);
    expect([...live.accepted().values()].every((count) => count === 1)).toBe(true);
    expect(accepted.filter((r) => r.type === 'file.completed')).toHaveLength(files);
    expect(accepted.filter((r) => r.type === 'bag.completed').map((r) => r.body.data.bag)).toEqual(
      expect.arrayContaining(['run1', 'run2']),
    );
    for (const request of live.received) {
      expect(request.valid, 'the HMAC signature').toBe(true);
      expect(request.body.id).toBe(request.id);
    }
    // A retried event keeps its id: the ids refused with 500 were all accepted later.
    for (const refused of live.received.filter((r) => r.status === 500))
      expect(live.accepted().get(refused.id)).toBe(1);
    const bag2 = accepted.find((r) => r.type === 'bag.completed' && r.body.data.bag === 'run2');
    expect(bag2?.body.data).toMatchObject({ uploader: 'robot1', storageIdentifier: 'mcap' });
    expect(bag2?.body.data.files).toHaveLength(fixtureFiles('mcap_plain').length);
    const metrics = await (await fetch(`${server.url}/metrics`, AS_VIEWER)).text();
    expect(metrics).toMatch(/ros2_upload_server_webhook_pending\{hook="file"\} 0/);
  }, 120_000);
});
