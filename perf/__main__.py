"""``python -m perf`` runs the ``chat-perf`` command line."""

from perf.cli import main

raise SystemExit(main())
