"""Cluster mode: several ``chat-server`` nodes sharing one Redis.

How it fits together (one node):

- ``redis_link``: two threads do all Redis I/O and talk to the selectors loop through a
  ``mailbox`` (a deque and a socketpair: the loop never waits on Redis); ``liveness``
  says when the node may declare others dead; ``staging`` registers the node's whole
  state; ``event_reader`` reads the event stream and finds gaps in it.
- ``backplane``: the loop side; requests out, answers and events in, clients held while
  they wait, link-state notices.
- ``inflight``: messages on their way through Redis, and what their senders are told
  (labeled echoes, FAILs with the target, NOTEs about late outcomes, retry tokens).
- ``events``: the event stream applied to this node (its replica of remote users and
  rooms); ``message_events``: messages delivered to local members and kept in the
  shared history; ``gaps``: what the node does about missed events.
- ``changes`` / ``handlers`` / ``rooms``: what local commands publish; message
  sequencing, nick claims, and who creates a room.
- ``scripts``: the Lua that makes each change and its event atomic in Redis.
- ``stats``: ``STATS c`` and the figures behind it.

Order: every room message is an entry of one Redis stream (``dc:events``); its id is the
msgid and its milliseconds the server-time, and every node delivers in stream order.
"""

from __future__ import annotations
