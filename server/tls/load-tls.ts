import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { UploadError } from '../../common/errors/upload-error.js';

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  /** The CA(s) that sign client certificates (clientCa), when the server asks for them. */
  clientCa?: Buffer;
}

/**
 * Reads the certificate and key named by sslCert/sslKey. Both or neither must be given; a file
 * that is missing, unreadable or not a usable PEM pair is a startup error naming the file.
 * There is no fallback to plain HTTP (the Python dashboard had one, silently). `clientCa` needs
 * both, and must hold at least one usable PEM certificate.
 */
export function loadTls(
  sslCert: string | undefined,
  sslKey: string | undefined,
  clientCa?: string | undefined,
): TlsFiles | undefined {
  if (clientCa && (!sslCert || !sslKey)) {
    throw new UploadError(
      'TLS_CONFIG',
      `clientCa (--client-ca) is set to ${clientCa}, but client certificates need HTTPS: ` +
        'set SSL_CERT and SSL_KEY (--ssl-cert, --ssl-key) too',
    );
  }
  if (!sslCert && !sslKey) return undefined;
  if (!sslCert)
    throw new UploadError(
      'TLS_CONFIG',
      `SSL_KEY (--ssl-key) is set to ${sslKey} but SSL_CERT (--ssl-cert) is not; both are needed for HTTPS`,
    );
  if (!sslKey)
    throw new UploadError(
      'TLS_CONFIG',
      `SSL_CERT (--ssl-cert) is set to ${sslCert} but SSL_KEY (--ssl-key) is not; both are needed for HTTPS`,
    );
  const cert = readPem(sslCert, 'SSL certificate');
  const key = readPem(sslKey, 'SSL private key');
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    throw new UploadError(
      'TLS_CONFIG',
      `The SSL certificate ${sslCert} and key ${sslKey} cannot be used together: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (!clientCa) return { cert, key };
  const ca = readPem(clientCa, 'client CA');
  try {
    const certificates =
      ca.toString('latin1').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    if (certificates.length === 0) throw new Error('it holds no PEM certificate');
    for (const pem of certificates) new X509Certificate(pem);
    createSecureContext({ cert, key, ca });
  } catch (error) {
    throw new UploadError('TLS_CONFIG', `The client CA file ${clientCa} cannot be used: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return { cert, key, clientCa: ca };
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new UploadError('TLS_CONFIG', `Cannot read the ${what} file ${file}: ${reason}`, { cause: error });
  }
}
