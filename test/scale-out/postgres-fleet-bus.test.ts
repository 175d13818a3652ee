import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { decodeDeltas, encodeDeltas, type FleetDeltas, type UploadDelta } from '../../server/fleet/fleet-deltas.js';
import { PostgresFleetBus } from '../../server/sessions/postgres-fleet-bus.js';
import { usePostgres, withEngines } from '../engines/engines.js';
import { createDatabase } from '../engines/postgres.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * The live view's bus between replicas on PostgreSQL (LISTEN/NOTIFY): every other replica gets
 * each message once, the sender never its own; a large report is split into messages under
 * PostgreSQL's 8000-byte limit; a listener whose connection is cut comes back and is told to
 * read the database again.
 */
const buses: PostgresFleetBus[] = [];
afterAll(async () => {
  await Promise.all(buses.map((bus) => bus.close()));
});

const databaseUrl = withEngines(async () => createDatabase(await usePostgres(), 'fleet_bus'));

async function member(name: string, errors: Error[] = []): Promise<PostgresFleetBus> {
  const bus = await PostgresFleetBus.open({ connectionString: databaseUrl(), application_name: name }, (error) =>
    errors.push(error),
  );
  buses.push(bus);
  return bus;
}

function received(bus: PostgresFleetBus): { message: string; origin: string }[] {
  const list: { message: string; origin: string }[] = [];
  bus.onMessage((message, origin) => list.push({ message, origin }));
  return list;
}

describe('PostgreSQL fleet bus', () => {
  it('delivers each message to every other member once, never back to its sender', async () => {
    const [a, b, c] = await Promise.all([member('bus-a'), member('bus-b'), member('bus-c')]);
    const [fromA, fromB, fromC] = [received(a), received(b), received(c)];
    await a.publish('{"e":["one"]}');
    await b.publish('{"e":["two"]}');
    await waitFor(() => fromC.length === 2 && fromA.length === 1 && fromB.length === 1, 'both messages delivered');
    // A third message sent after them, once it arrived, shows nothing else was on its way.
    await c.publish('{}');
    await waitFor(() => fromA.length === 2 && fromB.length === 2, 'the last message');
    expect(fromA).toEqual([
      { message: '{"e":["two"]}', origin: b.id },
      { message: '{}', origin: c.id },
    ]);
    expect(fromB).toEqual([
      { message: '{"e":["one"]}', origin: a.id },
      { message: '{}', origin: c.id },
    ]);
    expect(fromC).toEqual([
      { message: '{"e":["one"]}', origin: a.id },
      { message: '{"e":["two"]}', origin: b.id },
    ]);
  });

  it('splits a large report into messages PostgreSQL carries; every item arrives once', async () => {
    const [a, b] = await Promise.all([member('split-a'), member('split-b')]);
    const fromA = received(b);
    // 500 uploads with 200-byte paths (non-ASCII too), ended sessions, robots: about 170 kB of JSON.
    const uploads: UploadDelta[] = Array.from({ length: 500 }, (_, i) => [
      `session-${i}`,
      `robot-${i % 50}`,
      `bag_${i}/${'é'.repeat(60)}${'x'.repeat(70)}.mcap`,
      5_000_000_000,
      i * 1_000_000,
      8 * 1024 * 1024,
      Date.now() - 60_000,
      Date.now(),
      (i % 7 === 0 ? 1 : 0) as 0 | 1,
    ]);
    const deltas: FleetDeltas = {
      e: Array.from({ length: 300 }, (_, i) => `ended-${i}`),
      u: uploads,
      r: Array.from(
        { length: 50 },
        (_, i) => [`robot-${i}`, Date.now(), 123, 1, 0] as [string, number, number, number, number],
      ),
    };
    const { messages, dropped } = encodeDeltas(deltas, a.maxMessageBytes);
    expect(dropped).toBe(0);
    // Packed: as few messages as the bytes need (a few more where one kind of item ends).
    const needed = Math.ceil(Buffer.byteLength(JSON.stringify(deltas)) / a.maxMessageBytes);
    expect(needed).toBeGreaterThan(15);
    expect(messages.length).toBeGreaterThanOrEqual(needed);
    expect(messages.length).toBeLessThanOrEqual(needed + 3);
    for (const message of messages) expect(Buffer.byteLength(message)).toBeLessThanOrEqual(a.maxMessageBytes);
    for (const message of messages) await a.publish(message);
    await waitFor(() => fromA.length === messages.length, 'every message');
    const decoded = fromA.map(({ message }) => decodeDeltas(message));
    expect(decoded.flatMap((d) => d?.u ?? [])).toEqual(uploads);
    expect(decoded.flatMap((d) => d?.e ?? [])).toEqual(deltas.e);
    expect(decoded.flatMap((d) => d?.r ?? [])).toEqual(deltas.r);
    // Ends come before any progress in the message order: an ended upload is never shown again.
    const firstUpload = decoded.findIndex((d) => (d?.u?.length ?? 0) > 0);
    const lastEnd = decoded.findLastIndex((d) => (d?.e?.length ?? 0) > 0);
    expect(lastEnd).toBeLessThanOrEqual(firstUpload);
    // A message over the limit is refused before it reaches the database.
    await expect(a.publish('x'.repeat(a.maxMessageBytes + 1))).rejects.toThrow(/exceeds/);
    // An item no message could carry is left out and counted; garbage is not a report.
    const huge = encodeDeltas({ b: [['robot', '\u0001'.repeat(2000)]] }, a.maxMessageBytes);
    expect(huge.dropped).toBe(1);
    expect(decodeDeltas('not json')).toBeUndefined();
    expect(decodeDeltas('{"u":[["id",1]]}')).toEqual({ u: [] });
  });

  it('a listener whose connection is cut comes back by itself and is told to read the database again', async () => {
    const errors: Error[] = [];
    const [a, b] = await Promise.all([member('cut-a'), member('cut-b', errors)]);
    const fromA = received(b);
    let resyncs = 0;
    b.onResync(() => {
      resyncs += 1;
    });
    const admin = new pg.Client({ connectionString: databaseUrl() });
    await admin.connect();
    try {
      const { rowCount } = await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'cut-b'",
      );
      expect(rowCount).toBe(1);
      await waitFor(() => errors.length > 0 && resyncs === 1, 'the connection lost, made again, resync announced');
      await waitFor(
        async () =>
          (
            await admin.query(
              "SELECT 1 FROM pg_stat_activity WHERE application_name = 'cut-b' AND query LIKE 'LISTEN%'",
            )
          ).rowCount === 1,
        'listening again',
      );
    } finally {
      await admin.end();
    }
    await a.publish('{"e":["after"]}');
    await waitFor(() => fromA.length === 1, 'a message after the reconnection');
    expect(fromA[0]).toEqual({ message: '{"e":["after"]}', origin: a.id });
  });
});
