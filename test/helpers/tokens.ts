import { createHash } from 'node:crypto';

/**
 * A strong bearer token for tests (64 hex characters, as `openssl rand -hex 32` makes), derived
 * from `name` so that a test's tokens are the same on every run. The server refuses weak tokens
 * at start-up (server/http/token-strength.ts).
 */
export function testToken(name: string): string {
  return createHash('sha256').update(`ros2-upload-agent test token: ${name}`).digest('hex');
}
