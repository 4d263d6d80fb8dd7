"""The Lua scripts a cluster's servers run in Redis: what must happen atomically there
-- numbering a room's messages, holding a nick, raising a room's floor -- each checking
the asking server's *lease* first where it writes (see ``node.py``: fencing).  Loaded by
``store.RedisStore``; their keys and arguments are described with each."""

from __future__ import annotations

__all__ = ["SAY", "EVENT", "CLAIM", "FLOOR", "RELEASE", "RELEASE_IF"]

# Messages of one room, in order (one script for a read's run of them: one command to
# pack and run, not one per message): for each, the next sequence number and its
# entry, atomically; and the id of the entry before it (a server that applied that one
# may apply this one at once).  KEYS[1]: the *lease* of the asking server
# (``node.py``): a server whose lease lapsed -- the others took it for dead and let its
# members go -- writes nothing more.  KEYS[2], KEYS[3]: the room's counter and log.
# ARGV[1], ARGV[2]: the floor (below) and how long a client id is kept, in seconds; then
# message i (from 1) has KEYS[3 + i] and ARGV[2i + 1], ARGV[2i + 2]: body, digest.  (Given
# once per run, not per message: packing each argument is redis-py's dearest step.)
# The ids are looked up in one MGET, and the counter read and written once per run:
# each ``redis.call`` from a script costs Redis as much as a small command, and Redis
# shares the machine.
#
# With a client id (KEYS[3 + i]: sent:{nick}:{id}; the digest: of kind, room and text;
# no id: the log's key and an empty digest), a resend of a message already in the log
# -- its first answer lost with a connection, to Redis or to the client -- gets that
# message's number back.
#
# The *floor*: the highest number the asking server has seen in the room.  A Redis that
# lost the tail of its log (``appendfsync everysec`` and a crash lose up to a second)
# has a counter below numbers that servers and clients have already shown; counting on
# from there would give those numbers to other messages, and everyone would skip them
# as seen.  The counter is raised past the floor instead (and says how many numbers
# were skipped, so the server can say so).
#
# Returned, flat (a table per message cost Redis more than the message's XADD): the id
# of the log's entry before the run, how many numbers were skipped before its first
# new message, then each message's number -- a resend's negated.
SAY = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('FENCED this server has no lease in the cluster')
end
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local before = last[1] and last[1][1] or '0-0'
local floor, ttl = tonumber(ARGV[1]), ARGV[2]
local n = #KEYS - 3
local seen = {}
local ids = {}
for i = 1, n do
  if ARGV[2 * i + 2] ~= '' then
    ids[#ids + 1] = KEYS[3 + i]
  end
  if #ids == 1000 or (i == n and #ids > 0) then
    local got = redis.call('MGET', unpack(ids))
    for j = 1, #ids do
      seen[ids[j]] = got[j]
    end
    ids = {}
  end
end
local counter = tonumber(redis.call('GET', KEYS[2]) or '0')
local seq0 = counter
local out = {before, 0}
for i = 1, n do
  local sent, digest = KEYS[3 + i], ARGV[2 * i + 2]
  local again = nil
  if digest ~= '' and seen[sent] then
    local seq, known = string.match(seen[sent], '^(%d+) (%x+)$')
    if known == digest then
      again = tonumber(seq)
    end
  end
  if again then
    out[i + 2] = -again
  else
    local seq = counter + 1
    if seq <= floor then
      out[2] = floor + 1 - seq
      seq = floor + 1
    end
    counter = seq
    local id = seq .. '-0'
    redis.call('XADD', KEYS[3], id, 'm', ARGV[2 * i + 1])
    if digest ~= '' then
      local record = seq .. ' ' .. digest
      redis.call('SET', sent, record, 'EX', ttl)
      seen[sent] = record
    end
    out[i + 2] = seq
  end
end
if counter ~= seq0 then
  redis.call('SET', KEYS[2], counter)
end
return out
"""

# Anything else: an entry after the room's last message (id <seq>-<n>).
EVENT = """
local seq = redis.call('GET', KEYS[1]) or '0'
return redis.call('XADD', KEYS[2], seq .. '-*', 'm', ARGV[1])
"""

# Hold a nick's key (KEYS[2]) for ARGV[2] (an owner: a member's session token) as
# ARGV[1] for ARGV[3] seconds: 1 if it is ours now, 0 if someone else holds it.  Only
# with a lease (KEYS[1]).
CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('FENCED this server has no lease in the cluster')
end
local v = redis.call('GET', KEYS[2])
if v and cjson.decode(v)['owner'] ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[3])
return 1
"""

# A resuming client had seen message ARGV[1] of an existing room (its field ARGV[2] in
# KEYS[3], the rooms): if the room's counter (KEYS[2]) is behind it, Redis lost the
# tail of its log; the counter goes on after it (never more than ARGV[3] further).
# Returns how many numbers were skipped.  Only with a lease (KEYS[1]).
FLOOR = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('FENCED this server has no lease in the cluster')
end
local seen = tonumber(ARGV[1])
local now = tonumber(redis.call('GET', KEYS[2]) or '0')
if now < seen and seen - now <= tonumber(ARGV[3]) and redis.call('HEXISTS', KEYS[3], ARGV[2]) == 1 then
  redis.call('SET', KEYS[2], seen)
  return seen - now
end
return 0
"""

# Let go of a nick only if it is still ours.
RELEASE = """
local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v)['owner'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Delete a key only if it still holds ARGV[1] (a record this server wrote).
RELEASE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
