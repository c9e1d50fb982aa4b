"""The Lua scripts a node runs in Redis.

Each state change and the event that announces it are written by one script, so they
are atomic: a snapshot (also one script) always agrees with the position in the event
stream it returns. Keys are built inside the scripts, which is fine on one Redis (not
on Redis Cluster). Every key starts with ``dc:``; pick the database in the URL to keep
two clusters apart.
"""

from __future__ import annotations

EVENTS = "dc:events"
ORDINALS = "dc:seq"  # stream -> how many entries were ever added to it (each entry's 'q')
LAST_ID = "dc:lastid"  # the newest stream id given out, to any stream
SHARDS = "SHARDS"  # the error RESYNC gives a node whose cluster_shards differs

# Generations: every process picks a random generation at start. ``dc:gen:<node>``
# names the generation that owns a node id; ``dc:alive:<node>`` (the heartbeat, with a
# time to live) holds the owner's generation. A process may take a node id only while
# no live heartbeat of another generation exists (RESYNC); every write of a node checks
# that no other generation owns it (HEARTBEAT, PUBLISH, CLAIM, a leaving REAP), so a
# process cut off long enough to be replaced can no longer act for the node. (With no
# owner at all, after Redis lost its data, writes go on until the node registers again.)
DUPLICATE = "DUPLICATE"  # the error RESYNC gives while another generation is alive
STALE = "STALE generation"  # the error PUBLISH and CLAIM give to a generation that lost its node id
# Fences: each resync sets ``dc:fence:<node>`` to "<generation>:<link epoch>", and every
# publish made after it carries that value. A publish sent on a connection that was
# then lost, which Redis runs only after the node reconnected and resynced, carries an
# older fence and is refused: what is not in the stream before a node's sync entry is
# never written later (inflight.py relies on it to tell a sender the truth).
FENCED = "FENCED"

# One order for every stream: every entry of the event stream, of the message shards
# (shards.py) and of the histories gets its id here, from one counter: the larger of
# Redis's clock (ms) and the last id given, with a sequence part that grows within a
# millisecond. So ids are unique and increasing across all streams, which is what lets
# a node read several streams as one (event_reader.py), and an explicit id is always
# greater than the last one of the stream it goes to (XADD refuses one that is not).
# Each entry also carries 'q', its stream's ordinal (1, 2, 3, ... per stream, kept in
# dc:seq): a reader that sees q jump knows exactly that entries went missing.
# A store without dc:lastid starts after the event stream's newest entry, so that an
# older cluster's stream (ids made by '*') is carried on.
_IDS = """
local function next_id()
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local seq = 0
  local last = redis.call('GET', 'dc:lastid')
  if not last then
    local newest = redis.call('XREVRANGE', 'dc:events', '+', '-', 'COUNT', 1)[1]
    if newest then last = newest[1] end
  end
  if last then
    local dash = string.find(last, '-', 1, true)
    local last_ms = tonumber(string.sub(last, 1, dash - 1))
    if last_ms >= ms then
      ms = last_ms
      seq = tonumber(string.sub(last, dash + 1)) + 1
    end
  end
  local id = string.format('%d-%d', ms, seq)
  redis.call('SET', 'dc:lastid', id)
  return id
end
local function append(stream, ...)
  local id = next_id()
  local q = redis.call('HINCRBY', 'dc:seq', stream, 1)
  redis.call('XADD', stream, id, 'q', q, ...)
  return id
end
"""

# The stream is trimmed by time, not count: entries older than keep_ms (Redis's clock,
# the same that makes the ids) may go, approximately (whole macro nodes). Each node
# trims at its heartbeat (HEARTBEAT), not at every message: TIME and MINID cost about
# 3 us a call in Redis, the whole message script about 6 us.
_TRIM = """
local function trim_id(keep_ms)
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(keep_ms)
  if ms < 0 then ms = 0 end
  return string.format('%d', ms)
end
"""

# Who is in which room, for the whole cluster: ``dc:roomsize`` counts the members of
# every room, kept in step with the users' documents (``dc:state:<node>``, field
# ``chans``) by these helpers, the only writers of those documents. A room with no
# count has no member anywhere, so the next JOIN creates it (ROOM below).
_DOCS = """
local function rooms_of(doc)
  if not doc then return {} end
  local ok, d = pcall(cjson.decode, doc)
  if ok and type(d) == 'table' and type(d.chans) == 'table' then return d.chans end
  return {}
end
local function resize(room, by)
  if redis.call('HINCRBY', 'dc:roomsize', room, by) <= 0 then
    redis.call('HDEL', 'dc:roomsize', room)
  end
end
local function set_doc(node, f, doc)  -- doc false: the user is gone
  local key = 'dc:state:' .. node
  local old, new = rooms_of(redis.call('HGET', key, f)), rooms_of(doc)
  for r in pairs(old) do if new[r] == nil then resize(r, -1) end end
  for r in pairs(new) do if old[r] == nil then resize(r, 1) end end
  if doc then redis.call('HSET', key, f, doc) else redis.call('HDEL', key, f) end
end
local function drop_docs(node)
  local key = 'dc:state:' .. node
  for _, doc in ipairs(redis.call('HVALS', key)) do
    for r in pairs(rooms_of(doc)) do resize(r, -1) end
  end
  redis.call('DEL', key)
end
"""

# Users and rooms per entry of a 'sync' event: 2 * SYNC_PART + 8 values go through one
# unpack(), well under the ~8000 that Lua 5.1 (Redis's) can unpack or pass in one call.
SYNC_PART = 1000

# What PUBLISH and MESSAGE check first. ARGV from ``at``: node, generation, fence.
_CHECKS = """
local function refused(at)
  local node = ARGV[at]
  local owner = redis.call('GET', 'dc:gen:' .. node)
  if owner and owner ~= ARGV[at + 1] then
    return redis.error_reply('STALE generation: another process owns this node id')
  end
  local fence = ARGV[at + 2]
  if fence ~= '' and redis.call('GET', 'dc:fence:' .. node) ~= fence then
    return redis.error_reply('FENCED: sent before the link was lost, run after it was back')
  end
  return nil
end
"""

# A room message, direct message or TAGMSG (the hot path: no state changes).
# ARGV: node, generation, fence ('' before the first resync), data,
#       history_key ('' for none), history_maxlen, once_key ('' for none), once_ttl_ms,
#       stream (the room's shard, see shards.py; the event stream for a direct message)
# Returns the stream id, which is the msgid and (its milliseconds) the time of the
# message; with a once_key already used (a retry, see inflight.py) nothing is written
# and the answer is 'dup:' and the id of the first.
MESSAGE = """
local err = refused(1)
if err then return err end
local node, data, hkey, hmax, once = ARGV[1], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
if once ~= '' then
  local first = redis.call('GET', once)
  if first then return 'dup:' .. first end
end
local id = append(ARGV[9], 'k', 'msg', 'n', node, 'd', data)
if hkey ~= '' then
  redis.call('XADD', 'dc:h:' .. hkey, 'MAXLEN', '~', hmax, id, 'k', 'msg', 'n', node, 'd', data)
  redis.call('SADD', 'dc:histkeys', hkey)
end
if once ~= '' then redis.call('SET', once, id, 'PX', ARGV[8]) end
return id
"""

# A change of shared state and the event that announces it.
# ARGV: n_ops, (op, key, field, value) * n_ops, node, generation, fence, kind, data
# ops: hset, hdel, sadd, srem, release (delete a nick claim only if ours: value = node),
#      doc / undoc (a user's document: key = its node, field = folded nick, see _DOCS),
#      unlock (delete string key only if it holds value).
PUBLISH = """
local n = tonumber(ARGV[1])
local i = 2
local at = 2 + 4 * n
local err = refused(at)
if err then return err end
for _ = 1, n do
  local op, key, f, v = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  i = i + 4
  if op == 'hset' then redis.call('HSET', key, f, v)
  elseif op == 'hdel' then redis.call('HDEL', key, f)
  elseif op == 'sadd' then redis.call('SADD', key, f)
  elseif op == 'srem' then redis.call('SREM', key, f)
  elseif op == 'doc' then set_doc(key, f, v)
  elseif op == 'undoc' then set_doc(key, f, false)
  elseif op == 'unlock' then
    if redis.call('GET', key) == v then redis.call('DEL', key) end
  elseif op == 'release' then
    if redis.call('HGET', key, f) == v then redis.call('HDEL', key, f) end
  end
end
return append('dc:events', 'k', ARGV[at + 3], 'n', ARGV[at], 'd', ARGV[at + 4])
"""

# ARGV: owner (node:folded nick of the joiner), ttl_ms, then the folded rooms to create.
# For each room, two values: 'exists' and its settings (a JSON meta, or '') when it has
# members somewhere; 'busy' when another JOIN is creating it right now (try again
# shortly); 'create' when it is ours to create: a reservation, ``dc:creating:<room>``,
# holds off every other creator until our JOIN's publish unlocks it (or ttl_ms pass).
ROOM = """
local out = {}
for i = 3, #ARGV do
  local room = ARGV[i]
  local held = redis.call('GET', 'dc:creating:' .. room)
  if redis.call('HEXISTS', 'dc:roomsize', room) == 1 then
    out[#out + 1] = 'exists'
    out[#out + 1] = redis.call('HGET', 'dc:chans', room) or ''
  elseif held and held ~= ARGV[1] then
    out[#out + 1] = 'busy'
    out[#out + 1] = ''
  else
    redis.call('SET', 'dc:creating:' .. room, ARGV[1], 'PX', ARGV[2])
    out[#out + 1] = 'create'
    out[#out + 1] = ''
  end
end
return out
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

# ARGV: node, generation, ttl_ms, keep_ms (the streams', see _TRIM), shard count. 1 done;
# 0 when the node is no longer registered (it was reaped, or Redis lost its data):
# resync; -1 when another generation owns the node id now (this process was cut off and
# replaced): step down. Trims the event stream and every message shard too.
HEARTBEAT = """
local owner = redis.call('GET', 'dc:gen:' .. ARGV[1])
if owner and owner ~= ARGV[2] then return -1 end
if not owner or redis.call('SISMEMBER', 'dc:nodes', ARGV[1]) == 0 then return 0 end
redis.call('SET', 'dc:alive:' .. ARGV[1], ARGV[2], 'PX', ARGV[3])
local minid = trim_id(ARGV[4])
redis.call('XTRIM', 'dc:events', 'MINID', '~', minid)
for shard = 0, tonumber(ARGV[5]) - 1 do
  redis.call('XTRIM', 'dc:m:' .. shard, 'MINID', '~', minid)
end
return 1
"""

# ARGV: node, reason, force ('1' = leave on purpose, even while alive),
# generation (with force: only the owner may leave).
# Frees the node's nicks, forgets its users and announces 'down' once (SREM decides).
# The owner generation stays: a process replaced while cut off must stay replaced.
REAP = """
local node = ARGV[1]
if ARGV[3] == '1' then
  if redis.call('GET', 'dc:gen:' .. node) ~= ARGV[4] then return 0 end
  redis.call('DEL', 'dc:alive:' .. node, 'dc:gen:' .. node)
end
if redis.call('EXISTS', 'dc:alive:' .. node) == 1 then return 0 end
if redis.call('SREM', 'dc:nodes', node) == 0 then return 0 end
for _, f in ipairs(redis.call('SMEMBERS', 'dc:claims:' .. node)) do
  if redis.call('HGET', 'dc:nicks', f) == node then redis.call('HDEL', 'dc:nicks', f) end
end
redis.call('DEL', 'dc:claims:' .. node)
drop_docs(node)
append('dc:events', 'k', 'down', 'n', node, 'd', ARGV[2])
return 1
"""

# ARGV: node, ttl_ms, stage, n_users, n_claims, n_chans, part_size, generation,
#       fence (set for the publishes that follow, and carried by the sync event as 'e'),
#       shard count (recorded in dc:shards by the first node; a node with another is
#       refused: it would write and read room messages in the wrong streams)
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
local node, stage = ARGV[1], ARGV[3]
local staged = redis.call('HGETALL', stage .. ':u')
local claims = redis.call('SMEMBERS', stage .. ':c')
local chans = redis.call('HGETALL', stage .. ':m')
redis.call('DEL', stage .. ':u', stage .. ':c', stage .. ':m')
if #staged ~= 2 * tonumber(ARGV[4]) or #claims ~= tonumber(ARGV[5])
    or #chans ~= 2 * tonumber(ARGV[6]) then
  return redis.error_reply('ERR resync state incompletely staged')
end
local shards = redis.call('GET', 'dc:shards')
if shards and shards ~= ARGV[10] then
  return redis.error_reply('SHARDS this cluster spreads room messages over ' .. shards
                           .. ' streams, this node over ' .. ARGV[10])
end
local gen = ARGV[8]
local alive = redis.call('GET', 'dc:alive:' .. node)
if alive and alive ~= gen then
  return redis.error_reply('DUPLICATE node id ' .. node .. ' has a live heartbeat of generation '
                           .. alive)
end
redis.call('SET', 'dc:gen:' .. node, gen)
redis.call('SET', 'dc:shards', ARGV[10])
redis.call('SET', 'dc:fence:' .. node, ARGV[9])
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
drop_docs(node)
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
    set_doc(node, f, doc)
    items[#items + 1] = 'u:' .. f
    items[#items + 1] = doc
  end
end
for i = 1, #chans, 2 do
  redis.call('HSETNX', 'dc:chans', chans[i], chans[i + 1])
  items[#items + 1] = 'c:' .. chans[i]
  items[#items + 1] = redis.call('HGET', 'dc:chans', chans[i])
end
local per = 2 * tonumber(ARGV[7])
local count = math.max(1, math.ceil(#items / per))
local id
for p = 0, count - 1 do
  local fields = {'k', 'sync', 'n', node, 'e', ARGV[9]}
  if count > 1 then
    fields[7] = 'p'
    fields[8] = string.format('%d/%d', p, count)
  end
  for j = p * per + 1, math.min(#items, (p + 1) * per) do fields[#fields + 1] = items[j] end
  id = append('dc:events', unpack(fields))
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

# The newest messages of conversations up to a position (a node starts keeping a room's
# history: see subscriptions.py). ARGV: upto (a stream id), count, then the keys.
# Returns one list of [id, fields] per key, newest first.
HISTORY = """
local out = {}
for i = 3, #ARGV do
  out[#out + 1] = redis.call('XREVRANGE', 'dc:h:' .. ARGV[i], ARGV[1], '-', 'COUNT', ARGV[2])
end
return out
"""

# Scripts start with the helpers they use.
SCRIPTS = {
    "message": _CHECKS + _IDS + MESSAGE,
    "publish": _CHECKS + _DOCS + _IDS + PUBLISH,
    "claim": CLAIM,
    "heartbeat": _TRIM + HEARTBEAT,
    "reap": _DOCS + _IDS + REAP,
    "resync": _DOCS + _IDS + RESYNC,
    "room": ROOM,
    "history": HISTORY,
}
