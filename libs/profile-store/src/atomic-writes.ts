// The writes of one save (a chunk's profiles, memberships, wake-ups), sent as
// one MULTI of two commands, a Lua script and an MSET, that Redis runs
// atomically, instead of a MULTI of thousands of commands: a chunk saves ~300
// profiles with ~7 writes each, and in the client every command of a MULTI
// costs an object, a promise and two replies (QUEUED, then its EXEC entry).
// That bookkeeping was ~10% of the evaluator's CPU; the writes as script
// arguments cost only their bytes.
// Keys travel in KEYS (in the order the writes use them), values in ARGV, each
// write an opcode followed by its values.
//
// Inside a script every redis.call costs about as much again as the command
// itself (its arguments become Redis objects, its reply a Lua value), so the
// writes are coalesced before they are sent: the SETs of a chunk become one
// MSET (sent next to the script, see exec), the ZADD/ZREM of one sorted set
// one ZADD and one ZREM, the SADD/SREM of one set one SADD and one SREM. That never changes the result: a pending
// write is sent before any later write of another kind to the same key, and
// for one member of one set the last write wins, as it would in order.
//
// On a Redis Cluster a MULTI, a script and an MSET must each stay in one hash
// slot: the writes are split by slot, each slot's share sent as its own MULTI
// (script + MSET), all at once. Atomic per slot only, so the order of the
// slots matters for crashes: the slots holding a key `commitLast` names (the
// profile states, which say what is done) go after every other slot
// (memberships, wake-ups, indexes). A crash in between leaves those other
// writes done and the states not: the chunk is redone, computes the same
// values and writes the same memberships again (idempotent), where the
// reverse order would leave a saved state whose membership writes were lost.
import { isCluster, keySlot, type RedisClient } from '@engage/redis';

const APPLY_WRITES_LUA = `
local k, a = 1, 1
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
  if op == 'S' then
    -- MSET of n keys (KEYS) and their n values (ARGV), 500 pairs a call
    local n = tonumber(arg())
    local i = 0
    while i < n do
      local m, pairs = math.min(n - i, 500), {}
      for j = 1, m do pairs[2 * j - 1] = KEYS[k + i + j - 1]; pairs[2 * j] = ARGV[a + i + j - 1] end
      redis.call('MSET', unpack(pairs))
      i = i + m
    end
    k = k + n
    a = a + n
  elseif op == 'D' then local n = tonumber(arg()); redis.call('DEL', unpack(KEYS, k, k + n - 1)); k = k + n
  elseif op == 'R' then local t = KEYS[k]; k = k + 1; many('RPUSH', t, tonumber(arg()))
  elseif op == 'Z' then local t = KEYS[k]; k = k + 1; many('ZADD', t, 2 * tonumber(arg()))
  elseif op == 'X' then local t = KEYS[k]; k = k + 1; many('ZREM', t, tonumber(arg()))
  elseif op == 'A' then local t = KEYS[k]; k = k + 1; many('SADD', t, tonumber(arg()))
  elseif op == 'M' then local t = KEYS[k]; k = k + 1; many('SREM', t, tonumber(arg()))
  elseif op == 'T' then
    local hist, seen, max = KEYS[k], KEYS[k + 1], tonumber(arg())
    k = k + 2
    redis.call('LTRIM', hist, -max, -1)
    redis.call('ZREMRANGEBYRANK', seen, 0, -max - 1)
  else return redis.error_reply('unknown write opcode ' .. tostring(op) .. ' at argument ' .. (a - 1)) end
end
return k - 1
`;

/** Writes of one key waiting to be sent together: a string's value, or the last write of each member of a (sorted) set. */
type Pending =
  | { kind: 'string'; value: string | Buffer }
  | { kind: 'zset'; members: Map<string, number | null> } // score, or null: removed
  | { kind: 'set'; members: Map<string, boolean> }; // true: added, false: removed

export class AtomicWrites {
  private readonly keys: string[] = [];
  private readonly args: Array<string | number | Buffer> = [];
  private readonly pending = new Map<string, Pending>();
  /** Where each opcode starts in `keys` and `args` (pairs): how a Cluster splits them by slot. */
  private readonly opStarts: number[] = [];

  /** `commitLast`: on a Cluster, the slots of keys it names are written after all others (see the header). */
  constructor(private readonly options: { commitLast?: (key: string) => boolean } = {}) {}

  private startOp(): void {
    this.opStarts.push(this.keys.length, this.args.length);
  }

  set(key: string, value: string | Buffer): void {
    const p = this.pendingOf(key, 'string');
    if (p) p.value = value;
    else this.pending.set(key, { kind: 'string', value });
  }

  del(...keys: string[]): void {
    if (keys.length === 0) return;
    for (const key of keys) this.sendPending(key);
    this.startOp();
    this.keys.push(...keys);
    this.args.push('D', keys.length);
  }

  rpush(key: string, values: string[]): void {
    if (values.length === 0) return;
    this.sendPending(key);
    this.startOp();
    this.keys.push(key);
    this.args.push('R', values.length);
    for (const v of values) this.args.push(v);
  }

  /** ZADD of (score, member) pairs. */
  zadd(key: string, pairs: Array<[number, string]>): void {
    if (pairs.length === 0) return;
    const members = this.membersOf(key, 'zset');
    for (const [score, member] of pairs) members.set(member, score);
  }

  zrem(key: string, member: string): void {
    this.membersOf(key, 'zset').set(member, null);
  }

  /** Keeps the newest `max` entries of a history list and of its messageId set. */
  keepNewest(listKey: string, setKey: string, max: number): void {
    this.sendPending(listKey);
    this.sendPending(setKey);
    this.startOp();
    this.keys.push(listKey, setKey);
    this.args.push('T', max);
  }

  sadd(key: string, member: string): void {
    this.membersOf(key, 'set').set(member, true);
  }

  srem(key: string, member: string): void {
    this.membersOf(key, 'set').set(member, false);
  }

  /**
   * Applies every write, atomically (one MULTI: the script, then the strings
   * no write after them touches, as a plain MSET); throws if Redis refuses one.
   * NOTE: the strings are the state documents (kilobytes each). Passed into a
   * script, every byte is copied into Lua and out again: ~11 µs of Redis per
   * 4 KB document, three times what the MSET itself costs.
   */
  async exec(redis: RedisClient): Promise<void> {
    const strings = this.takeStrings();
    for (const [key, p] of this.pending) if (p.kind !== 'string') this.sendMembers(key, p);
    this.pending.clear();
    if (this.args.length === 0 && strings.length === 0) return;
    if (isCluster(redis)) return this.execBySlot(redis, strings);
    const tx = redis.multi();
    // NOTE: EVAL with the text, not by SHA (luaScript): inside a MULTI a
    // NOSCRIPT (a SCRIPT FLUSH while connected) would fail the script alone
    // and EXEC would still run the MSET, saving states without their writes.
    // NOTE: arguments as arrays (ioredis flattens them), not spread: a write-behind flush of
    // thousands of profiles has more arguments than a spread call's stack allows.
    if (this.args.length > 0)
      tx.call('eval', ([APPLY_WRITES_LUA, this.keys.length] as Array<string | number | Buffer>).concat(this.keys, this.args));
    if (strings.length > 0) tx.call('mset', strings.flat());
    const results = await tx.exec();
    if (results === null) throw new Error('atomic writes: transaction aborted');
    for (const [err] of results) if (err) throw err;
    if (this.args.length > 0) {
      const used = results[0]![1] as number;
      if (used !== this.keys.length)
        throw new Error(`atomic writes used ${used} of ${this.keys.length} keys: opcodes and keys out of step`);
    }
  }

  /** exec on a Cluster: each slot's writes as one MULTI (script + MSET), the commitLast slots after the others. */
  private async execBySlot(redis: RedisClient, strings: Array<[string, string | Buffer]>): Promise<void> {
    const bySlot = new Map<number, { keys: string[]; args: Array<string | number | Buffer>; strings: Array<string | Buffer> }>();
    const groupOf = (key: string) => {
      const slot = keySlot(key);
      let g = bySlot.get(slot);
      if (!g) bySlot.set(slot, (g = { keys: [], args: [], strings: [] }));
      return g;
    };
    const ends = [...this.opStarts.slice(2), this.keys.length, this.args.length];
    for (let i = 0; i < this.opStarts.length; i += 2) {
      const [k0, a0, k1, a1] = [this.opStarts[i]!, this.opStarts[i + 1]!, ends[i]!, ends[i + 1]!];
      const keys = this.keys.slice(k0, k1);
      const op = this.args[a0];
      if (op === 'S' || op === 'D') {
        // Several keys, any slots: one op per key (S: its value follows the count).
        keys.forEach((key, j) => {
          const g = groupOf(key);
          g.keys.push(key);
          g.args.push(op, 1, ...(op === 'S' ? [this.args[a0 + 2 + j]!] : []));
        });
        continue;
      }
      const g = groupOf(keys[0]!);
      if (keys.some((key) => keySlot(key) !== keySlot(keys[0]!)))
        throw new Error(`atomic writes: one opcode over keys of several slots (${keys.join(', ')}): give them one hash tag`);
      g.keys.push(...keys);
      for (let a = a0; a < a1; a++) g.args.push(this.args[a]!);
    }
    for (const [key, value] of strings) groupOf(key).strings.push(key, value);
    const send = async (g: { keys: string[]; args: Array<string | number | Buffer>; strings: Array<string | Buffer> }) => {
      const tx = redis.multi();
      if (g.args.length > 0) tx.call('eval', ([APPLY_WRITES_LUA, g.keys.length] as Array<string | number | Buffer>).concat(g.keys, g.args));
      if (g.strings.length > 0) tx.call('mset', g.strings);
      const results = await tx.exec();
      if (results === null) throw new Error('atomic writes: transaction aborted');
      for (const [err] of results) if (err) throw err;
    };
    const last = this.options.commitLast ?? (() => false);
    const groups = [...bySlot.values()];
    const isLast = (g: (typeof groups)[number]) => g.keys.some(last) || g.strings.some((x, i) => i % 2 === 0 && last(x as string));
    await Promise.all(groups.filter((g) => !isLast(g)).map(send));
    await Promise.all(groups.filter(isLast).map(send));
  }

  /** The key's pending writes if they are of this kind; pending writes of another kind are sent first. */
  private pendingOf<K extends Pending['kind']>(key: string, kind: K): Extract<Pending, { kind: K }> | undefined {
    const p = this.pending.get(key);
    if (p === undefined) return undefined;
    if (p.kind === kind) return p as Extract<Pending, { kind: K }>;
    this.sendPending(key);
    return undefined;
  }

  private membersOf(key: string, kind: 'zset'): Map<string, number | null>;
  private membersOf(key: string, kind: 'set'): Map<string, boolean>;
  private membersOf(key: string, kind: 'zset' | 'set'): Map<string, number | null> | Map<string, boolean> {
    const p = this.pendingOf(key, kind);
    if (p) return p.members;
    const fresh = kind === 'zset' ? { kind, members: new Map<string, number | null>() } : { kind, members: new Map<string, boolean>() };
    this.pending.set(key, fresh);
    return fresh.members;
  }

  /** Sends the key's pending writes now (a write of another kind follows). The strings go together: one MSET. */
  private sendPending(key: string): void {
    const p = this.pending.get(key);
    if (p === undefined) return;
    if (p.kind === 'string') this.sendStrings();
    else {
      this.pending.delete(key);
      this.sendMembers(key, p);
    }
  }

  /** Every pending string write, as (key, value) pairs, taken out of `pending`. */
  private takeStrings(): Array<[string, string | Buffer]> {
    const strings: Array<[string, string | Buffer]> = [];
    for (const [key, p] of this.pending) {
      if (p.kind !== 'string') continue;
      strings.push([key, p.value]);
      this.pending.delete(key);
    }
    return strings;
  }

  private sendStrings(): void {
    const strings = this.takeStrings();
    if (strings.length === 0) return;
    this.startOp();
    for (const [key] of strings) this.keys.push(key);
    this.args.push('S', strings.length);
    for (const [, value] of strings) this.args.push(value);
  }

  private sendMembers(key: string, p: Exclude<Pending, { kind: 'string' }>): void {
    // Different members commute: all additions, then all removals.
    const added: Array<string | number> = [];
    const removed: string[] = [];
    if (p.kind === 'zset') {
      for (const [member, score] of p.members) {
        if (score === null) removed.push(member);
        else added.push(score, member);
      }
    } else for (const [member, add] of p.members) (add ? added : removed).push(member);
    const [addOp, removeOp, addCount] = p.kind === 'zset' ? ['Z', 'X', added.length / 2] : ['A', 'M', added.length];
    if (added.length > 0) {
      this.startOp();
      this.keys.push(key);
      this.args.push(addOp, addCount);
      for (const x of added) this.args.push(x);
    }
    if (removed.length > 0) {
      this.startOp();
      this.keys.push(key);
      this.args.push(removeOp, removed.length);
      for (const x of removed) this.args.push(x);
    }
  }
}
