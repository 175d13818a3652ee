import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { waitFor } from '../helpers/wait-for.js';

/** A TCP sink that records what it received per connection and answers "ok" to each piece. */
async function startSink(): Promise<{ server: net.Server; port: number; received: Buffer[][] }> {
  const received: Buffer[][] = [];
  const server = net.createServer((socket) => {
    const pieces: Buffer[] = [];
    received.push(pieces);
    socket.on('data', (data) => {
      pieces.push(data);
      socket.write('ok');
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as net.AddressInfo).port, received };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('FaultProxy (test helper)', () => {
  let sink: Awaited<ReturnType<typeof startSink>>;
  let proxy: FaultProxy;
  beforeEach(async () => {
    sink = await startSink();
    proxy = await FaultProxy.start({ port: sink.port });
  });
  afterEach(async () => {
    await proxy.close();
    await new Promise((resolve) => sink.server.close(resolve));
  });

  it('forwards and counts bytes both ways', async () => {
    const socket = await connect(proxy.port);
    socket.write(Buffer.alloc(1000, 1));
    await waitFor(() => proxy.stats.bytesDown >= 2, 'the answer');
    expect(proxy.stats).toMatchObject({ connections: 1, bytesUp: 1000 });
    socket.destroy();
  });

  it('drops a connection after N bytes, for the given number of connections', async () => {
    proxy.setFaults({ dropAfter: { bytes: 100, times: 1 } });
    const first = await connect(proxy.port);
    const closed = new Promise((resolve) => first.once('close', resolve));
    first.on('error', () => undefined);
    first.write(Buffer.alloc(300, 2));
    await closed;
    expect(proxy.stats.drops).toBe(1);
    await waitFor(() => sink.received[0]!.reduce((n, b) => n + b.length, 0) === 100, 'exactly 100 bytes delivered');
    const second = await connect(proxy.port);
    second.write(Buffer.alloc(300, 3));
    await waitFor(() => proxy.stats.bytesUp === 400, 'the second connection to pass untouched');
    second.destroy();
  });

  it('flips one bit at a connection offset', async () => {
    proxy.setFaults({ flipBitAt: { offset: 10, bit: 0, times: 1 } });
    const socket = await connect(proxy.port);
    socket.write(Buffer.alloc(20, 0));
    await waitFor(() => proxy.stats.bytesUp === 20, 'delivery');
    const data = Buffer.concat(sink.received[0]!);
    expect([...data].map((b, i) => (b !== 0 ? i : -1)).filter((i) => i >= 0)).toEqual([10]);
    expect(data[10]).toBe(1);
    socket.destroy();
  });

  it('stalls after N bytes and forwards nothing more', async () => {
    proxy.setFaults({ stallAfter: { bytes: 50, times: 1 } });
    const socket = await connect(proxy.port);
    socket.write(Buffer.alloc(40));
    await waitFor(() => proxy.stats.bytesUp === 40, 'the first bytes');
    socket.write(Buffer.alloc(40));
    await waitFor(() => proxy.stats.stalls === 1, 'the stall');
    socket.write(Buffer.alloc(40));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(proxy.stats.bytesUp).toBe(50);
    socket.destroy();
  });

  it('refuses connections while down and accepts them again on the same port', async () => {
    const port = proxy.port;
    await proxy.setDown(true);
    await expect(connect(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await proxy.setDown(false);
    expect(proxy.port).toBe(port);
    const socket = await connect(port);
    socket.destroy();
  });
});
