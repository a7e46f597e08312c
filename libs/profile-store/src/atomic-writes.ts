// The writes of one save (a chunk's profiles, memberships, wake-ups), sent as
// ONE Lua script call that Redis runs atomically, instead of a MULTI of
// thousands of commands: a chunk saves ~300 profiles with ~7 writes each, and
// in the client every command of a MULTI costs an object, a promise and two
// replies (QUEUED, then its EXEC entry). That bookkeeping was ~10% of the
// evaluator's CPU; the writes as script arguments cost only their bytes.
// Keys travel in KEYS (in the order the writes use them), values in ARGV, each
// write an opcode followed by its values.
import type { RedisClient } from '@engage/redis';

const APPLY_WRITES_LUA = `
local k, a = 1, 1
local function key() local x = KEYS[k]; k = k + 1; return x end
local function arg() local x = ARGV[a]; a = a + 1; return x end
-- unpack() is bounded by Lua's C stack: spread long lists over several calls.
local function many(cmd, target, n)
  local i = 0
  while i < n do
    local m = math.min(n - i, 1000)
    redis.call(cmd, target, unpack(ARGV, a + i, a + i + m - 1))
    i = i + m
  end
  a = a + n
end
while a <= #ARGV do
  local op = arg()
  if op == 'S' then redis.call('SET', key(), arg())
  elseif op == 'D' then redis.call('DEL', key())
  elseif op == 'R' then local t = key(); many('RPUSH', t, tonumber(arg()))
  elseif op == 'Z' then local t = key(); many('ZADD', t, 2 * tonumber(arg()))
  elseif op == 'T' then
    local hist, seen, max = key(), key(), tonumber(arg())
    redis.call('LTRIM', hist, -max, -1)
    redis.call('ZREMRANGEBYRANK', seen, 0, -max - 1)
  elseif op == 'X' then redis.call('ZREM', key(), arg())
  elseif op == 'A' then redis.call('SADD', key(), arg())
  elseif op == 'M' then redis.call('SREM', key(), arg())
  else return redis.error_reply('unknown write opcode ' .. tostring(op) .. ' at argument ' .. (a - 1)) end
end
return k - 1
`;

export class AtomicWrites {
  private readonly keys: string[] = [];
  private readonly args: Array<string | number> = [];

  get empty(): boolean {
    return this.args.length === 0;
  }

  set(key: string, value: string): void {
    this.keys.push(key);
    this.args.push('S', value);
  }

  del(...keys: string[]): void {
    for (const key of keys) {
      this.keys.push(key);
      this.args.push('D');
    }
  }

  rpush(key: string, values: string[]): void {
    if (values.length === 0) return;
    this.keys.push(key);
    this.args.push('R', values.length);
    for (const v of values) this.args.push(v);
  }

  /** ZADD of (score, member) pairs. */
  zadd(key: string, pairs: Array<[number, string]>): void {
    if (pairs.length === 0) return;
    this.keys.push(key);
    this.args.push('Z', pairs.length);
    for (const [score, member] of pairs) this.args.push(score, member);
  }

  /** Keeps the newest `max` entries of a history list and of its messageId set. */
  keepNewest(listKey: string, setKey: string, max: number): void {
    this.keys.push(listKey, setKey);
    this.args.push('T', max);
  }

  zrem(key: string, member: string): void {
    this.keys.push(key);
    this.args.push('X', member);
  }

  sadd(key: string, member: string): void {
    this.keys.push(key);
    this.args.push('A', member);
  }

  srem(key: string, member: string): void {
    this.keys.push(key);
    this.args.push('M', member);
  }

  /** Applies every write, atomically (a script runs alone); throws if Redis refuses one. */
  async exec(redis: RedisClient): Promise<void> {
    if (this.empty) return;
    const used = (await redis.eval(APPLY_WRITES_LUA, this.keys.length, ...this.keys, ...this.args)) as number;
    if (used !== this.keys.length) throw new Error(`atomic writes used ${used} of ${this.keys.length} keys: opcodes and keys out of step`);
  }
}
