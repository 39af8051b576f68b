"""An application module that stops the process when it is imported without its configuration,
as some do with sys.exit()."""

from __future__ import annotations

import sys

sys.exit("DATABASE_URL is not set")
