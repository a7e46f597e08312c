// Per-space slot numbers of computations: the short names the compact state
// documents (state-codec.ts) use instead of 31-character computation ids.
// One Redis hash per space (`<prefix>rt:slots:{spaceId}`: id -> slot, and
// `#next`), written only through ProfileStateRepository (its keyspace). A slot
// is assigned once, atomically, by whichever process first saves a state of
// the computation, and never changes or is reused (a deleted computation keeps
// its slot: a few bytes), so every process may cache the table forever and
// only asks Redis about ids or slots it has not seen yet.
import { luaScript, type LuaScript, type RedisClient } from '@engage/redis';

const NEXT_FIELD = '#next';

// ARGV: computation ids. Returns their slots, assigning the missing ones.
const ASSIGN_LUA = `
local out = {}
for i, id in ipairs(ARGV) do
  local slot = redis.call('HGET', KEYS[1], id)
  if not slot then
    slot = redis.call('HINCRBY', KEYS[1], '${NEXT_FIELD}', 1)
    redis.call('HSET', KEYS[1], id, slot)
  end
  out[i] = tonumber(slot)
end
return out
`;

interface SpaceSlots {
  slotById: Map<string, number>;
  idBySlot: Map<number, string>;
}

export class ComputationSlots {
  private readonly spaces = new Map<string, SpaceSlots>();

  constructor(
    private readonly keyOf: (spaceId: string) => string,
    private readonly redis: RedisClient,
  ) {
    this.assign = luaScript<number[]>(redis, ASSIGN_LUA, { keys: 1 });
  }

  private readonly assign: LuaScript<number[]>;

  private space(spaceId: string): SpaceSlots {
    let s = this.spaces.get(spaceId);
    if (!s) this.spaces.set(spaceId, (s = { slotById: new Map(), idBySlot: new Map() }));
    return s;
  }

  private learn(s: SpaceSlots, id: string, slot: number): void {
    s.slotById.set(id, slot);
    s.idBySlot.set(slot, id);
  }

  /** Makes sure these computations have slots (assigning new ones in Redis); then slotOf answers for them. */
  async ensureIds(spaceId: string, ids: Iterable<string>): Promise<void> {
    const s = this.space(spaceId);
    const missing = [...new Set([...ids].filter((id) => !s.slotById.has(id)))];
    if (missing.length === 0) return;
    const slots = await this.assign(this.keyOf(spaceId), ...missing);
    missing.forEach((id, i) => this.learn(s, id, slots[i]!));
  }

  /** Makes sure these slots are known (reading the space's table when one is not); then idOf answers for them. */
  async ensureSlots(spaceId: string, slots: Iterable<number>): Promise<void> {
    const s = this.space(spaceId);
    for (const slot of slots) {
      if (s.idBySlot.has(slot)) continue;
      const table = await this.redis.hgetall(this.keyOf(spaceId));
      for (const [id, value] of Object.entries(table)) if (id !== NEXT_FIELD) this.learn(s, id, Number(value));
      return;
    }
  }

  /** The computation's slot when this process knows it, else undefined (ensureIds assigns it). */
  knownSlotOf(spaceId: string, id: string): number | undefined {
    return this.spaces.get(spaceId)?.slotById.get(id);
  }

  slotOf(spaceId: string, id: string): number {
    const slot = this.spaces.get(spaceId)?.slotById.get(id);
    if (slot === undefined) throw new Error(`computation ${id} of space ${spaceId} has no slot yet (ensureIds first)`);
    return slot;
  }

  idOf(spaceId: string, slot: number): string {
    const id = this.spaces.get(spaceId)?.idBySlot.get(slot);
    if (id === undefined) throw new Error(`slot ${slot} of space ${spaceId} names no computation (the slot table lost it?)`);
    return id;
  }
}
