import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import picomatch from 'picomatch';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { agentOptions } from '../../agent/app/agent-options.js';
import { OTHER_ENV } from '../../agent/cli/invocation.js';
import { serverOptions } from '../../server/config/server-options.js';
import { REPO_ROOT } from '../cli/support/spawn-agent.js';
import { testToken } from '../helpers/tokens.js';
import { uploadFile } from '../helpers/native-upload.js';
import { writeRandomFile } from '../helpers/random-file.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { spawn } from 'node:child_process';

/**
 * The deployment files in deploy/: the server's Dockerfile and compose file, and the agent's
 * systemd unit. No Docker engine runs here (nor in CI), so the image is checked as far as that
 * allows: every file the build copies exists, the runtime stage's production-only install (what
 * `npm prune --omit=dev` leaves, as in the build stage) runs the image's command, with the
 * image's environment, and serves an upload; every variable the files set is a real setting.
 */
const DOCKERFILE = path.join(REPO_ROOT, 'deploy', 'docker', 'Dockerfile');
const COMPOSE = path.join(REPO_ROOT, 'deploy', 'docker', 'compose.yaml');
const AGENT_UNIT = path.join(REPO_ROOT, 'deploy', 'systemd', 'ros2-upload-agent.service');

interface Instruction {
  op: string;
  args: string;
}

function instructions(file: string): Instruction[] {
  const text = readFileSync(file, 'utf8').replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [op, ...rest] = line.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
}

/** ENV of the last stage, as name → value. */
function runtimeEnv(all: Instruction[]): Record<string, string> {
  const lastFrom = all.map((i) => i.op).lastIndexOf('FROM');
  const env: Record<string, string> = {};
  for (const { args } of all.slice(lastFrom).filter((i) => i.op === 'ENV'))
    for (const match of args.matchAll(/([A-Z_]+)=(\S+)/g)) env[match[1]!] = match[2]!;
  return env;
}

let temp: TempDir | undefined;
afterAll(async () => {
  await temp?.remove();
});

describe('deploy/docker', { timeout: 240_000 }, () => {
  const steps = instructions(DOCKERFILE);

  it('copies only files that exist in the repository (the build context is its root)', () => {
    const copies = steps.filter((step) => step.op === 'COPY' && !step.args.startsWith('--from'));
    expect(copies.length).toBeGreaterThan(0);
    for (const { args } of copies) {
      const sources = args.split(/\s+/).slice(0, -1);
      for (const source of sources) expect(existsSync(path.join(REPO_ROOT, source)), source).toBe(true);
    }
    // The build context's ignore file keeps none of them out.
    const ignored = readFileSync(`${DOCKERFILE}.dockerignore`, 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'));
    for (const { args } of copies)
      for (const source of args.split(/\s+/).slice(0, -1))
        expect(
          ignored.some((pattern) => picomatch(pattern, { dot: true })(source.split('/')[0] ?? source)),
          source,
        ).toBe(false);
    // The runtime stage takes what the build stage made.
    const fromBuild = steps.filter((step) => step.op === 'COPY' && step.args.startsWith('--from=build'));
    expect(fromBuild.map((step) => step.args.split(/\s+/)[1])).toEqual([
      '/app/package.json',
      '/app/node_modules',
      '/app/dist',
    ]);
  });

  it('sets only real settings, and its command serves uploads from a production-only install', async () => {
    const env = runtimeEnv(steps);
    const known = new Set([...serverOptions.knownEnv(), 'UPLOAD_SERVER_CONFIG']);
    for (const name of Object.keys(env).filter((name) => name.startsWith('UPLOAD_SERVER_')))
      expect(known.has(name), name).toBe(true);
    const cmd = JSON.parse(steps.filter((step) => step.op === 'CMD').at(-1)!.args) as string[];
    expect(cmd[0]).toBe('node');

    // The runtime stage's /app: package.json, the build stage's node_modules after `npm prune
    // --omit=dev` (here: this checkout's, pruned the same way, offline), and dist/.
    temp = await createTempDir('docker-runtime');
    const app = temp.path;
    for (const name of ['package.json', 'package-lock.json']) cpSync(path.join(REPO_ROOT, name), path.join(app, name));
    cpSync(path.join(REPO_ROOT, 'node_modules'), path.join(app, 'node_modules'), { recursive: true });
    execFileSync('npm', ['prune', '--omit=dev', '--offline', '--no-audit', '--no-fund'], { cwd: app, stdio: 'pipe' });
    expect(existsSync(path.join(app, 'node_modules', 'typescript'))).toBe(false);
    cpSync(path.join(REPO_ROOT, 'dist'), path.join(app, 'dist'), { recursive: true });

    // With the image's environment and no tokens, it refuses to listen on 0.0.0.0 (before binding).
    const base = { PATH: process.env.PATH ?? '', HOME: app, ...env, UPLOAD_SERVER_UPLOAD_DIR: path.join(app, 'data') };
    const open = runImageCommand(cmd, app, base);
    expect(await open.exit).toBe(64);
    expect(open.stderr()).toMatch(/Refusing to listen on 0\.0\.0\.0 without tokens/);

    // With a token, on loopback and a free port (this test never listens beyond loopback): it serves.
    const token = testToken('docker image');
    const server = runImageCommand(cmd, app, {
      ...base,
      UPLOAD_SERVER_HOST: '127.0.0.1',
      UPLOAD_SERVER_PORT: '0',
      UPLOAD_SERVER_TOKENS: `robot1=${token}`,
    });
    try {
      const url = await waitFor(
        () => /"event":"listening","url":"([^"]+)"/.exec(server.stdout())?.[1],
        'the server listening',
        30_000,
      );
      const file = path.join(app, 'bag_0.mcap');
      await writeRandomFile(file, 100_000);
      const result = await uploadFile(url, file, 'bag/bag_0.mcap', { token });
      expect(result.complete.status).toBe(200);
      expect(
        readFileSync(path.join(app, 'data', 'completed', 'robot1', 'bag', 'bag_0.mcap')).equals(readFileSync(file)),
      ).toBe(true);
    } finally {
      server.kill();
      await server.exit;
    }
  });

  it('compose.yaml builds this Dockerfile and sets only real settings', () => {
    const compose = parseYaml(readFileSync(COMPOSE, 'utf8')) as {
      services: Record<
        string,
        { build: { context: string; dockerfile: string }; environment?: Record<string, string> }
      >;
    };
    const service = compose.services['upload-server']!;
    const context = path.resolve(path.dirname(COMPOSE), service.build.context);
    expect(context).toBe(path.resolve(REPO_ROOT));
    expect(path.join(context, service.build.dockerfile)).toBe(DOCKERFILE);
    const known = new Set(serverOptions.knownEnv());
    for (const name of Object.keys(service.environment ?? {})) expect(known.has(name), name).toBe(true);
  });

  it('compose.scale-out.yaml: replicas of one image on S3 and PostgreSQL behind nginx, only real settings', () => {
    const file = path.join(path.dirname(COMPOSE), 'compose.scale-out.yaml');
    const compose = parseYaml(readFileSync(file, 'utf8')) as {
      services: Record<
        string,
        {
          build?: { context: string; dockerfile: string };
          environment?: Record<string, string>;
          volumes?: string[];
        }
      >;
    };
    const replica = compose.services['upload-server']!;
    expect(path.join(path.resolve(path.dirname(file), replica.build!.context), replica.build!.dockerfile)).toBe(
      DOCKERFILE,
    );
    const environment = replica.environment ?? {};
    const known = new Set(serverOptions.knownEnv());
    for (const name of Object.keys(environment)) expect(known.has(name), name).toBe(true);
    expect(environment.UPLOAD_SERVER_STORAGE_BACKEND).toBe('s3');
    expect(environment.UPLOAD_SERVER_DATABASE_URL).toMatch(/^postgres:\/\/.*@database:5432\//);
    expect(Object.keys(compose.services).sort()).toEqual(['database', 'load-balancer', 'upload-server']);
    // The nginx configuration it mounts exists and balances over the replicas' service name.
    const mounted = compose.services['load-balancer']!.volumes!.map((volume) => volume.split(':')[0]!);
    const conf = readFileSync(path.resolve(path.dirname(file), mounted[0]!), 'utf8');
    expect(conf).toMatch(/server upload-server:8080 resolve;/);
    expect(conf).toMatch(/proxy_request_buffering off;/);
  });
});

describe('deploy/systemd', () => {
  it("the agent's unit sets only real settings and runs the built program", () => {
    const unit = readFileSync(AGENT_UNIT, 'utf8');
    const known = new Set([...agentOptions.knownEnv(), ...OTHER_ENV]);
    const names = [...unit.matchAll(/^Environment=(UPLOAD_AGENT_[A-Z_]+)=/gm)].map((match) => match[1]!);
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(known.has(name), name).toBe(true);
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/node \/opt\/ros2-upload-agent\/dist\/agent\/cli\/main\.js watch /m);
    expect(existsSync(path.join(REPO_ROOT, 'dist', 'agent', 'cli', 'main.js'))).toBe(true);
    expect(unit).toMatch(/^RestartPreventExitStatus=64 66 73 75 78$/m);
  });
});

/** Runs the image's command in `cwd` with exactly `env`. */
function runImageCommand(cmd: string[], cwd: string, env: Record<string, string>) {
  const child = spawn(process.execPath, cmd.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (out += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (err += text));
  const exit = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  return { stdout: () => out, stderr: () => err, exit, kill: () => child.kill('SIGTERM') };
}
