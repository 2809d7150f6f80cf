from __future__ import annotations

from access_auditor.cli.main import main

raise SystemExit(main())
