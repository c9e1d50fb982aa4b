"""Cluster mode: several ``chat-server`` nodes sharing one Redis.

How it fits together (one node):

- ``redis_link``: two threads do all Redis I/O and talk to the selectors loop through a
  ``mailbox`` (a deque and a socketpair: the loop never waits on Redis); ``liveness``
  says when the node may declare others dead; ``staging`` registers the node's whole
  state; ``event_reader`` reads the event stream and the followed message shards as
  one order, and finds gaps in them.
- ``backplane``: the loop side; requests out, answers and events in, clients held while
  they wait, link-state notices.
- ``inflight``: messages on their way through Redis, and what their senders are told
  (labeled echoes, FAILs with the target, NOTEs about late outcomes, retry tokens).
- ``events``: the event stream applied to this node (its replica of remote users and
  rooms); ``message_events``: messages delivered to local members and kept in the
  shared history; ``gaps``: what the node does about missed events.
- ``changes`` / ``handlers`` / ``rooms``: what local commands publish; message
  sequencing, nick claims, and who creates a room.
- ``scripts``: the Lua that makes each change and its event atomic in Redis, and gives
  every stream entry its id from one counter; ``script_runner`` runs it by SHA, loading
  it again when Redis forgot it (a restart, a failover).
- ``shards`` / ``subscriptions``: which stream a room's messages go to, and which of
  those streams this node reads (and so which rooms' history it keeps whole).
- ``stats``: ``STATS c`` and the figures behind it.

Order: state events and direct messages are entries of ``dc:events``, room messages of
their room's shard (``dc:m:<n>``); every id comes from one counter, so ids order all
streams as one. A message's id is its msgid and its milliseconds the server-time, and
every node delivers in id order what it reads: ``dc:events`` and the shards of the
rooms it has members in.
"""

from __future__ import annotations
