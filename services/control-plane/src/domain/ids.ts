import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** base62 random text; 27 characters carry ~160 bits, like Segment's ksuid ids. */
function base62(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[bytes[i]! % 62];
  return out;
}

export type IdPrefix = 'spa' | 'src' | 'aud' | 'tra' | 'dst' | 'con' | 'tok' | 'map' | 'jou';

export const newId = (prefix: IdPrefix) => `${prefix}_${base62(27)}`;

export const newWriteKey = () => base62(32);

/** Segment's key rule: "Order Completed Last 30 Days" -> "order_completed_last_30_days". */
export function snakeCase(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

/** A Profile API access token: 43 base62 characters, ~256 bits. */
export const newAccessToken = () => base62(43);
