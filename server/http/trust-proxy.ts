/** Express's "trust proxy" from the option's text: unset → false, a number of hops, true/false, or addresses. */
export function parseTrustProxy(value: string | undefined): boolean | number | string {
  if (value === undefined || value === '') return false;
  if (/^\d+$/.test(value)) return Number(value);
  if (value === 'true' || value === 'false') return value === 'true';
  return value;
}
