import { UploadError } from '../../../common/errors/upload-error.js';

/**
 * The server's base URL from the `serverUrl` setting. The legacy dashboard clients were configured with
 * the legacy API's prefix (`https://host:8080/upload`), so a trailing `/upload` (and a trailing
 * `/v1`, the native prefix) is dropped; any other path is kept as a reverse-proxy prefix.
 * Returns origin and path prefix without a trailing slash.
 */
export interface ServerBase {
  origin: string;
  /** '' or '/prefix'. */
  prefix: string;
  /** For messages: origin + prefix. */
  href: string;
  https: boolean;
}

export function parseServerUrl(serverUrl: string): ServerBase {
  let url: URL;
  try {
    url = new URL(serverUrl);
  } catch (error) {
    throw new UploadError('CONFIG_INVALID', `serverUrl is not a URL: ${JSON.stringify(serverUrl)}`, { cause: error });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UploadError('CONFIG_INVALID', `serverUrl must be an http:// or https:// URL, not ${url.protocol}`);
  }
  if (url.username || url.password) {
    throw new UploadError('CONFIG_INVALID', 'serverUrl must not contain credentials; use the token setting');
  }
  let prefix = url.pathname.replace(/\/+$/, '');
  for (const suffix of ['/upload', '/v1']) {
    if (prefix.endsWith(suffix)) prefix = prefix.slice(0, -suffix.length);
  }
  return { origin: url.origin, prefix, href: url.origin + prefix, https: url.protocol === 'https:' };
}
