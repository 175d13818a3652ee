import type pg from 'pg';

/**
 * Runs `work` in one transaction on a connection of `pool`. While a connection is checked out
 * the pool does not listen for its errors: one that breaks then (the server restarted, the
 * database dropped, a network cut) would emit an unhandled 'error' and end the process. Here
 * the error is kept, the transaction fails with it, and the broken connection is discarded.
 */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (error: Error): void => {
    broken = error;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    if (!broken) await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}
