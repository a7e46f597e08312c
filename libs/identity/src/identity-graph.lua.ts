// The identity graph update as one Lua script call per (space, chunk): Redis
// runs it atomically, so two resolver replicas handling the same person on
// different partitions can never create two live profiles for one id or lose a
// merge (https://redis.io/docs/latest/develop/interact/programmability/eval-intro/#script-atomicity).
// One call resolves all events of one space in a chunk, in order.
//
// Keys (all under one `{space}` hash tag, so a Redis Cluster keeps a space's
// graph on one slot; KEYS[1] names that slot so the call is routed there):
//   id:<type>\x1f<value>  -> live profile id (always the survivor: a merge rewrites every id of the merged profile)
//   p:<pid>:ids           -> sorted set <type>\x1f<value> -> when last seen (event time, ms), for windowed limits
//   p:<pid>:m             -> hash: merges (profiles absorbed so far, for the merge cap)
//   p:<pid>:merges        -> sorted set: the profiles merged into this one (directly or through a profile merged
//                            into it later) -> event time of the merge (ms). Moves to the survivor with the rest, so
//                            the final survivor lists the whole chain. Bounded by the merge cap: every entry is
//                            counted in \`merges\`, which the cap keeps at most rules.maxMerges
//   p:<pid>:merges:by     -> hash: merged profile id -> the eventKey of the event that merged it (same members)
//   p:<pid>:acc           -> set of account profile ids (group calls)
//   alias:<pid>           -> the survivor a merged profile was folded into (for readers holding an old id)
//   res:<eventKey>        -> the result of an event that announced a change, kept for a TTL: a redelivered
//                            event gets the same answer and so re-emits the same changes. Keyed by the
//                            event's key (source, messageId, receive time: eventKey in @engage/schemas),
//                            never by the messageId alone: a client may reuse one for another event
//
// Algorithm (Segment's flat matching with limits and priority): take the
// event's ids in priority order; if linking every profile they point to (plus
// the new ids) would break a per-type limit (values seen within the type's
// window) or the merge cap, drop the lowest-priority id that takes part in the
// violation and try again. Then the profile of the highest-priority remaining
// id survives, the others merge into it, and new ids are added.
//
// ARGV: rules JSON, result TTL (s), the events as one flat JSON array of strings:
// eventKey, accountId or '', event time (ms, decimal), n, then n (type, value) pairs; the next event follows;
// then the space id (a new profile's id derives from it and the profile's first id: newProfileId in resolve.step.ts).
// (One argument, decoded in C by cjson: thousands of separate arguments cost more on both sides; a flat array of
// strings is a third cheaper to decode than an array per event, and the time stays text until a window needs it.)
// Reply: per event, 'P' .. pid when nothing changed, 'C' .. pid for a new profile of exactly the
// event's ids, else a JSON object.
export const IDENTITY_GRAPH_LUA = `
local prefix = KEYS[1]
local rules = cjson.decode(ARGV[1])
local ttl = tonumber(ARGV[2])
local space = ARGV[4]
local SEP = '\\31'

local function limitOf(t)
  local l = rules.limits[t]
  if l == nil then return rules.default end
  return l
end

-- Per-call caches of profile contents; invalidated for profiles an event changes.
local membersCache = {}
local function members(pid)
  local m = membersCache[pid]
  if m == nil then
    m = {}
    local flat = redis.call('ZRANGE', prefix .. 'p:' .. pid .. ':ids', 0, -1, 'WITHSCORES')
    for j = 1, #flat, 2 do
      local s = flat[j]
      local i = string.find(s, SEP, 1, true)
      -- The score stays text until a windowed limit needs it (most types count 'ever').
      m[#m + 1] = { t = string.sub(s, 1, i - 1), score = flat[j + 1] }
    end
    membersCache[pid] = m
  end
  return m
end
-- Values of each type on a profile that count against the limit at time ts.
local function counts(pid, ts)
  local c = {}
  for _, x in ipairs(members(pid)) do
    local w = limitOf(x.t)[2]
    if w == 0 or tonumber(x.score) >= ts - w then c[x.t] = (c[x.t] or 0) + 1 end
  end
  return c
end
local function mergesOf(pid)
  return tonumber(redis.call('HGET', prefix .. 'p:' .. pid .. ':m', 'merges') or '0')
end

local function violations(cands, ts)
  local totals, seen, profiles, merges = {}, {}, 0, 0
  for _, c in ipairs(cands) do
    if c.pid and not seen[c.pid] then
      seen[c.pid] = true
      profiles = profiles + 1
      merges = merges + mergesOf(c.pid)
      for t, cnt in pairs(counts(c.pid, ts)) do totals[t] = (totals[t] or 0) + cnt end
    end
  end
  for _, c in ipairs(cands) do
    if not c.pid then totals[c.t] = (totals[c.t] or 0) + 1 end
  end
  local bad, any = {}, false
  for t, cnt in pairs(totals) do
    if cnt > limitOf(t)[1] then bad[t] = true; any = true end
  end
  local mergeCapHit = profiles > 1 and (merges + profiles - 1) > rules.maxMerges
  return any or mergeCapHit, bad, mergeCapHit
end

local function resolveOne(eventKey, account, ts, ev, at, n)
  local resultKey = prefix .. 'res:' .. eventKey
  -- One MGET for the cached result and every id: far cheaper than a call each.
  local keys = { resultKey }
  for j = 0, n - 1 do keys[j + 2] = prefix .. 'id:' .. ev[at + 2 * j] .. SEP .. ev[at + 2 * j + 1] end
  local found = redis.call('MGET', unpack(keys))
  if found[1] then return found[1] end

  -- The common case, without building candidates: every id already on one profile, no account to link.
  -- NOTE: a missing key is false in Lua, not nil.
  local known = found[2]
  if known and account == '' then
    local same = true
    for j = 3, n + 1 do
      if found[j] ~= known then same = false; break end
    end
    if same then
      for j = 0, n - 1 do
        local t = ev[at + 2 * j]
        -- Sliding windows count values by when they were last seen.
        if limitOf(t)[2] > 0 then
          redis.call('ZADD', prefix .. 'p:' .. known .. ':ids', 'XX', 'GT', ts, t .. SEP .. ev[at + 2 * j + 1])
          membersCache[known] = nil
        end
      end
      return 'P' .. known
    end
  end

  local cands, first, same = {}, nil, true
  for j = 1, n do
    local c = { t = ev[at + 2 * j - 2], v = ev[at + 2 * j - 1] }
    if found[j + 1] then c.pid = found[j + 1] end
    cands[j] = c
    if c.pid == nil or (first ~= nil and c.pid ~= first) then same = false end
    if first == nil then first = c.pid end
  end

  local dropped = {}
  if not same then
    while #cands > 1 do
      local violated, bad, mergeCapHit = violations(cands, ts)
      if not violated then break end
      -- Ids already on the best profile add nothing: never blame them first.
      local anchor = nil
      for _, c in ipairs(cands) do
        if c.pid then anchor = c.pid; break end
      end
      local removeAt = nil
      for i = #cands, 2, -1 do
        local c = cands[i]
        local involved = false
        if c.pid == nil then
          involved = bad[c.t] == true
        elseif c.pid ~= anchor then
          if mergeCapHit then involved = true end
          local pc = counts(c.pid, ts)
          for t, _ in pairs(bad) do
            if (pc[t] or 0) > 0 then involved = true end
          end
        end
        if involved then removeAt = i; break end
      end
      if removeAt == nil then removeAt = #cands end
      local c = table.remove(cands, removeAt)
      dropped[#dropped + 1] = c.t .. SEP .. c.v
    end
  end

  local base = nil
  for _, c in ipairs(cands) do
    if c.pid then base = c.pid; break end
  end
  local created = false
  if base == nil then
    -- Named after the space and the highest-priority id it is created for: deterministic (a replay
    -- creates the same id) and never shared by two people, since an id points to one profile for good
    -- (id:<id> keys are only ever rewritten to a survivor). Never after the messageId, which the
    -- sender chooses and may reuse. Computed only here: most events create nothing.
    base = 'pro_' .. string.sub(redis.sha1hex(space .. '\\0' .. cands[1].t .. '\\0' .. cands[1].v), 1, 26)
    created = true
  end
  local baseIds = prefix .. 'p:' .. base .. ':ids'
  local baseAcc = prefix .. 'p:' .. base .. ':acc'

  local merged, added, gained, mergedSet, touched = {}, {}, {}, {}, false
  -- Ids the profile holds, for the per-profile cap (rules.maxIds): a new id past it is dropped.
  local held = 0
  if not created then held = redis.call('ZCARD', baseIds) end
  for _, c in ipairs(cands) do
    local member = c.t .. SEP .. c.v
    if c.pid == nil and held >= rules.maxIds then
      dropped[#dropped + 1] = member
    elseif c.pid == nil then
      held = held + 1
      redis.call('SET', prefix .. 'id:' .. member, base)
      redis.call('ZADD', baseIds, ts, member)
      added[#added + 1] = member
    elseif c.pid == base then
      -- Sliding windows count values by when they were last seen.
      if limitOf(c.t)[2] > 0 then
        redis.call('ZADD', baseIds, 'XX', 'GT', ts, member)
        touched = true
      end
    elseif not mergedSet[c.pid] then
      local other = c.pid
      mergedSet[other] = true
      local otherIds = prefix .. 'p:' .. other .. ':ids'
      local flat = redis.call('ZRANGE', otherIds, 0, -1, 'WITHSCORES')
      for j = 1, #flat, 2 do
        gained[#gained + 1] = flat[j]
        redis.call('SET', prefix .. 'id:' .. flat[j], base)
        redis.call('ZADD', baseIds, 'GT', flat[j + 1], flat[j])
      end
      held = redis.call('ZCARD', baseIds)
      redis.call('HINCRBY', prefix .. 'p:' .. base .. ':m', 'merges', mergesOf(other) + 1)
      for _, a in ipairs(redis.call('SMEMBERS', prefix .. 'p:' .. other .. ':acc')) do redis.call('SADD', baseAcc, a) end
      -- The merge log: what was merged into the other profile comes along, then the other profile itself.
      -- NOTE: no trim needed: the log never holds more entries than the \`merges\` counter, which the cap bounds.
      local baseLog = prefix .. 'p:' .. base .. ':merges'
      local baseBy = prefix .. 'p:' .. base .. ':merges:by'
      local chain = redis.call('ZRANGE', prefix .. 'p:' .. other .. ':merges', 0, -1, 'WITHSCORES')
      for j = 1, #chain, 2 do redis.call('ZADD', baseLog, chain[j + 1], chain[j]) end
      local causes = redis.call('HGETALL', prefix .. 'p:' .. other .. ':merges:by')
      -- One call per entry, not unpack(): a long chain would overflow Lua's C stack.
      for j = 1, #causes, 2 do redis.call('HSET', baseBy, causes[j], causes[j + 1]) end
      redis.call('ZADD', baseLog, ts, other)
      redis.call('HSET', baseBy, other, eventKey)
      redis.call('DEL', otherIds, prefix .. 'p:' .. other .. ':m', prefix .. 'p:' .. other .. ':acc',
        prefix .. 'p:' .. other .. ':merges', prefix .. 'p:' .. other .. ':merges:by')
      redis.call('SET', prefix .. 'alias:' .. other, base)
      merged[#merged + 1] = other
      membersCache[other] = nil
    end
  end
  if touched or #added > 0 or #merged > 0 then membersCache[base] = nil end

  local accountLinked = 0
  if account ~= '' then accountLinked = redis.call('SADD', baseAcc, account) end
  if #merged == 0 and #added == 0 and accountLinked == 0 and #dropped == 0 then return 'P' .. base end
  -- A new profile holding exactly the event's ids: the caller knows the rest.
  if created and accountLinked == 0 and #dropped == 0 then return 'C' .. base end

  local all = {}
  if #merged > 0 or #added > 0 or accountLinked == 1 then all = redis.call('ZRANGE', baseIds, 0, -1) end
  local result = cjson.encode({ profileId = base, created = created, merged = merged, added = added, gained = gained, dropped = dropped, all = all, accountLinked = accountLinked })
  -- Kept only when the event announces something (a merge, ids added to an existing
  -- profile, an account link): a redelivery must announce it again, and would no
  -- longer see it as new. Other answers come out the same when recomputed.
  if #merged > 0 or (#added > 0 and not created) or accountLinked == 1 then redis.call('SET', resultKey, result, 'EX', ttl) end
  return result
end

local ev, out, i = cjson.decode(ARGV[3]), {}, 1
local size = #ev
while i <= size do
  local n = ev[i + 3]
  out[#out + 1] = resolveOne(ev[i], ev[i + 1], ev[i + 2], ev, i + 4, n)
  i = i + 4 + 2 * n
end
return out
`;
