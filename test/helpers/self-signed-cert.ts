import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generate } from 'selfsigned';

export interface SelfSignedCert {
  certFile: string;
  keyFile: string;
  /** The certificate PEM, to trust as a CA in a client. */
  cert: string;
  /** The private key PEM (to sign other certificates with, when this one is a CA). */
  key: string;
}

export interface CertificateOptions {
  /** The common name; default localhost. */
  commonName?: string;
  /** DNS names and IP addresses it is for; default localhost and 127.0.0.1. */
  dnsNames?: string[];
  ips?: string[];
  /** Validity; default from now for 2 days. */
  notBefore?: Date;
  notAfter?: Date;
  /** Signed by this CA instead of by itself. */
  ca?: SelfSignedCert;
  /** File name prefix in the folder; default none (cert.pem, key.pem). */
  prefix?: string;
}

/**
 * Generates a self-signed certificate for localhost and 127.0.0.1 (as the legacy deployment guide does with
 * openssl) and writes cert.pem and key.pem into `folder`.
 */
export async function writeSelfSignedCert(folder: string): Promise<SelfSignedCert> {
  return writeCertificate(folder);
}

/**
 * Writes `<prefix>cert.pem` and `<prefix>key.pem` into `folder`: a certificate as the options
 * say (names, validity), self-signed (and usable as a CA) or signed by `ca`.
 */
export async function writeCertificate(folder: string, options: CertificateOptions = {}): Promise<SelfSignedCert> {
  const dnsNames = options.dnsNames ?? ['localhost'];
  const ips = options.ips ?? ['127.0.0.1'];
  const notBeforeDate = options.notBefore ?? new Date(Date.now() - 60_000);
  const pems = await generate([{ name: 'commonName', value: options.commonName ?? dnsNames[0] ?? 'localhost' }], {
    keySize: 2048,
    notBeforeDate,
    notAfterDate: options.notAfter ?? new Date(Date.now() + 2 * 86_400_000),
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: options.ca === undefined },
      ...(options.ca === undefined ? [{ name: 'keyUsage' as const, keyCertSign: true, digitalSignature: true }] : []),
      {
        name: 'subjectAltName',
        altNames: [
          ...dnsNames.map((value) => ({ type: 2 as const, value })),
          ...ips.map((ip) => ({ type: 7 as const, ip })),
        ],
      },
    ],
    ...(options.ca ? { ca: { key: options.ca.key, cert: options.ca.cert } } : {}),
  });
  const prefix = options.prefix ?? '';
  const certFile = path.join(folder, `${prefix}cert.pem`);
  const keyFile = path.join(folder, `${prefix}key.pem`);
  await writeFile(certFile, pems.cert);
  await writeFile(keyFile, pems.private, { mode: 0o600 });
  return { certFile, keyFile, cert: pems.cert, key: pems.private };
}
