import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { PostgresEngine } from './engines.js';

/**
 * A new, empty database of its own for the calling test file (the server is shared by the run),
 * so that migrations and rows of one file never meet another's. Returns its connection URL.
 */
export async function createDatabase(engine: PostgresEngine, purpose: string): Promise<string> {
  const name = `${purpose}_${randomBytes(4).toString('hex')}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const admin = new pg.Client({ connectionString: engine.databaseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(engine.databaseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
