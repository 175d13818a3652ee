import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { usePostgres, withEngines } from './engines.js';
import { createDatabase } from './postgres.js';

/**
 * What the PostgreSQL session store relies on, against the server started by
 * scripts/engines/postgres.sh: transactions, a row insert that two replicas race on, and
 * session-level advisory locks (one replica runs expiry), released when a replica dies.
 */
const clients: pg.Client[] = [];

const databaseUrl = withEngines(async () => {
  const url = await createDatabase(await usePostgres(), 'engine_smoke');
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  try {
    await setup.query('CREATE TABLE sessions (file_identity text PRIMARY KEY, replica text NOT NULL)');
  } finally {
    await setup.end();
  }
  return url;
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.end().catch(() => {})));
});

/** One connection, as one replica holds it (a session-level lock belongs to a connection). */
async function connect(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: databaseUrl() });
  await client.connect();
  clients.push(client);
  return client;
}

describe('PostgreSQL: what the session store relies on', () => {
  it('connects through DATABASE_URL to PostgreSQL 15, in its own database', async () => {
    const client = await connect();
    const { rows } = await client.query<{ version: string; database: string }>(
      'SELECT current_setting($1) AS version, current_database() AS database',
      ['server_version'],
    );
    expect(rows[0]!.version).toMatch(/^15\./);
    expect(rows[0]!.database).toBe(new URL(databaseUrl()).pathname.slice(1));
  });

  it('a rolled-back transaction leaves nothing, a committed one everything', async () => {
    const client = await connect();
    await client.query('BEGIN');
    await client.query("INSERT INTO sessions VALUES ('robot-1/rolled-back', 'a')");
    await client.query('ROLLBACK');
    await client.query('BEGIN');
    await client.query("INSERT INTO sessions VALUES ('robot-1/committed', 'a')");
    await client.query('COMMIT');
    const { rows } = await client.query<{ file_identity: string }>(
      "SELECT file_identity FROM sessions WHERE file_identity LIKE 'robot-1/%' ORDER BY 1",
    );
    expect(rows.map((row) => row.file_identity)).toEqual(['robot-1/committed']);
  });

  it('two replicas creating one file identity at once: the second waits for the first, finds its row', async () => {
    const [first, second] = [await connect(), await connect()];
    const insert =
      "INSERT INTO sessions VALUES ('robot-2/race.mcap', $1) ON CONFLICT (file_identity) DO NOTHING RETURNING replica";
    await first.query('BEGIN');
    expect((await first.query(insert, ['first'])).rows).toEqual([{ replica: 'first' }]);

    const secondPid = (await second.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const secondInsert = second.query(insert, ['second']);
    // Not a sleep: the server itself says the second insert waits on the first's row lock.
    await waitFor(
      async () =>
        (
          await first.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = $2', [
            secondPid,
            'Lock',
          ])
        ).rowCount === 1,
      'the second insert to wait for the first transaction',
    );
    await first.query('COMMIT');

    expect((await secondInsert).rows).toEqual([]);
    const { rows } = await second.query("SELECT replica FROM sessions WHERE file_identity = 'robot-2/race.mcap'");
    expect(rows).toEqual([{ replica: 'first' }]);
  });

  it('pg_try_advisory_lock: one holder at a time, released by unlock or by the holder dying', async () => {
    const EXPIRY_LOCK = 4242;
    const [replicaA, replicaB] = [await connect(), await connect()];
    const tryLock = async (client: pg.Client): Promise<boolean> =>
      (await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [EXPIRY_LOCK])).rows[0]!
        .locked;

    expect(await tryLock(replicaA)).toBe(true);
    expect(await tryLock(replicaB)).toBe(false);
    expect((await replicaA.query('SELECT pg_advisory_unlock($1) AS unlocked', [EXPIRY_LOCK])).rows).toEqual([
      { unlocked: true },
    ]);
    expect(await tryLock(replicaB)).toBe(true);

    // The holder's connection ends (a replica killed with -9 drops its socket the same way):
    // the server releases the lock once that backend has exited.
    const replicaC = await connect();
    expect(await tryLock(replicaC)).toBe(false);
    await replicaB.end();
    await waitFor(() => tryLock(replicaC), 'the lock to be free once its holder disconnected');
  });
});
