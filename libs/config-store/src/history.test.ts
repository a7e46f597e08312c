// The bucketing of the history keyspace: pure, no Redis.
import { bucketStart, chunkExpiresAt, chunkStarts, HISTORY_TIERS, parseDeliveryBuckets, parseSizePoints, tierFor } from './history';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2026, 0, 31, 12, 0, 0); // a whole hour

describe('bucketing', () => {
  it('puts a time in the bucket that starts at or before it', () => {
    expect([T0, T0 + 1, T0 + MIN - 1, T0 + MIN, T0 - 1].map((t) => bucketStart(t, MIN))).toEqual([T0, T0, T0, T0 + MIN, T0 - MIN]);
    expect(bucketStart(T0 + 90 * MIN, HOUR)).toBe(T0 + HOUR);
  });

  it('lists the chunks overlapping a range, the first one holding its start, none starting at its (exclusive) end', () => {
    expect(chunkStarts(T0 + 30 * MIN, T0 + 2 * HOUR, HOUR)).toEqual([T0, T0 + HOUR]);
    expect(chunkStarts(T0 + 30 * MIN, T0 + 2 * HOUR + 1, HOUR)).toEqual([T0, T0 + HOUR, T0 + 2 * HOUR]);
    expect(chunkStarts(T0, T0 + 1, DAY)).toEqual([bucketStart(T0, DAY)]);
  });

  it('reads ranges within the last 2 days (and no longer) from the minute tier, others from the hourly one', () => {
    const now = T0;
    expect(tierFor(now - DAY, now, now)).toBe('m');
    expect(tierFor(now - 2 * DAY, now, now)).toBe('m');
    expect(tierFor(now - 2 * DAY - 1, now, now)).toBe('h');
    expect(tierFor(now - 7 * DAY, now - 6 * DAY, now)).toBe('h');
    // Starting recently but reaching far ahead: too many minute buckets.
    expect(tierFor(now - HOUR, now + 3 * DAY, now)).toBe('h');
  });

  it('expires a chunk once its last bucket is older than the retention', () => {
    expect(chunkExpiresAt(T0, 'm')).toBe(T0 + HOUR + 2 * DAY);
    expect(chunkExpiresAt(T0, 'h')).toBe(T0 + DAY + 90 * DAY);
    expect(HISTORY_TIERS.h.retentionMs / HISTORY_TIERS.h.bucketMs + HISTORY_TIERS.m.retentionMs / HISTORY_TIERS.m.bucketMs).toBe(
      2160 + 2880,
    );
  });
});

describe('parsing', () => {
  it('gives the size points of the range in time order, across chunks, skipping what is not a number', () => {
    const hashes: Array<Record<string, string>> = [
      { [T0 + 2 * MIN]: '7', [T0]: '5', [T0 + MIN]: '6', junk: '1' },
      { [T0 + HOUR]: '9', [T0 + HOUR + MIN]: 'x' },
    ];
    expect(parseSizePoints(hashes, T0 + MIN, T0 + HOUR + 2 * MIN)).toEqual([
      { at: T0 + MIN, size: 6 },
      { at: T0 + 2 * MIN, size: 7 },
      { at: T0 + HOUR, size: 9 },
    ]);
    expect(parseSizePoints([], T0, T0 + HOUR)).toEqual([]);
  });

  it('gives every delivery bucket of the range, zeros where nothing was counted', () => {
    const hashes = [
      { [`${T0}:sent`]: '3', [`${T0}:throttled`]: '1', [`${T0 + 2 * MIN}:dead_lettered`]: '2', [`${T0 + 2 * MIN}:retried`]: '9' },
      { [`${T0 + MIN}:failed`]: '4', [`${T0 + 5 * MIN}:sent`]: '1', [`${T0 + 90 * 1000}:sent`]: '8' },
    ];
    expect(parseDeliveryBuckets(hashes, T0 + 30_000, T0 + 3 * MIN, MIN)).toEqual([
      { at: T0, sent: 3, failed: 0, throttled: 1, deadLettered: 0 },
      { at: T0 + MIN, sent: 0, failed: 4, throttled: 0, deadLettered: 0 },
      { at: T0 + 2 * MIN, sent: 0, failed: 0, throttled: 0, deadLettered: 2 },
    ]);
  });
});
