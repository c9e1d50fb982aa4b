"""Cluster mode: several ``chat-server`` nodes sharing one Redis.

How it fits together (one node):

- ``redis_link``: two threads do all Redis I/O and talk to the selectors loop through a
  deque and a socketpair (the loop never waits on Redis).
- ``backplane``: the loop side; requests out, answers and events in, clients held while
  they wait, link-state notices.
- ``events``: the event stream applied to this node (its replica of remote users and
  rooms, local delivery, shared history).
- ``changes`` / ``handlers``: what local commands publish; message sequencing and nick
  claims.
- ``scripts``: the Lua that makes each change and its event atomic in Redis.

Order: every room message is an entry of one Redis stream (``dc:events``); its id is the
msgid and its milliseconds the server-time, and every node delivers in stream order.
"""

from __future__ import annotations
