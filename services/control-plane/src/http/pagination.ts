// Segment Public API pagination: `pagination.count` (1-200, default 50) and an
// opaque `pagination.cursor`; responses carry {current, next, totalEntries}.
import { ApiError } from './api-error';

export interface Page<T> {
  items: T[];
  pagination: { current: string; next: string | null; totalEntries: number };
}

const encode = (offset: number) => Buffer.from(`o:${offset}`).toString('base64url');

export function paginate<T>(all: T[], query: Record<string, unknown>): Page<T> {
  const rawCount = query['pagination.count'] ?? query.count;
  const rawCursor = query['pagination.cursor'] ?? query.cursor;
  const count = rawCount === undefined ? 50 : Number(rawCount);
  if (!Number.isInteger(count) || count < 1 || count > 200)
    throw ApiError.badRequest('pagination.count: must be an integer from 1 to 200', 'pagination.count');
  let offset = 0;
  if (rawCursor !== undefined && rawCursor !== '') {
    const m = /^o:(\d+)$/.exec(Buffer.from(String(rawCursor), 'base64url').toString());
    if (!m) throw ApiError.badRequest('pagination.cursor: not a cursor this API returned', 'pagination.cursor');
    offset = Number(m[1]);
  }
  const items = all.slice(offset, offset + count);
  return {
    items,
    pagination: { current: encode(offset), next: offset + count < all.length ? encode(offset + count) : null, totalEntries: all.length },
  };
}
