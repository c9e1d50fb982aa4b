"""``python -m chat_server.history SETTINGS``: the history worker process (worker.py)."""

import sys

from chat_server.history.worker import main

sys.exit(main(sys.argv[1:]))
