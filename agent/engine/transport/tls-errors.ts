import { UploadError } from '../../../common/errors/upload-error.js';

/** What the transport knows about its TLS set-up, to name the fix. */
export interface TlsContext {
  /** The server's host name as in the URL. */
  host: string;
  /** The CA file in use (`caFile`), if any. */
  caFile: string | undefined;
  /** Whether a client certificate is presented (`clientCert`). */
  clientCert: boolean;
}

/** OpenSSL's verification results (Node's error codes) that mean "this certificate is not trusted". */
const untrusted = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'CERT_SIGNATURE_FAILURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_CHAIN_TOO_LONG',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_REVOKED',
]);
const selfSigned = new Set(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN']);
const expired = new Set(['CERT_HAS_EXPIRED', 'ERROR_IN_CERT_NOT_AFTER_FIELD']);
const notYetValid = new Set(['CERT_NOT_YET_VALID', 'ERROR_IN_CERT_NOT_BEFORE_FIELD']);
const wrongHost = new Set(['ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH']);

/**
 * A TLS failure that configuration, not the network, has to fix: the server's certificate is
 * self-signed, from a CA this machine does not trust, for another host name, expired or not yet
 * valid; the server refused this agent's client certificate; or the port does not speak TLS.
 * Retrying cannot help, so these are TLS_CERTIFICATE (the engine is blocked and says so; the
 * one-shot `upload` exits 78) instead of NETWORK (offline, probing forever). The message names
 * the problem and the fix. Undefined for any other failure.
 */
export function tlsCertificateError(
  what: string,
  errno: string | undefined,
  cause: unknown,
  tls: TlsContext,
): UploadError | undefined {
  if (errno === undefined) return undefined;
  const detail = cause instanceof Error ? cause.message : String(cause);
  const trust = tls.caFile
    ? `the CA in --ca-file ${tls.caFile} did not sign it: give the file of the CA that did`
    : 'pass the server certificate (or the CA that signed it) with --ca-file ' +
      '(UPLOAD_AGENT_CA_FILE, ROS parameter ca_file)';
  let problem: string | undefined;
  if (selfSigned.has(errno)) problem = `the server's certificate is self-signed and not trusted (${errno}): ${trust}`;
  else if (untrusted.has(errno))
    problem = `the server's certificate is signed by a CA this machine does not trust (${errno}): ${trust}`;
  else if (wrongHost.has(errno))
    problem =
      `the server's certificate is not for the host name ${tls.host} (${certificateNames(cause)}): ` +
      `connect with --server https://<a name the certificate is for>, or give the server a certificate for ${tls.host}`;
  else if (expired.has(errno))
    problem =
      `the server's certificate has expired (${errno}; this machine's clock says ${new Date().toISOString()}): ` +
      "renew the certificate on the server, or set this machine's clock right (NTP)";
  else if (notYetValid.has(errno))
    problem =
      `the server's certificate is not valid yet (${errno}; this machine's clock says ${new Date().toISOString()}): ` +
      "set this machine's clock right (NTP)";
  else if (
    /ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED)/.test(errno)
  )
    problem = tls.clientCert
      ? `the server refused this agent's client certificate (${errno}): ` +
        'give one the server trusts with --client-cert and --client-key'
      : `the server requires a client certificate (${errno}): give one with --client-cert and --client-key`;
  else if (errno === 'ERR_SSL_WRONG_VERSION_NUMBER' || errno === 'ERR_SSL_PACKET_LENGTH_TOO_LONG')
    problem = `the server does not speak TLS on this port (${errno}): use an http:// URL or the server's TLS port`;
  if (problem === undefined) return undefined;
  return new UploadError('TLS_CERTIFICATE', `${what}: TLS: ${problem} [${detail}]`, { cause });
}

/** The names a certificate is for, from Node's ERR_TLS_CERT_ALTNAME_INVALID (`cert.subjectaltname`). */
function certificateNames(cause: unknown): string {
  for (let current = cause, depth = 0; current && depth < 5; depth += 1) {
    const cert = (current as { cert?: { subjectaltname?: unknown; subject?: { CN?: unknown } } }).cert;
    if (typeof cert?.subjectaltname === 'string')
      return `it is for ${cert.subjectaltname.replace(/(DNS|IP Address):/g, '')}`;
    if (typeof cert?.subject?.CN === 'string') return `it is for ${cert.subject.CN}`;
    current = (current as { cause?: unknown }).cause;
  }
  return 'it is for another name';
}
