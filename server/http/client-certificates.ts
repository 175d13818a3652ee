import { readFileSync } from 'node:fs';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { parseYaml } from '../../common/text/yaml.js';
import { UploadError } from '../../common/errors/upload-error.js';
import { checkFileMode, type FileModeOptions } from './file-mode.js';
import { checkUploaderName } from './load-tokens.js';
import { UPLOADER_NAME } from './token-table.js';

/**
 * What a client certificate says about who sent a request: the uploader it maps to, a reason
 * to refuse it, or nothing (the client presented none).
 */
export type CertificateIdentity = { uploader: string } | { refused: string } | undefined;

/**
 * Client certificates as credentials (mutual TLS, `clientCa`). The TLS layer asks every client
 * for a certificate and lets the handshake finish whatever it gets; this decides per request:
 * - no certificate: undefined (the request may still carry a token, or be anonymous);
 * - one the TLS layer could not verify against `clientCa` (another CA, expired, not yet valid,
 *   not meant for client authentication): refused, naming the problem;
 * - a verified one: its identities are `CN=<subject common name>` and each `DNS:<name>` and
 *   `URI:<uri>` of its subjectAltName. The first identity listed in `clientCertMap` names the
 *   uploader; otherwise, with `clientCertCommonName`, the subject's CN is the uploader name (it
 *   must be a valid one, and not `anonymous`); otherwise it is refused (an unknown subject).
 */
export class ClientCertificates {
  readonly #byIdentity: ReadonlyMap<string, string>;
  readonly #commonName: boolean;

  constructor(byIdentity: ReadonlyMap<string, string>, commonName: boolean) {
    this.#byIdentity = byIdentity;
    this.#commonName = commonName;
  }

  /** How many identities are mapped (for the start-up log). */
  get mapped(): number {
    return this.#byIdentity.size;
  }

  identify(socket: TLSSocket): CertificateIdentity {
    const certificate = socket.getPeerCertificate();
    if (!certificate || Object.keys(certificate).length === 0) return undefined;
    const subject = describeSubject(certificate);
    if (!socket.authorized) {
      const reason = whyNot(socket.authorizationError, certificate);
      return { refused: `The client certificate (${subject}) was not accepted: ${reason}` };
    }
    const identities = identitiesOf(certificate);
    for (const identity of identities) {
      const uploader = this.#byIdentity.get(identity);
      if (uploader !== undefined) return { uploader };
    }
    if (this.#commonName) {
      const cn = certificate.subject?.CN;
      if (typeof cn !== 'string')
        return { refused: `The client certificate (${subject}) has no single subject CN to name its uploader` };
      if (cn.toLowerCase() === 'anonymous' || !UPLOADER_NAME.test(cn))
        return {
          refused:
            `The client certificate's CN ${JSON.stringify(cn)} is not a usable uploader name ` +
            '(letters, digits, ".", "_", "-"; not "anonymous")',
        };
      return { uploader: cn };
    }
    return {
      refused: `The client certificate (${subject}) is valid but not listed in the server's clientCertMap`,
    };
  }
}

/** `CN=robot7, URI:spiffe://…`: what a message may show of a certificate (the client's own). */
function describeSubject(certificate: PeerCertificate): string {
  const identities = identitiesOf(certificate);
  return identities.length > 0 ? identities.slice(0, 3).join(', ') : 'no subject CN or alternative name';
}

/** `CN=…`, `DNS:…` and `URI:…` of a certificate, in that order. */
export function identitiesOf(certificate: PeerCertificate): string[] {
  const identities: string[] = [];
  const cn = certificate.subject?.CN;
  for (const name of Array.isArray(cn) ? cn : cn === undefined ? [] : [cn]) identities.push(`CN=${name}`);
  // Node formats subjectAltName as `DNS:a, URI:b, IP Address:1.2.3.4`, quoting a value that has
  // a comma or a quote in it as a JSON string.
  const alt = certificate.subjectaltname ?? '';
  for (const [, kind, raw = ''] of alt.matchAll(/(DNS|URI):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g)) {
    const value = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    identities.push(`${kind}:${value}`);
  }
  return identities;
}

function whyNot(code: Error | string | undefined | null, certificate: PeerCertificate): string {
  const text = typeof code === 'string' ? code : (code?.message ?? 'unknown reason');
  switch (text) {
    case 'CERT_HAS_EXPIRED':
      return `it expired on ${certificate.valid_to} (CERT_HAS_EXPIRED); renew it`;
    case 'CERT_NOT_YET_VALID':
      return `it is valid only from ${certificate.valid_from} (CERT_NOT_YET_VALID); check the clocks`;
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'CERT_SIGNATURE_FAILURE':
      return `it is not signed by a CA in the server's clientCa (${text})`;
    case 'INVALID_PURPOSE':
      return 'it is not meant for client authentication (its extended key usage lacks clientAuth; INVALID_PURPOSE)';
    default:
      return text;
  }
}

/**
 * The client-certificate settings, checked at start-up (AUTH_CONFIG, exit 78, naming the file
 * and entry): `clientCertMap` is YAML or JSON, `uploader: identity` or `uploader: [identity, …]`
 * with identities `CN=<name>`, `DNS:<name>` or `URI:<uri>`, one uploader each. Undefined when
 * `clientCa` is not set (and then neither may the others be).
 */
export function loadClientCertificates(
  config: { clientCa?: string | undefined; clientCertMap?: string | undefined; clientCertCommonName: boolean },
  options: FileModeOptions = {},
): ClientCertificates | undefined {
  if (!config.clientCa) {
    if (config.clientCertMap || config.clientCertCommonName) {
      throw new UploadError(
        'AUTH_CONFIG',
        'clientCertMap and clientCertCommonName need clientCa (--client-ca: the CA that signs client certificates)',
      );
    }
    return undefined;
  }
  if (!config.clientCertMap && !config.clientCertCommonName) {
    throw new UploadError(
      'AUTH_CONFIG',
      `clientCa ${config.clientCa} is set, but nothing says which certificate is which uploader: ` +
        'give clientCertMap (a file mapping uploaders to certificate identities), or clientCertCommonName ' +
        '(the subject CN is the uploader name)',
    );
  }
  const byIdentity = new Map<string, string>();
  if (config.clientCertMap) {
    const file = config.clientCertMap;
    checkFileMode(file, 'client certificate map', 0o022, options);
    let data: unknown;
    try {
      data = parseYaml(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new UploadError(
        'CONFIG_FILE_UNREADABLE',
        `Cannot read the client certificate map ${file}: ${(error as Error).message.split('\n')[0]}`,
        { cause: error },
      );
    }
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      throw new UploadError(
        'AUTH_CONFIG',
        `Invalid client certificate map ${file}: expected a mapping uploader -> identity (or list of identities)`,
      );
    }
    for (const [uploader, value] of Object.entries(data)) {
      const where = `client certificate map ${file}, uploader ${uploader}`;
      checkUploaderName(uploader, where);
      for (const identity of Array.isArray(value) ? value : [value]) {
        if (typeof identity !== 'string' || !/^(CN=|DNS:|URI:)\S/.test(identity)) {
          throw new UploadError(
            'AUTH_CONFIG',
            `Invalid identity in ${where}: ${JSON.stringify(identity)} (expected CN=<name>, DNS:<name> or URI:<uri>)`,
          );
        }
        const other = byIdentity.get(identity);
        if (other !== undefined && other !== uploader) {
          throw new UploadError(
            'AUTH_CONFIG',
            `The certificate identity ${identity} is given to uploaders ${other} and ${uploader} in ${file}`,
          );
        }
        byIdentity.set(identity, uploader);
      }
    }
  }
  return new ClientCertificates(byIdentity, config.clientCertCommonName);
}
