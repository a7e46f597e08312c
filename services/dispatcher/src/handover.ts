// The handover between a new connection's initial sync and the live path
// (engage.computations.changes): each (connection, profile) is claimed
// atomically before a call is sent, so a transition the two paths both see
// reaches the destination once, under the messageId of whichever claimed it.
//
// Rules, per (connection, profile), in one script:
// - 'sync' (the initial sync, sending a member's current value): only a profile
//   nobody has claimed. Once the live path has claimed a profile it carries
//   that profile's latest value: every later change comes through it too.
// - 'live' (a change record): unless the same value is already claimed under
//   another id (the sync, or an earlier record, already sent that state), or
//   the sync read a state that already held this record (its changeSeq at
//   least the record's: the sync sent a newer value, and this older one would
//   take the destination back).
// - 'correct' (the sync correcting a value that changed while it sent): always.
// A claim by the same id is granted again (a redelivered chunk, a sync that
// restarts), with the timestamp first recorded, so the call keeps its body.
//
// The owner of this keyspace (the hash tag keeps a connection on one slot):
//   <prefix>dispatch:handover:{<connectionId>}  HASH profileId -> "<claim id>|<timestamp ms>|<value text>"
//                                                     and "s:<profileId>" -> the changeSeq of the state the sync (or its correction) sent
// Created by the first claim (expires after CLAIM_TTL_MS if the sync never
// runs); kept for a grace period after the sync finishes, so live records
// still in the topic then are checked against what the sync sent.
import { acrossSlots, luaScript, type RedisClient } from '@engage/redis';

export type ClaimMode = 'sync' | 'live' | 'correct';

export interface Claim {
  connectionId: string;
  profileId: string;
  /** The change id the call is built from (its messageId derives from it). */
  id: string;
  /** The value as liveValueText renders it. */
  valueText: string;
  /** The timestamp the call would carry if granted now (ms). */
  at: number;
  /** The profile's changeSeq: of the state read (sync, correct), of the record (live); absent when unknown. */
  seq?: number;
}

const CLAIM_LUA = `
local cur = redis.call('HGET', KEYS[1], ARGV[2])
if cur then
  local a = string.find(cur, '|', 1, true)
  local b = string.find(cur, '|', a + 1, true)
  if string.sub(cur, 1, a - 1) == ARGV[3] then return string.sub(cur, a + 1, b - 1) end
  if ARGV[1] == 'sync' then return false end
  if ARGV[1] == 'live' and string.sub(cur, b + 1) == ARGV[4] then return false end
end
if ARGV[7] ~= '' then
  if ARGV[1] == 'live' then
    local read = redis.call('HGET', KEYS[1], 's:' .. ARGV[2])
    if read and tonumber(ARGV[7]) <= tonumber(read) then return false end
  else
    redis.call('HSET', KEYS[1], 's:' .. ARGV[2], ARGV[7])
  end
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3] .. '|' .. ARGV[5] .. '|' .. ARGV[4])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[6]) end
return ARGV[5]
`;

/** How long claims of a connection whose sync has not finished are kept (ms). */
const CLAIM_TTL_MS = 7 * 24 * 3600 * 1000;

type HandoverClient = {
  handoverClaim(
    key: string,
    mode: ClaimMode,
    profileId: string,
    id: string,
    valueText: string,
    at: number,
    ttlMs: number,
    seq: string,
  ): Promise<string | null>;
};

export class Handover {
  constructor(
    private readonly config: { keyPrefix: string },
    private readonly deps: { redis: RedisClient },
  ) {
    // Called by SHA (luaScript: the text only on NOSCRIPT).
    this.client = { handoverClaim: luaScript<string | null>(deps.redis, CLAIM_LUA, { keys: 1 }) };
  }

  private readonly client: HandoverClient;

  key = (connectionId: string) => `${this.config.keyPrefix}dispatch:handover:{${connectionId}}`;

  /** Per claim: the timestamp to send with (granted), or null (another claim carries this profile). */
  async claim(mode: ClaimMode, claims: Claim[]): Promise<Array<number | null>> {
    // One script call per claim, pipelined by ioredis (auto-pipelining).
    const replies = await Promise.all(
      claims.map((c) =>
        this.client.handoverClaim(
          this.key(c.connectionId),
          mode,
          c.profileId,
          c.id,
          c.valueText,
          c.at,
          CLAIM_TTL_MS,
          c.seq === undefined ? '' : String(c.seq),
        ),
      ),
    );
    return replies.map((r) => (r === null ? null : Number(r)));
  }

  /** Who holds each profile's claim (its claim id), null when nobody does. */
  async owners(connectionId: string, profileIds: string[]): Promise<Array<string | null>> {
    if (profileIds.length === 0) return [];
    const values = await this.deps.redis.hmget(this.key(connectionId), ...profileIds);
    return values.map((v) => (v === null ? null : v.slice(0, v.indexOf('|'))));
  }

  /** Which of the connections have claims (a sync pending, running, or in its grace period); one key per connection: acrossSlots. */
  async active(connectionIds: string[]): Promise<boolean[]> {
    const replies = await acrossSlots(
      this.deps.redis,
      connectionIds.map((id) => ['exists', this.key(id)]),
    );
    return replies.map((n) => n === 1);
  }

  /** The sync is done: claims stay for `graceMs` (live records behind it in the topic still meet them), then go. */
  async finish(connectionId: string, graceMs: number): Promise<void> {
    await this.deps.redis.pexpire(this.key(connectionId), graceMs);
  }
}
