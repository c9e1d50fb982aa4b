"""``python -m chat_tui`` runs the client like ``chat-tui``."""

import sys

from chat_tui.cli import main

sys.exit(main())
