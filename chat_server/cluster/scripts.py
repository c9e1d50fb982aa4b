"""The Lua scripts a node runs in Redis.

Each state change and the event that announces it are written by one script, so they
are atomic: a snapshot (also one script) always agrees with the position in the event
stream it returns. Keys are built inside the scripts, which is fine on one Redis (not
on Redis Cluster). Every key starts with ``dc:``; pick the database in the URL to keep
two clusters apart.
"""

from __future__ import annotations

EVENTS = "dc:events"

# Generations: every process picks a random generation at start. ``dc:gen:<node>``
# names the generation that owns a node id; ``dc:alive:<node>`` (the heartbeat, with a
# time to live) holds the owner's generation. A process may take a node id only while
# no live heartbeat of another generation exists (RESYNC); every write of a node checks
# that no other generation owns it (HEARTBEAT, PUBLISH, CLAIM, a leaving REAP), so a
# process cut off long enough to be replaced can no longer act for the node. (With no
# owner at all, after Redis lost its data, writes go on until the node registers again.)
DUPLICATE = "DUPLICATE"  # the error RESYNC gives while another generation is alive
STALE = "STALE generation"  # the error PUBLISH and CLAIM give to a generation that lost its node id

# Users and rooms per entry of a 'sync' event: 2 * SYNC_PART + 6 values go through one
# unpack(), well under the ~8000 that Lua 5.1 (Redis's) can unpack or pass in one call.
SYNC_PART = 1000

# ARGV: events_maxlen, n_ops, (op, key, field, value) * n_ops,
#       kind, node, data, history_key ('' for none), history_maxlen, generation
# ops: hset, hdel, sadd, srem, release (delete a nick claim only if ours: value = node).
# Returns the stream id, which is the msgid and (its milliseconds) the time of a message.
PUBLISH = """
local n = tonumber(ARGV[2])
local i = 3
local at = 3 + 4 * n
local owner = redis.call('GET', 'dc:gen:' .. ARGV[at + 1])
if owner and owner ~= ARGV[at + 5] then
  return redis.error_reply('STALE generation: another process owns this node id')
end
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

# ARGV: folded nick, node, generation. 1 when the nick is now ours (or already was), else 0.
CLAIM = """
local owner = redis.call('GET', 'dc:gen:' .. ARGV[2])
if owner and owner ~= ARGV[3] then
  return redis.error_reply('STALE generation: another process owns this node id')
end
local cur = redis.call('HGET', 'dc:nicks', ARGV[1])
if cur == false then
  redis.call('HSET', 'dc:nicks', ARGV[1], ARGV[2])
  redis.call('SADD', 'dc:claims:' .. ARGV[2], ARGV[1])
  return 1
end
if cur == ARGV[2] then return 1 end
return 0
"""

# ARGV: node, generation, ttl_ms. 1 done; 0 when the node is no longer registered (it
# was reaped, or Redis lost its data): resync; -1 when another generation owns the node
# id now (this process was cut off and replaced): step down.
HEARTBEAT = """
local owner = redis.call('GET', 'dc:gen:' .. ARGV[1])
if owner and owner ~= ARGV[2] then return -1 end
if not owner or redis.call('SISMEMBER', 'dc:nodes', ARGV[1]) == 0 then return 0 end
redis.call('SET', 'dc:alive:' .. ARGV[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

# ARGV: node, reason, events_maxlen, force ('1' = leave on purpose, even while alive),
# generation (with force: only the owner may leave).
# Frees the node's nicks, forgets its users and announces 'down' once (SREM decides).
# The owner generation stays: a process replaced while cut off must stay replaced.
REAP = """
local node = ARGV[1]
if ARGV[4] == '1' then
  if redis.call('GET', 'dc:gen:' .. node) ~= ARGV[5] then return 0 end
  redis.call('DEL', 'dc:alive:' .. node, 'dc:gen:' .. node)
end
if redis.call('EXISTS', 'dc:alive:' .. node) == 1 then return 0 end
if redis.call('SREM', 'dc:nodes', node) == 0 then return 0 end
for _, f in ipairs(redis.call('SMEMBERS', 'dc:claims:' .. node)) do
  if redis.call('HGET', 'dc:nicks', f) == node then redis.call('HDEL', 'dc:nicks', f) end
end
redis.call('DEL', 'dc:claims:' .. node, 'dc:state:' .. node)
redis.call('XADD', 'dc:events', 'MAXLEN', '~', ARGV[3], '*', 'k', 'down', 'n', node, 'd', ARGV[2])
return 1
"""

# ARGV: node, ttl_ms, events_maxlen, stage, n_users, n_claims, n_chans, part_size, generation
# The node's state is staged first (see RedisLink._resync) in three keys nobody else
# reads: hash <stage>:u (folded -> doc), set <stage>:c (claimed folded nicks) and hash
# <stage>:m (folded -> meta). ARGV carries only their sizes, which are checked, so a
# staging cut short by a lost connection is refused rather than taken for the state.
# Nothing is unpacked in proportion to the state except into XADDs of at most
# part_size users and rooms each: Lua 5.1 cannot unpack (or pass) more than ~8000 values.
#
# Re-registers the node with everything it holds, announces it in a 'sync' event and
# returns a snapshot of every other node at that event's position:
# {sync_id, lost_nicks, {node, {folded, doc, ...}}..., {folded, meta, ...}}
# The event is one stream entry, or when the state is larger than part_size several
# entries in a row carrying 'p' = '<index>/<count>'. This script writes them all at once,
# so no other entry comes between them, and readers apply the state at the last one.
RESYNC = """
local node, stage = ARGV[1], ARGV[4]
local staged = redis.call('HGETALL', stage .. ':u')
local claims = redis.call('SMEMBERS', stage .. ':c')
local chans = redis.call('HGETALL', stage .. ':m')
redis.call('DEL', stage .. ':u', stage .. ':c', stage .. ':m')
if #staged ~= 2 * tonumber(ARGV[5]) or #claims ~= tonumber(ARGV[6])
    or #chans ~= 2 * tonumber(ARGV[7]) then
  return redis.error_reply('ERR resync state incompletely staged')
end
local gen = ARGV[9]
local alive = redis.call('GET', 'dc:alive:' .. node)
if alive and alive ~= gen then
  return redis.error_reply('DUPLICATE node id ' .. node .. ' has a live heartbeat of generation '
                           .. alive)
end
redis.call('SET', 'dc:gen:' .. node, gen)
redis.call('SADD', 'dc:nodes', node)
redis.call('SET', 'dc:alive:' .. node, gen, 'PX', ARGV[2])
local wanted = {}
for _, f in ipairs(claims) do wanted[f] = true end
for i = 1, #staged, 2 do wanted[staged[i]] = true end
-- claims left over from users who went away while we could not tell Redis
for _, f in ipairs(redis.call('SMEMBERS', 'dc:claims:' .. node)) do
  if not wanted[f] then
    if redis.call('HGET', 'dc:nicks', f) == node then redis.call('HDEL', 'dc:nicks', f) end
    redis.call('SREM', 'dc:claims:' .. node, f)
  end
end
local lost = {}
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
local items = {}  -- the event's fields after k and n: 'u:'..folded, doc, 'c:'..folded, meta
for i = 1, #staged, 2 do
  local f, doc = staged[i], staged[i + 1]
  if not lostset[f] then
    redis.call('HSET', 'dc:state:' .. node, f, doc)
    items[#items + 1] = 'u:' .. f
    items[#items + 1] = doc
  end
end
for i = 1, #chans, 2 do
  redis.call('HSETNX', 'dc:chans', chans[i], chans[i + 1])
  items[#items + 1] = 'c:' .. chans[i]
  items[#items + 1] = redis.call('HGET', 'dc:chans', chans[i])
end
local per = 2 * tonumber(ARGV[8])
local count = math.max(1, math.ceil(#items / per))
local id
for p = 0, count - 1 do
  local fields = {'k', 'sync', 'n', node}
  if count > 1 then
    fields[5] = 'p'
    fields[6] = string.format('%d/%d', p, count)
  end
  for j = p * per + 1, math.min(#items, (p + 1) * per) do fields[#fields + 1] = items[j] end
  id = redis.call('XADD', 'dc:events', 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
end
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
