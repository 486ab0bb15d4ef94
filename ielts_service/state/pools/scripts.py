"""The pool stores' Lua scripts. Scripts, not MULTI, for every multi-command update:
redis-py's cluster client runs each command of a MULTI in a thread of its own (see the
README's decisions). Each script's keys share one hash tag, so it runs on one node."""

# KEYS[1]: a session's seen set. ARGV: item id, TTL (s). The TTL is set once, on creation.
MARK_SEEN = """
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
"""

# KEYS[1]: a scope's fingerprints. ARGV: now, most kept, TTL (s), the fingerprints.
# Returns the fingerprints that were new; the oldest beyond the most kept are dropped.
CLAIM = """
local new = {}
for i = 4, #ARGV do
  if redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[i]) == 1 then new[#new + 1] = ARGV[i] end
end
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return new
"""

# KEYS[1]: a pool's served counts (a hash: item id -> times served).
# ARGV: TTL (s), target, strict (1/0), the number of candidates, the candidates (in the
# caller's order: the first least-served one wins), then the pool's other item ids.
# Serves the least-served candidate (none when strict and even it reached the target),
# and returns {it or false, how many of the pool's items are still under the target}.
# Counts of items the pool no longer holds (a refill replaced them) are dropped.
SERVE = """
local ttl, target, strict, n = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == '1', tonumber(ARGV[4])
local ids = {}
for i = 5, #ARGV do ids[#ids + 1] = ARGV[i] end
local counts = redis.call('HMGET', KEYS[1], unpack(ids))
local best, least = false, nil
for i = 1, n do
  local c = tonumber(counts[i]) or 0
  if least == nil or c < least then best, least = ids[i], c end
end
if best and strict and least >= target then best = false end
local under = 0
for i = 1, #ids do
  local c = tonumber(counts[i]) or 0
  if ids[i] == best then c = redis.call('HINCRBY', KEYS[1], best, 1) end
  if c < target then under = under + 1 end
end
if redis.call('HLEN', KEYS[1]) > 2 * #ids + 32 then
  local keep = {}
  for _, id in ipairs(ids) do keep[id] = true end
  for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do
    if not keep[id] then redis.call('HDEL', KEYS[1], id) end
  end
end
redis.call('EXPIRE', KEYS[1], ttl)
return {best, under}
"""
