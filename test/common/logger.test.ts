import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { agentOptionSpecs } from '../../agent/app/agent-options.js';
import { createLogger, redactPaths } from '../../common/program/create-logger.js';
import { serverOptionSpecs } from '../../server/index.js';

function sink(): { stream: Writable; lines: () => Record<string, unknown>[]; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return {
    stream,
    text: () => text,
    lines: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe('the logger factory', () => {
  it("derives redaction from the option specs' secret flag, plus the authorization header", () => {
    expect(redactPaths([agentOptionSpecs])).toEqual([
      'authorization',
      '*.authorization',
      'headers.authorization',
      'req.headers.authorization',
      'clientKey',
      '*.clientKey',
      'token',
      '*.token',
    ]);
    expect(redactPaths([serverOptionSpecs])).toEqual([
      'authorization',
      '*.authorization',
      'headers.authorization',
      'req.headers.authorization',
      'databaseUrl',
      '*.databaseUrl',
      'onBagComplete',
      '*.onBagComplete',
      'onFileComplete',
      '*.onFileComplete',
      's3AccessKeyId',
      '*.s3AccessKeyId',
      's3SecretAccessKey',
      '*.s3SecretAccessKey',
      'tokens',
      '*.tokens',
      'viewerTokens',
      '*.viewerTokens',
      'webhookSecret',
      '*.webhookSecret',
    ]);
  });

  it('never writes a secret option or a bearer token, at the top level or one object down', () => {
    const out = sink();
    const logger = createLogger({
      name: 'ros2-upload-agent',
      level: 'info',
      specs: [agentOptionSpecs, serverOptionSpecs],
      destination: out.stream,
    });
    logger.info(
      {
        token: 'tok-1',
        config: { clientKey: 'key-2', tokens: ['r1=tok-3'] },
        headers: { authorization: 'Bearer tok-4' },
        req: { headers: { authorization: 'Bearer tok-5' } },
      },
      'settings',
    );
    expect(out.text()).not.toMatch(/tok-1|key-2|tok-3|tok-4|tok-5/);
    expect(out.lines()[0]).toMatchObject({
      name: 'ros2-upload-agent',
      msg: 'settings',
      token: '[redacted]',
      config: { clientKey: '[redacted]', tokens: '[redacted]' },
    });
  });

  it('names the program and takes fixed fields instead of pid and hostname when given', () => {
    const out = sink();
    createLogger({ name: 'ros2-upload-server', level: 'debug', destination: out.stream, base: { pid: 42 } }).debug(
      'hello',
    );
    const [line] = out.lines();
    expect(line).toMatchObject({ name: 'ros2-upload-server', pid: 42, msg: 'hello', level: 20 });
    expect(line).not.toHaveProperty('hostname');
  });
});
