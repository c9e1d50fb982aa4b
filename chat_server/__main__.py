"""``python -m chat_server`` runs the daemon."""

from chat_server.cli import main

raise SystemExit(main())
