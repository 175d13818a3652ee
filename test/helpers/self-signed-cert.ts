import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generate } from 'selfsigned';

export interface SelfSignedCert {
  certFile: string;
  keyFile: string;
  /** The certificate PEM, to trust as a CA in a client. */
  cert: string;
}

/**
 * Generates a self-signed certificate for localhost and 127.0.0.1 (as the legacy deployment guide does with
 * openssl) and writes cert.pem and key.pem into `folder`.
 */
export async function writeSelfSignedCert(folder: string): Promise<SelfSignedCert> {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    notAfterDate: new Date(Date.now() + 2 * 86_400_000),
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  const certFile = path.join(folder, 'cert.pem');
  const keyFile = path.join(folder, 'key.pem');
  await writeFile(certFile, pems.cert);
  await writeFile(keyFile, pems.private, { mode: 0o600 });
  return { certFile, keyFile, cert: pems.cert };
}
