import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generate } from 'selfsigned';

/** A certificate and its key, as PEM text and as files in a test's folder. */
export interface PemPair {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

const DAY = 86_400_000;

/** A certificate authority of the test's own (EC P-256, so generating it is quick). */
export async function makeCa(folder: string, name: string): Promise<PemPair> {
  const pems = await generate([{ name: 'commonName', value: name }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: new Date(Date.now() - DAY),
    notAfterDate: new Date(Date.now() + 30 * DAY),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  return write(folder, name, pems.cert, pems.private);
}

export interface ClientCertOptions {
  /** Subject CN. */
  cn: string;
  uris?: string[];
  dnsNames?: string[];
  notBefore?: Date;
  notAfter?: Date;
  /** Extended key usage: clientAuth (default) or serverAuth only. */
  usage?: 'clientAuth' | 'serverAuth';
}

/** A client certificate signed by `ca`, written as `<file>.pem` and `<file>.key` in `folder`. */
export async function makeClientCert(
  folder: string,
  file: string,
  ca: PemPair,
  options: ClientCertOptions,
): Promise<PemPair> {
  const altNames = [
    ...(options.uris ?? []).map((value) => ({ type: 6 as const, value })),
    ...(options.dnsNames ?? []).map((value) => ({ type: 2 as const, value })),
  ];
  const pems = await generate([{ name: 'commonName', value: options.cn }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: options.notBefore ?? new Date(Date.now() - DAY),
    notAfterDate: options.notAfter ?? new Date(Date.now() + 30 * DAY),
    ca: { cert: ca.cert, key: ca.key },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      {
        name: 'extKeyUsage',
        clientAuth: (options.usage ?? 'clientAuth') === 'clientAuth',
        serverAuth: options.usage === 'serverAuth',
      },
      ...(altNames.length > 0 ? [{ name: 'subjectAltName' as const, altNames }] : []),
    ],
  });
  return write(folder, file, pems.cert, pems.private);
}

async function write(folder: string, name: string, cert: string, key: string): Promise<PemPair> {
  const certFile = path.join(folder, `${name}.pem`);
  const keyFile = path.join(folder, `${name}.key`);
  await writeFile(certFile, cert);
  await writeFile(keyFile, key, { mode: 0o600 });
  return { cert, key, certFile, keyFile };
}
