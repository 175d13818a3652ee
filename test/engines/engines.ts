import http from 'node:http';
import { afterAll, beforeAll, inject } from 'vitest';
import type { EngineEnv, EngineName } from './engine-scripts.js';

/**
 * The engines of the scale-out shape for a test file: `useS3()` / `usePostgres()` inside
 * `withEngines(...)`. The first file that asks starts the engine through
 * test/engines/global-setup.ts; later files get the running one. Every file shares it, so each
 * makes its own bucket or database (see s3.ts and postgres.ts).
 *
 * An engine that cannot start fails every test of the asking file with the script's reason
 * (what is missing, how to install it), in CI and locally alike: never a skip.
 */

/** Cold starts measured 13-30 s for Ceph on 2 busy cores; the scripts bound each wait. */
export const ENGINE_START_TIMEOUT_MS = 7 * 60_000;

/**
 * Runs `setup` once before the file's tests (given the time an engine start may take) and
 * returns a getter for its result, to call at the start of each test; `teardown` runs after
 * them if setup succeeded. When setup fails, each test fails with its error when it calls the
 * getter. (Thrown from beforeAll itself, vitest would report the tests as skipped, and CI's
 * summary would count no failure.)
 */
export function withEngines<T>(setup: () => Promise<T>, teardown?: (value: T) => Promise<void> | void): () => T {
  let outcome: { value: T } | { error: unknown } | undefined;
  beforeAll(async () => {
    try {
      outcome = { value: await setup() };
    } catch (error) {
      outcome = { error };
    }
  }, ENGINE_START_TIMEOUT_MS);
  afterAll(async () => {
    if (outcome && 'value' in outcome) await teardown?.(outcome.value);
  });
  return () => {
    if (!outcome) throw new Error('withEngines: call the getter inside a test, after beforeAll ran');
    if ('error' in outcome) throw outcome.error;
    return outcome.value;
  };
}

export interface S3Engine {
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Everything the start script printed (S3_ENDPOINT=..., for a spawned server's environment). */
  readonly env: EngineEnv;
}

export interface PostgresEngine {
  /** postgres://postgres@127.0.0.1:PORT/ros2_upload (trust authentication, loopback only). */
  readonly databaseUrl: string;
  readonly env: EngineEnv;
}

export async function useS3(): Promise<S3Engine> {
  const env = await requestEngine('ceph-rgw');
  return {
    endpoint: required(env, 'S3_ENDPOINT'),
    region: required(env, 'S3_REGION'),
    accessKeyId: required(env, 'S3_ACCESS_KEY_ID'),
    secretAccessKey: required(env, 'S3_SECRET_ACCESS_KEY'),
    env,
  };
}

export async function usePostgres(): Promise<PostgresEngine> {
  const env = await requestEngine('postgres');
  return { databaseUrl: required(env, 'DATABASE_URL'), env };
}

function required(env: EngineEnv, key: string): string {
  const value = env[key];
  if (!value)
    throw new Error(
      `the engine's start script printed no ${key} (it printed: ${Object.keys(env).join(', ') || 'nothing'})`,
    );
  return value;
}

/** Asks the broker; answers once the engine runs, which takes up to a minute for Ceph. */
function requestEngine(name: EngineName): Promise<EngineEnv> {
  const broker = inject('engineBroker');
  if (!broker) throw new Error('no engine broker: test/engines/global-setup.ts is not in vitest.config.ts globalSetup');
  return new Promise((resolve, reject) => {
    const request = http.request(`${broker}/engines/${name}`, { method: 'POST' }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (text: string) => (body += text));
      response.on('end', () => {
        try {
          const answer = JSON.parse(body) as { env?: EngineEnv; error?: string };
          if (response.statusCode === 200 && answer.env) resolve(answer.env);
          else reject(new Error(`engine ${name} could not start: ${answer.error ?? body}`));
        } catch {
          reject(new Error(`engine broker answered ${response.statusCode}: ${body}`));
        }
      });
    });
    request.on('error', (error) => reject(new Error(`engine broker unreachable at ${broker}: ${error.message}`)));
    request.end();
  });
}
