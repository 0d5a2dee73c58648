from __future__ import annotations

from prefork.cli import main

raise SystemExit(main())
