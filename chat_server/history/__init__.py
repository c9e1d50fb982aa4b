"""Message history: durable in SQLite (a cluster's in PostgreSQL), private, searchable,
never on the event loop.

model.py holds the records, schema.py the file, queries.py the reads (questions.py the
queries still waiting for an answer), worker.py the process that owns the database
(sqlite_writer.py and postgres.py its two engines), pipe.py the pipes to it and the
file's lock, store.py the event loop's side, recent.py the join replay cache,
legacy.py the one-time conversion of old files, admin.py the command line
(``chat-server history``) over export.py (JSON Lines) and retention.py (prune).
docs/architecture.md tells the story.
"""

from chat_server.history.model import (
    HistoryStoreError,
    Ref,
    StoredMessage,
    dm_key,
    format_time,
    parse_time,
)
from chat_server.history.store import DEFAULT_CACHE_BYTES, Durability, HistoryStore

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "Durability",
    "HistoryStore",
    "HistoryStoreError",
    "Ref",
    "StoredMessage",
    "dm_key",
    "format_time",
    "parse_time",
]
