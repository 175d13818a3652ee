// Prints a TCP port on 127.0.0.1 that nobody listens on now, for a daemon of the engine scripts
// that must be told its port before it starts (Ceph writes its monitor's into the cluster map).
//
// The port is drawn at random below the kernel's ephemeral range: a port from that range (what
// listen(0) hands out) can be taken by any outgoing connection of the starting cluster before
// the daemon binds it, and a random draw keeps two runs on one machine apart. Ceph's own daemon
// range (6800-7300) is avoided. The caller still handles a bind failure: this is a check, not a
// reservation.
import { readFileSync } from 'node:fs';
import net from 'node:net';

const LOWEST = 10_000;
const CEPH_DAEMONS = [6800, 7300];

function ephemeralLow() {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    return Number(low) || 32_768;
  } catch {
    return 32_768;
  }
}

function listenable(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function pick() {
  const high = ephemeralLow();
  if (high - LOWEST >= 1000) {
    for (let attempt = 0; attempt < 200; attempt += 1) {
      const port = LOWEST + Math.floor(Math.random() * (high - LOWEST));
      if (port >= CEPH_DAEMONS[0] && port <= CEPH_DAEMONS[1]) continue;
      if (await listenable(port)) return port;
    }
  }
  // Too few ports below the ephemeral range: let the kernel choose.
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

process.stdout.write(`${await pick()}\n`);
