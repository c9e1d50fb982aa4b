"""Reading history blocks of schema v4, once, to rewrite them as JSON (schema v5).

Schema v4 stored a block's runs pickled. Nothing writes that any more: the only use of
this module is the migration of an old file when it is opened (history.py), after
which every row is text any SQLite tool can read. The unpickler refuses anything that
names a class or function, so a crafted file cannot run code while it is converted.
"""

from __future__ import annotations

import io
import pickle
from typing import Any


class _RunsOnly(pickle.Unpickler):
    """Blocks hold only tuples, lists, strings and ints."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"history block refers to {module}.{name}")


def load_v4_block(blob: bytes) -> list[Any]:
    """The runs a v4 block held; ValueError if the blob is not one."""
    try:
        runs = _RunsOnly(io.BytesIO(blob)).load()
    except Exception as exc:  # a damaged blob may fail in any of pickle's ways
        raise ValueError(f"unreadable v4 history block: {exc!r}") from exc
    if not isinstance(runs, list) or not all(
        isinstance(run, tuple) and len(run) == 9 for run in runs
    ):
        raise ValueError("v4 history block does not hold runs")
    return runs
