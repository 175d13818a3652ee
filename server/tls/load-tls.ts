import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { UploadError } from '../../common/errors/upload-error.js';

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/**
 * Reads the certificate and key named by sslCert/sslKey. Both or neither must be given; a file
 * that is missing, unreadable or not a usable PEM pair is a startup error naming the file.
 * There is no fallback to plain HTTP (the Python dashboard had one, silently).
 */
export function loadTls(sslCert: string | undefined, sslKey: string | undefined): TlsFiles | undefined {
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
  const cert = readPem(sslCert, 'certificate');
  const key = readPem(sslKey, 'private key');
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    throw new UploadError(
      'TLS_CONFIG',
      `The SSL certificate ${sslCert} and key ${sslKey} cannot be used together: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return { cert, key };
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new UploadError('TLS_CONFIG', `Cannot read the SSL ${what} file ${file}: ${reason}`, { cause: error });
  }
}
