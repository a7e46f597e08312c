// The identity graph update, as one Lua script per event: Redis runs it
// atomically, so two resolver replicas handling the same person on different
// partitions can never create two live profiles for one id or lose a merge.
//
// Keys (all under one `{space}` hash tag, so a Redis Cluster keeps a space's
// graph on one slot and the script may touch any of it):
//   id:<type>\x1f<value>  -> profile id
//   p:<pid>:ids           -> set of <type>\x1f<value>
//   p:<pid>:counts        -> hash type -> count, and __merges
//   p:<pid>:accounts      -> set of account profile ids (group calls)
//   alias:<pid>           -> the survivor a merged profile was folded into
//   res:<messageId>       -> this event's result, kept 24 h: a redelivered
//                            event gets the same answer (and the same changes)
//
// Algorithm (Segment's identity resolution): take the event's ids in priority
// order; if linking every profile they point to (plus the new ids) would break
// a per-type limit or the merge cap, drop the lowest-priority id that takes part
// in the violation and try again. Then the profile of the highest-priority
// remaining id survives, the others merge into it, and new ids are added.
export const IDENTITY_GRAPH_LUA = `
local prefix = ARGV[1]
local newPid = ARGV[2]
local rules = cjson.decode(ARGV[3])
local resultKey = prefix .. 'res:' .. ARGV[4]
local ttl = tonumber(ARGV[5])
local account = ARGV[6]
local n = tonumber(ARGV[7])
local SEP = '\\31'

local cached = redis.call('GET', resultKey)
if cached then return cached end

local function limitOf(t)
  local l = rules.limits[t]
  if l == nil then return rules.defaultLimit end
  return l
end
local function resolveAlias(pid)
  local hops = 0
  while pid and hops < 64 do
    local nxt = redis.call('GET', prefix .. 'alias:' .. pid)
    if not nxt then return pid end
    pid = nxt
    hops = hops + 1
  end
  return pid
end
local countsCache = {}
local function counts(pid)
  if countsCache[pid] == nil then
    local flat = redis.call('HGETALL', prefix .. 'p:' .. pid .. ':counts')
    local c = {}
    for j = 1, #flat, 2 do c[flat[j]] = tonumber(flat[j + 1]) end
    countsCache[pid] = c
  end
  return countsCache[pid]
end

local cands = {}
for i = 1, n do
  local t = ARGV[7 + 2 * i - 1]
  local v = ARGV[7 + 2 * i]
  -- NOTE: GET of a missing key is false in Lua, not nil.
  local pid = redis.call('GET', prefix .. 'id:' .. t .. SEP .. v)
  if pid then pid = resolveAlias(pid) else pid = nil end
  cands[#cands + 1] = { t = t, v = v, pid = pid }
end

local function violations(list)
  local totals, seen, profiles, merges = {}, {}, 0, 0
  for _, c in ipairs(list) do
    if c.pid and not seen[c.pid] then
      seen[c.pid] = true
      profiles = profiles + 1
      for t, cnt in pairs(counts(c.pid)) do
        if t == '__merges' then merges = merges + cnt else totals[t] = (totals[t] or 0) + cnt end
      end
    end
  end
  for _, c in ipairs(list) do
    if not c.pid then totals[c.t] = (totals[c.t] or 0) + 1 end
  end
  local bad, any = {}, false
  for t, cnt in pairs(totals) do
    if cnt > limitOf(t) then bad[t] = true; any = true end
  end
  local mergeCapHit = profiles > 1 and (merges + profiles - 1) > rules.maxMerges
  return any or mergeCapHit, bad, mergeCapHit
end

local dropped = {}
while #cands > 1 do
  local violated, bad, mergeCapHit = violations(cands)
  if not violated then break end
  local removeAt = nil
  for i = #cands, 2, -1 do
    local c = cands[i]
    local involved = false
    if c.pid == nil then
      involved = bad[c.t] == true
    else
      if mergeCapHit and c.pid ~= cands[1].pid then involved = true end
      for t, _ in pairs(bad) do
        if (counts(c.pid)[t] or 0) > 0 then involved = true end
      end
    end
    if involved then removeAt = i; break end
  end
  if removeAt == nil then removeAt = #cands end
  local c = table.remove(cands, removeAt)
  dropped[#dropped + 1] = c.t .. SEP .. c.v
end

local base = nil
for _, c in ipairs(cands) do
  if c.pid then base = c.pid; break end
end
local created = false
if base == nil then base = newPid; created = true end
local baseIds = prefix .. 'p:' .. base .. ':ids'
local baseCounts = prefix .. 'p:' .. base .. ':counts'
local baseAccounts = prefix .. 'p:' .. base .. ':accounts'

local merged, added = {}, {}
for _, c in ipairs(cands) do
  if c.pid == nil then
    redis.call('SET', prefix .. 'id:' .. c.t .. SEP .. c.v, base)
    redis.call('SADD', baseIds, c.t .. SEP .. c.v)
    redis.call('HINCRBY', baseCounts, c.t, 1)
    added[#added + 1] = c.t .. SEP .. c.v
  else
    local other = resolveAlias(c.pid)
    if other ~= base then
      local otherIds = prefix .. 'p:' .. other .. ':ids'
      for _, m in ipairs(redis.call('SMEMBERS', otherIds)) do
        redis.call('SET', prefix .. 'id:' .. m, base)
        redis.call('SADD', baseIds, m)
      end
      for t, cnt in pairs(counts(other)) do redis.call('HINCRBY', baseCounts, t, cnt) end
      redis.call('HINCRBY', baseCounts, '__merges', 1)
      for _, a in ipairs(redis.call('SMEMBERS', prefix .. 'p:' .. other .. ':accounts')) do redis.call('SADD', baseAccounts, a) end
      redis.call('DEL', otherIds, prefix .. 'p:' .. other .. ':counts', prefix .. 'p:' .. other .. ':accounts')
      redis.call('SET', prefix .. 'alias:' .. other, base)
      merged[#merged + 1] = other
    end
  end
end

local accountLinked = 0
if account ~= '' then accountLinked = redis.call('SADD', baseAccounts, account) end
local all = {}
if #merged > 0 or #added > 0 or accountLinked == 1 then all = redis.call('SMEMBERS', baseIds) end
local result = cjson.encode({ profileId = base, created = created, merged = merged, added = added, dropped = dropped, all = all, accountLinked = accountLinked })
redis.call('SET', resultKey, result, 'EX', ttl)
return result
`;
