"""The Lua scripts a node runs in Redis.

Each state change and the event that announces it are written by one script, so they
are atomic: a snapshot (also one script) always agrees with the position in the event
stream it returns. Keys are built inside the scripts, which is fine on one Redis (not
on Redis Cluster). Every key starts with ``dc:``; pick the database in the URL to keep
two clusters apart.
"""

from __future__ import annotations

EVENTS = "dc:events"

# ARGV: events_maxlen, n_ops, (op, key, field, value) * n_ops,
#       kind, node, data, history_key ('' for none), history_maxlen
# ops: hset, hdel, sadd, srem, release (delete a nick claim only if ours: value = node).
# Returns the stream id, which is the msgid and (its milliseconds) the time of a message.
PUBLISH = """
local n = tonumber(ARGV[2])
local i = 3
for _ = 1, n do
  local op, key, f, v = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  i = i + 4
  if op == 'hset' then redis.call('HSET', key, f, v)
  elseif op == 'hdel' then redis.call('HDEL', key, f)
  elseif op == 'sadd' then redis.call('SADD', key, f)
  elseif op == 'srem' then redis.call('SREM', key, f)
  elseif op == 'release' then
    if redis.call('HGET', key, f) == v then redis.call('HDEL', key, f) end
  end
end
local kind, node, data, hkey, hmax = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
local id = redis.call('XADD', 'dc:events', 'MAXLEN', '~', ARGV[1], '*',
                      'k', kind, 'n', node, 'd', data)
if hkey ~= '' then
  redis.call('XADD', 'dc:h:' .. hkey, 'MAXLEN', '~', hmax, id, 'k', kind, 'n', node, 'd', data)
  redis.call('SADD', 'dc:histkeys', hkey)
end
return id
"""

# ARGV: folded nick, node. 1 when the nick is now ours (or already was), else 0.
CLAIM = """
local cur = redis.call('HGET', 'dc:nicks', ARGV[1])
if cur == false then
  redis.call('HSET', 'dc:nicks', ARGV[1], ARGV[2])
  redis.call('SADD', 'dc:claims:' .. ARGV[2], ARGV[1])
  return 1
end
if cur == ARGV[2] then return 1 end
return 0
"""

# ARGV: node, ttl_ms. 0 when the node is no longer a member (it was reaped): resync.
HEARTBEAT = """
if redis.call('SISMEMBER', 'dc:nodes', ARGV[1]) == 0 then return 0 end
redis.call('SET', 'dc:alive:' .. ARGV[1], '1', 'PX', ARGV[2])
return 1
"""

# ARGV: node, reason, events_maxlen, force ('1' = leave on purpose, even while alive).
# Frees the node's nicks, forgets its users and announces 'down' once (SREM decides).
REAP = """
local node = ARGV[1]
if ARGV[4] == '1' then redis.call('DEL', 'dc:alive:' .. node) end
if redis.call('EXISTS', 'dc:alive:' .. node) == 1 then return 0 end
if redis.call('SREM', 'dc:nodes', node) == 0 then return 0 end
for _, f in ipairs(redis.call('SMEMBERS', 'dc:claims:' .. node)) do
  if redis.call('HGET', 'dc:nicks', f) == node then redis.call('HDEL', 'dc:nicks', f) end
end
redis.call('DEL', 'dc:claims:' .. node, 'dc:state:' .. node)
redis.call('XADD', 'dc:events', 'MAXLEN', '~', ARGV[3], '*', 'k', 'down', 'n', node, 'd', ARGV[2])
return 1
"""

# ARGV: node, ttl_ms, events_maxlen,
#       n_users, (folded, doc) * n_users, n_claims, folded * n_claims,
#       n_chans, (folded, meta) * n_chans
# Re-registers the node with everything it holds, announces it in one 'sync' event and
# returns a snapshot of every other node at that event's position:
# {sync_id, lost_nicks, {node, {folded, doc, ...}}..., {folded, meta, ...}}
RESYNC = """
local node = ARGV[1]
redis.call('SADD', 'dc:nodes', node)
redis.call('SET', 'dc:alive:' .. node, '1', 'PX', ARGV[2])
local i = 4
local nusers = tonumber(ARGV[i]); i = i + 1
local users = {}
for _ = 1, nusers do users[#users + 1] = {ARGV[i], ARGV[i + 1]}; i = i + 2 end
local nclaims = tonumber(ARGV[i]); i = i + 1
local wanted = {}
for _ = 1, nclaims do wanted[ARGV[i]] = true; i = i + 1 end
for _, u in ipairs(users) do wanted[u[1]] = true end
-- claims left over from users who went away while we could not tell Redis
for _, f in ipairs(redis.call('SMEMBERS', 'dc:claims:' .. node)) do
  if not wanted[f] then
    if redis.call('HGET', 'dc:nicks', f) == node then redis.call('HDEL', 'dc:nicks', f) end
    redis.call('SREM', 'dc:claims:' .. node, f)
  end
end
local lost = {}
local fields = {'k', 'sync', 'n', node}
redis.call('DEL', 'dc:state:' .. node)
for f, _ in pairs(wanted) do
  local cur = redis.call('HGET', 'dc:nicks', f)
  if cur == false or cur == node then
    redis.call('HSET', 'dc:nicks', f, node)
    redis.call('SADD', 'dc:claims:' .. node, f)
  else
    lost[#lost + 1] = f
  end
end
local lostset = {}
for _, f in ipairs(lost) do lostset[f] = true end
for _, u in ipairs(users) do
  if not lostset[u[1]] then
    redis.call('HSET', 'dc:state:' .. node, u[1], u[2])
    fields[#fields + 1] = 'u:' .. u[1]
    fields[#fields + 1] = u[2]
  end
end
local nchans = tonumber(ARGV[i]); i = i + 1
for _ = 1, nchans do
  redis.call('HSETNX', 'dc:chans', ARGV[i], ARGV[i + 1])
  fields[#fields + 1] = 'c:' .. ARGV[i]
  fields[#fields + 1] = redis.call('HGET', 'dc:chans', ARGV[i])
  i = i + 2
end
local id = redis.call('XADD', 'dc:events', 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
local others = {}
for _, nd in ipairs(redis.call('SMEMBERS', 'dc:nodes')) do
  if nd ~= node then
    others[#others + 1] = nd
    others[#others + 1] = redis.call('HGETALL', 'dc:state:' .. nd)
  end
end
return {id, lost, others, redis.call('HGETALL', 'dc:chans')}
"""

SCRIPTS = {
    "publish": PUBLISH,
    "claim": CLAIM,
    "heartbeat": HEARTBEAT,
    "reap": REAP,
    "resync": RESYNC,
}
