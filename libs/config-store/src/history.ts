// Time series behind the console's charts: audience sizes (sampled by the
// batch scheduler) and delivery counts per destination (counted by the
// dispatchers), read by the control plane. This module is the one owner of
// the keys and of how points are bucketed.
//
// Redis layout (prefix = REDIS_KEY_PREFIX). A series is cut into chunks, one
// HASH per chunk, whose fields are the buckets (start of the bucket, ms since
// epoch); every chunk expires by itself once its last bucket is older than its
// tier's retention, so nothing needs trimming:
//   hist:size:{<computation>}:<tier>:<chunkStart>      field <bucketStart>           -> size
//   hist:delivery:{<destination>}:<tier>:<chunkStart>  field <bucketStart>:<outcome> -> count
// Tiers (why two: a chart is at most ~2 000 px wide, so 30 days of minute
// points (43 200 a series) would only be drawn averaged; minutes matter for
// the recent past (a backfill, a delivery incident), hours for trends. A
// series holds at most 2 880 + 2 160 buckets this way, in chunk hashes small
// enough to stay compactly encoded):
//   m: the sample interval (sizes; 1 min by default) or 1 min (deliveries), chunks of 1 h, kept 2 days
//   h: 1 h buckets, chunks of 1 day, kept 90 days
// Writes of one series go in one MULTI: its keys share the `{<id>}` hash tag,
// so one Redis Cluster slot.
//
// Several writers stay correct: a size point is HSET at its bucket's start
// (any replica's sample of that bucket is as good as another's; the last one
// wins, so a bucket ends with the size at its end), and delivery counts are
// HINCRBY (each dispatcher adds what it counted).
import type { RedisClient } from '@engage/redis';

export type HistoryTier = 'm' | 'h';

export interface TierSpec {
  /** Bucket width (ms); the size tier `m` uses the sampler's interval instead. */
  bucketMs: number;
  /** One hash per this many ms of buckets. */
  chunkMs: number;
  /** Buckets are kept this long (ms) after their chunk ends. */
  retentionMs: number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export const HISTORY_TIERS: Record<HistoryTier, TierSpec> = {
  m: { bucketMs: MINUTE, chunkMs: HOUR, retentionMs: 2 * DAY },
  h: { bucketMs: HOUR, chunkMs: DAY, retentionMs: 90 * DAY },
};

/** The longest range a read may ask for (ms): the hourly tier's retention. */
export const HISTORY_MAX_RANGE_MS = HISTORY_TIERS.h.retentionMs;

export const DELIVERY_OUTCOMES = ['sent', 'failed', 'throttled', 'dead_lettered'] as const;
export type DeliveryOutcome = (typeof DELIVERY_OUTCOMES)[number];

export const historyKeys = (prefix: string) => ({
  size: (computationId: string, tier: HistoryTier, chunkStart: number) => `${prefix}hist:size:{${computationId}}:${tier}:${chunkStart}`,
  delivery: (destinationId: string, tier: HistoryTier, chunkStart: number) =>
    `${prefix}hist:delivery:{${destinationId}}:${tier}:${chunkStart}`,
});

// ---- pure bucketing --------------------------------------------------------

/** The start of the bucket of width `widthMs` holding `at`. */
export const bucketStart = (at: number, widthMs: number) => Math.floor(at / widthMs) * widthMs;

/** The chunk starts whose buckets overlap [since, until). */
export function chunkStarts(since: number, until: number, chunkMs: number): number[] {
  const out: number[] = [];
  for (let c = bucketStart(since, chunkMs); c < until; c += chunkMs) out.push(c);
  return out;
}

/** The tier a range is read from: minutes while the whole range is still kept at minutes (and no longer than that), else hours. */
export function tierFor(since: number, until: number, now: number): HistoryTier {
  const { retentionMs } = HISTORY_TIERS.m;
  return since >= now - retentionMs && until - since <= retentionMs ? 'm' : 'h';
}

/** When a chunk's hash expires (ms since epoch): its last bucket plus the retention. */
export const chunkExpiresAt = (chunkStart: number, tier: HistoryTier) =>
  chunkStart + HISTORY_TIERS[tier].chunkMs + HISTORY_TIERS[tier].retentionMs;

export interface SizePoint {
  at: number;
  size: number;
}

/** Size points of chunk hashes (HGETALL), in [since, until), in time order. */
export function parseSizePoints(hashes: Array<Record<string, string>>, since: number, until: number): SizePoint[] {
  const out: SizePoint[] = [];
  for (const hash of hashes)
    for (const [field, value] of Object.entries(hash)) {
      const at = Number(field);
      const size = Number(value);
      if (Number.isFinite(at) && Number.isFinite(size) && at >= since && at < until) out.push({ at, size });
    }
  return out.sort((a, b) => a.at - b.at);
}

export interface DeliveryBucket {
  at: number;
  sent: number;
  failed: number;
  throttled: number;
  deadLettered: number;
}

/**
 * Every bucket of [since, until) (from the bucket holding `since`) with its
 * counts from chunk hashes (HGETALL); a bucket nobody counted in is zeros.
 */
export function parseDeliveryBuckets(
  hashes: Array<Record<string, string>>,
  since: number,
  until: number,
  bucketMs: number,
): DeliveryBucket[] {
  const first = bucketStart(since, bucketMs);
  const out: DeliveryBucket[] = [];
  for (let at = first; at < until; at += bucketMs) out.push({ at, sent: 0, failed: 0, throttled: 0, deadLettered: 0 });
  const field = { sent: 'sent', failed: 'failed', throttled: 'throttled', dead_lettered: 'deadLettered' } as const;
  for (const hash of hashes)
    for (const [key, value] of Object.entries(hash)) {
      const [atText, outcome] = key.split(':');
      const i = (Number(atText) - first) / bucketMs;
      const name = field[outcome as DeliveryOutcome];
      const n = Number(value);
      if (name && Number.isInteger(i) && i >= 0 && i < out.length && Number.isFinite(n)) out[i]![name] += n;
    }
  return out;
}

// ---- Redis -----------------------------------------------------------------

export interface HistoryRange {
  since: number;
  until: number;
  /** The reader's clock (ms), which decides the tier. */
  now: number;
}

export class HistoryStore {
  private readonly keys;
  private readonly sizeBucketMs: number;

  constructor(
    config: {
      keyPrefix: string;
      /** Width of the recent size buckets (the sampler's interval, ms); only writers need it. */
      sizeIntervalMs?: number;
    },
    private readonly deps: { redis: RedisClient },
  ) {
    this.keys = historyKeys(config.keyPrefix);
    this.sizeBucketMs = config.sizeIntervalMs ?? HISTORY_TIERS.m.bucketMs;
  }

  /** Records sizes sampled at `at`: one MULTI per computation (its keys share a slot), all sent together. */
  async recordSizes(samples: Array<{ computationId: string; size: number }>, at: number): Promise<void> {
    await Promise.all(
      samples.map(({ computationId, size }) => {
        const tx = this.deps.redis.multi();
        for (const tier of ['m', 'h'] as const) {
          const width = tier === 'm' ? this.sizeBucketMs : HISTORY_TIERS.h.bucketMs;
          const chunk = bucketStart(at, HISTORY_TIERS[tier].chunkMs);
          const key = this.keys.size(computationId, tier, chunk);
          tx.hset(key, String(bucketStart(at, width)), String(size));
          tx.pexpireat(key, chunkExpiresAt(chunk, tier));
        }
        return tx.exec();
      }),
    );
  }

  /** Adds delivery counts of one destination, each at the time it was counted: one MULTI. */
  async addDeliveries(destinationId: string, counts: Array<{ at: number; outcome: DeliveryOutcome; n: number }>): Promise<void> {
    if (counts.length === 0) return;
    const tx = this.deps.redis.multi();
    const expiries = new Map<string, number>();
    for (const { at, outcome, n } of counts)
      for (const tier of ['m', 'h'] as const) {
        const { bucketMs, chunkMs } = HISTORY_TIERS[tier];
        const chunk = bucketStart(at, chunkMs);
        const key = this.keys.delivery(destinationId, tier, chunk);
        tx.hincrby(key, `${bucketStart(at, bucketMs)}:${outcome}`, n);
        expiries.set(key, chunkExpiresAt(chunk, tier));
      }
    for (const [key, expiresAt] of expiries) tx.pexpireat(key, expiresAt);
    await tx.exec();
  }

  /** HGETALL of a series' chunks in one MULTI (one slot: the keys share the id's hash tag). */
  private async chunks(key: (chunk: number) => string, since: number, until: number, tier: HistoryTier) {
    const tx = this.deps.redis.multi();
    for (const chunk of chunkStarts(since, until, HISTORY_TIERS[tier].chunkMs)) tx.hgetall(key(chunk));
    const results = (await tx.exec()) ?? [];
    return results.map(([err, hash]) => {
      if (err) throw err;
      return hash as Record<string, string>;
    });
  }

  async sizes(computationId: string, range: HistoryRange): Promise<{ tier: HistoryTier; points: SizePoint[] }> {
    const tier = tierFor(range.since, range.until, range.now);
    const hashes = await this.chunks((c) => this.keys.size(computationId, tier, c), range.since, range.until, tier);
    return { tier, points: parseSizePoints(hashes, range.since, range.until) };
  }

  async deliveries(
    destinationId: string,
    range: HistoryRange,
  ): Promise<{ tier: HistoryTier; bucketMs: number; buckets: DeliveryBucket[] }> {
    const tier = tierFor(range.since, range.until, range.now);
    const { bucketMs } = HISTORY_TIERS[tier];
    const hashes = await this.chunks((c) => this.keys.delivery(destinationId, tier, c), range.since, range.until, tier);
    return { tier, bucketMs, buckets: parseDeliveryBuckets(hashes, range.since, range.until, bucketMs) };
  }
}
