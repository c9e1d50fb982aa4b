"""``python -m bot`` runs ``chat-bot``."""

import sys

from bot.cli import main

sys.exit(main())
