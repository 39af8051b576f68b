"""An application whose module imports a package that is not installed (a missing
dependency): the command line says so and exits 2, as for any app it cannot load."""

from __future__ import annotations

import actionkit_tests_missing_dependency  # noqa: F401  # not installed, on purpose
