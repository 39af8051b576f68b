from __future__ import annotations

import pytest

SECRET = "test-secret-key-0123456789"


@pytest.fixture(autouse=True)
def _secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with a secret key in the environment, as a deployment would."""
    monkeypatch.setenv("ACTIONKIT_SECRET_KEY", SECRET)
