"""The Redis store's Lua scripts (each runs atomically on the server)."""

from __future__ import annotations

CAS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  else redis.call('SET', KEYS[1], ARGV[2]) end
  return 1
end
return 0
"""

CAD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS[1] = the sorted set; ARGV = member, score, limit, low. 1: the member is in (added, or was).
ZADD_WITHIN = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCOUNT', KEYS[1], ARGV[4], '+inf') >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""

INCR = """
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if v == tonumber(ARGV[1]) and tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v
"""

# KEYS = the keys to claim; ARGV[1] = pending TTL (ms), ARGV[1 + i] = the pending value for KEYS[i].
# One code per key: 0 claimed, 1 busy (claimed elsewhere), 2 done.
CLAIM_MANY = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[i + 1], 'NX', 'PX', ARGV[1]) then out[i] = 0
  elseif redis.call('GET', key) == 'done' then out[i] = 2
  else out[i] = 1 end
end
return out
"""

# ARGV[1] = the key prefix, ARGV[2] = JSON [[guards, ops], ...]; a guard is [key, value or null], an op
# is the `wire()` form of bot/store/ops.py. Guards are checked before any write. One 1 / 0 per transaction.
COMMIT_MANY = """
local prefix = ARGV[1]
local batch = cjson.decode(ARGV[2])
local results = {}
for i, tx in ipairs(batch) do
  local ok = 1
  for _, g in ipairs(tx[1]) do
    local v = redis.call('GET', prefix .. g[1])
    if g[2] == cjson.null then
      if v then ok = 0; break end
    elseif v ~= g[2] then ok = 0; break end
  end
  if ok == 1 then
    for _, op in ipairs(tx[2]) do
      local cmd, key = op[1], prefix .. op[2]
      if cmd == 'SET' then
        if op[4] > 0 then redis.call('SET', key, op[3], 'PX', op[4]) else redis.call('SET', key, op[3]) end
      elseif cmd == 'DEL' then redis.call('DEL', key)
      elseif cmd == 'INCR' then
        local v = redis.call('INCRBY', key, op[3])
        if v == op[3] and op[4] > 0 then redis.call('PEXPIRE', key, op[4]) end
      elseif cmd == 'EXPIRE' then redis.call('PEXPIRE', key, op[3])
      elseif cmd == 'HSET' then redis.call('HSET', key, op[3], op[4])
      elseif cmd == 'HDEL' then redis.call('HDEL', key, op[3])
      elseif cmd == 'HSETNEWER' then
        local cur = redis.call('HGET', key, op[3])
        local curt = nil
        if cur then curt = tonumber(string.match(cur, '^([^|]*)')) end
        if (not curt) or curt <= tonumber(op[4]) then redis.call('HSET', key, op[3], op[4] .. '|' .. op[5]) end
      elseif cmd == 'LPUSH' then
        redis.call('LPUSH', key, op[3])
        if op[4] > 0 then redis.call('LTRIM', key, 0, op[4] - 1) end
      elseif cmd == 'ZADD' then redis.call('ZADD', key, op[4], op[3])
      elseif cmd == 'ZREMBELOW' then redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. op[3])
      elseif cmd == 'ZADDSEQ' then
        local seq = redis.call('INCR', prefix .. op[4])
        redis.call('ZADD', key, seq, string.format('%015d', seq) .. '|' .. op[3])
      else return redis.error_reply('unknown op ' .. tostring(cmd)) end
    end
  end
  results[i] = ok
end
return results
"""

# Group commit of several admitted items in one call. KEYS[1] = the queue's list, then each item's
# dedupe keys; ARGV[1] = done TTL (ms), then per item: its number of keys and its job message.
# Returns one code per item: 0 admitted (pushed + marked done), 1 pending elsewhere, 2 already done.
ADMIT_BATCH = """
local out = {}
local k = 2
for i = 2, #ARGV, 2 do
  local n = tonumber(ARGV[i])
  local state = 0
  for j = k, k + n - 1 do
    local v = redis.call('GET', KEYS[j])
    if v == 'done' then state = 2; break end
    if v then state = 1 end
  end
  if state == 0 then
    redis.call('LPUSH', KEYS[1], ARGV[i + 1])
    for j = k, k + n - 1 do redis.call('SET', KEYS[j], 'done', 'PX', ARGV[1]) end
  end
  out[#out + 1] = state
  k = k + n
end
return out
"""
