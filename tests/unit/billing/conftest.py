"""The billing rules are pure: their tests opt out of the shared per-test database session."""

import pytest


@pytest.fixture
def db_session() -> None:
    """Replace the autouse ``tests/conftest.py`` fixture of the same name: no database here."""
