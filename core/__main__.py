"""``python -m core``: the headless CLI (see :mod:`core.cli`)."""

from core.cli import main

raise SystemExit(main())
