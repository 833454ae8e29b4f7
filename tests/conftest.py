"""Shared fixtures: one migrated database per run, each test in a rolled-back transaction."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import scoped_session, sessionmaker

from tests import environment

environment.configure()

from app import create_app  # noqa: E402  (the environment must be set first)
from app.extensions import db  # noqa: E402
from app.models import Account, Role, User  # noqa: E402
from tests import factories  # noqa: E402
from tests.live import release  # noqa: E402

TEST_CONFIG = {
    "TESTING": True,
    "WTF_CSRF_ENABLED": False,
    "RATELIMIT_ENABLED": False,
    "FILES_DIR": str(environment.WORK_DIR / "files"),
}


def migrate_database(app: Flask) -> None:
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()
        if db.engine.dialect.name == "sqlite":
            # Fold the WAL into the file so it can be copied as a template for live tests.
            with db.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        db.engine.dispose()


@pytest.fixture(scope="session")
def app() -> Iterator[Flask]:
    url = os.environ["DATABASE_URL"]
    if environment.is_postgres():
        environment.reset_postgres_schema(url)
    app = create_app(TEST_CONFIG)
    migrate_database(app)
    if not environment.is_postgres():
        environment.save_sqlite_template(url)
    yield app
    release(app)
    environment.cleanup()


@pytest.fixture(autouse=True)
def db_session(app: Flask, request: pytest.FixtureRequest) -> Iterator[scoped_session[Any] | None]:
    """Bind the app's session to one outer transaction that is rolled back after the test.

    Code under test commits freely: with `create_savepoint` a commit only releases a
    savepoint inside the outer transaction. Tests marked `live` commit for real instead
    (other processes must see their data) and get a database of their own.
    """
    if request.node.get_closest_marker("live"):
        yield None
        return
    with app.app_context():
        connection = db.engine.connect()
        transaction = connection.begin()
        # A plain Session: Flask-SQLAlchemy's own picks its engine itself and would
        # ignore this connection (and commit for real).
        session = scoped_session(
            sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
        )
        original, db.session = db.session, session
        try:
            yield session
        finally:
            session.remove()
            db.session = original
            transaction.rollback()
            connection.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def app_on_the_test_connection(config: dict[str, object]) -> Flask:
    """`create_app(config)` whose requests share the test's session and transaction.

    The session-wide app's requests run inside the test's app context and so keep the test's
    session; a second app pushes app contexts of its own, whose teardown would close that
    session and roll back the test's rows. This one leaves the session to the test.
    """
    other = create_app(config)
    other.teardown_appcontext_funcs.remove(db._teardown_session)
    return other


class Auth:
    """Log a test client in as a user (the flaskr `auth` helper, over the real form)."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def login(self, user: User, password: str = factories.PASSWORD) -> None:
        response = self.client.post("/login", data={"email": user.email, "password": password})
        assert response.status_code == 302, "login failed"

    def logout(self) -> None:
        self.client.post("/logout")


@pytest.fixture
def auth(client: FlaskClient) -> Auth:
    return Auth(client)


@pytest.fixture
def account() -> Account:
    return factories.subscribed_account(kind="agency", seats=2)


@pytest.fixture
def other_account() -> Account:
    """The tenant every isolation test tries to reach into."""
    return factories.subscribed_account(kind="brokerage", seats=2)


def _member(account: Account, role: Role) -> User:
    seat_id = None
    if role is Role.SEAT_MEMBER:
        seat_id = factories.first_seat(account).id
    return factories.member(account, role, seat_id=seat_id)


@pytest.fixture
def owner(account: Account) -> User:
    return _member(account, Role.OWNER)


@pytest.fixture
def admin(account: Account) -> User:
    return _member(account, Role.ADMIN)


@pytest.fixture
def viewer(account: Account) -> User:
    return _member(account, Role.VIEWER)


@pytest.fixture
def seat_member(account: Account) -> User:
    return _member(account, Role.SEAT_MEMBER)


@pytest.fixture
def operator() -> User:
    return factories.UserFactory(is_operator=True)
