// The project's one lock helper: a Redis key holding its owner's token, taken
// with SET NX PX (so a dead holder frees it when the TTL runs out), renewed and
// released only by its owner. Renew and release are Lua scripts (a GET then a
// PEXPIRE/DEL from the client would act on a lock another owner took in
// between), called by SHA (luaScript: the text only on NOSCRIPT).
// https://redis.io/docs/latest/develop/use/patterns/distributed-locks/#correct-implementation-with-a-single-instance
// Key names are the callers' (each keyspace's owner spells its own lock keys).
import { isCluster, luaScript, type LuaScript, type RedisClient } from './index';

// KEYS: the locks; ARGV[1]: the owner. Deletes those the owner holds; answers how many.
const RELEASE_LUA = `
local n = 0
for _, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then n = n + redis.call('DEL', k) end
end
return n
`;
// KEYS[1]: the lock; ARGV: owner, TTL (ms). 1 when renewed, 0 when the lock is not (or no longer) the owner's.
const RENEW_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

// KEYS: the locks; ARGV: owner, TTL (ms). All or none: answers 0 when every
// lock is now the owner's, else the 1-based index of a key another owner holds
// (the locks this call set are given back). One SET NX per free lock, a GET
// only when one is taken: a caller may lock thousands of keys per call (the
// evaluator locks every profile of a chunk), and inside a script every
// redis.call costs about what the command does.
// NOTE: the owner token is fresh per call and the keys distinct, so a lock
// this call set is the only kind it gives back on refusal.
const ACQUIRE_ALL_LUA = `
for i, k in ipairs(KEYS) do
  if not redis.call('SET', k, ARGV[1], 'PX', ARGV[2], 'NX') and redis.call('GET', k) ~= ARGV[1] then
    for j = 1, i - 1 do redis.call('DEL', KEYS[j]) end
    return i
  end
end
return 0
`;

/** A fresh owner token: the process and a random part (two holders never share one). */
export function lockOwner(): string {
  return `${process.pid}:${Math.random().toString(36).slice(2)}`;
}

/** A lock this process holds (until its TTL runs out, unless renewed). */
export interface HeldLock {
  readonly key: string;
  readonly owner: string;
  /** Extends the TTL if the lock is still ours; false when it expired and maybe went to another owner. */
  renew(): Promise<boolean>;
  /** Deletes the lock if it is still ours; false when it was not (anymore). */
  release(): Promise<boolean>;
}

export class RedisLock {
  private readonly releaseScript: LuaScript<number>;
  private readonly renewScript: LuaScript<number>;
  private readonly acquireAllScript: LuaScript<number>;

  constructor(private readonly redis: RedisClient) {
    this.releaseScript = luaScript<number>(redis, RELEASE_LUA);
    this.renewScript = luaScript<number>(redis, RENEW_LUA, { keys: 1 });
    this.acquireAllScript = luaScript<number>(redis, ACQUIRE_ALL_LUA);
  }

  /** Takes `key` for `owner` (a fresh token by default) for `ttlMs`; null when someone holds it. */
  async acquire(key: string, ttlMs: number, owner: string = lockOwner()): Promise<HeldLock | null> {
    if ((await this.redis.set(key, owner, 'PX', ttlMs, 'NX')) !== 'OK') return null;
    return {
      key,
      owner,
      renew: () => this.renew(key, owner, ttlMs),
      release: async () => (await this.release([key], owner)) === 1,
    };
  }

  /** Owner-checked PEXPIRE. */
  async renew(key: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.renewScript(key, owner, ttlMs)) === 1;
  }

  /**
   * Owner-checked DEL of one or more locks in one script: the keys must share
   * a slot on a Cluster (one key per call otherwise). Answers how many were
   * the owner's.
   */
  release(keys: string[], owner: string): Promise<number> {
    return this.releaseScript(keys.length, ...keys, owner);
  }

  /**
   * Takes every lock of `keys` for `owner` or none (a writer of many records
   * at once, e.g. a chunk of profiles): 0, or the 1-based index of a key
   * another owner holds. No renewal: choose `ttlMs` far above the work's
   * duration. One script on one node; on a Cluster one call per lock (each
   * its own slot), all at once, and on any refusal the locks taken are given
   * back, so two writers never wait for each other holding part of a set.
   */
  async acquireAll(keys: string[], owner: string, ttlMs: number): Promise<number> {
    if (keys.length === 0) return 0;
    if (!isCluster(this.redis)) return this.acquireAllScript(keys.length, ...keys, owner, ttlMs);
    const answers = await Promise.all(keys.map((k) => this.acquireAllScript(1, k, owner, ttlMs)));
    const refused = answers.findIndex((a) => a !== 0);
    if (refused === -1) return 0;
    await this.releaseAll(
      keys.filter((_, i) => answers[i] === 0),
      owner,
    );
    return refused + 1;
  }

  /** Owner-checked release of locks of any slots (acquireAll's): one script on one node, one call per lock on a Cluster. */
  async releaseAll(keys: string[], owner: string): Promise<void> {
    if (keys.length === 0) return;
    if (!isCluster(this.redis)) await this.release(keys, owner);
    else await Promise.all(keys.map((k) => this.release([k], owner)));
  }

  /**
   * Runs `work` holding `key`; `{ acquired: false }` when another holder has
   * it. `autoRenew`: the TTL is renewed every ttlMs/3 while `work` runs (for
   * work that may take far longer than the TTL; if the holder dies the lock
   * still expires by itself). Released (if still ours) when `work` ends.
   */
  async withLock<T>(
    key: string,
    ttlMs: number,
    work: (lock: HeldLock) => Promise<T>,
    opts: { autoRenew?: boolean; owner?: string } = {},
  ): Promise<{ acquired: true; value: T } | { acquired: false }> {
    const lock = await this.acquire(key, ttlMs, opts.owner);
    if (!lock) return { acquired: false };
    const timer = opts.autoRenew ? setInterval(() => void lock.renew().catch(() => undefined), ttlMs / 3) : undefined;
    timer?.unref();
    try {
      return { acquired: true, value: await work(lock) };
    } finally {
      if (timer) clearInterval(timer);
      await lock.release();
    }
  }
}
