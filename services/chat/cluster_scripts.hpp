// chat over Redis: the Lua scripts (EVAL; each runs atomically in Redis).
#pragma once

#include <string_view>

namespace coserve::services::chat::scripts {

// Claims or refreshes a name for this daemon: 1 if it is ours now, 0 if another has it.
// KEYS[1] the name's key; ARGV[1] this daemon's id, ARGV[2] the ttl in seconds.
constexpr std::string_view claim = R"(local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('EXPIRE', KEYS[1], ARGV[2]) return 1 end
if v then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1)";

// Releases a name if it is ours.
constexpr std::string_view release = R"(if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0)";

// Rewrites this daemon's membership hash (nick -> room) and marks the daemon
// alive in the daemons set (scored by Redis' clock, in ms); forgets daemons
// silent for longer than the ttl.
constexpr std::string_view refresh = R"(local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]) * 1000)
redis.call('DEL', KEYS[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1)";

// Every live daemon's members: daemon, nick, room, daemon, nick, room, ...
constexpr std::string_view who = R"(local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[2]) * 1000, '+inf')
local out = {}
for _, id in ipairs(ids) do
  local h = redis.call('HGETALL', ARGV[1] .. id)
  for i = 1, #h, 2 do out[#out + 1] = id; out[#out + 1] = h[i]; out[#out + 1] = h[i + 1] end
end
return out)";

}  // namespace coserve::services::chat::scripts
