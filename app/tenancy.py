"""Tenant isolation that fails closed.

Every ORM select, update and delete of a `TenantScoped` model gets
`account_id = <current account>` added by a session hook (SQLAlchemy's
`with_loader_criteria` recipe). With no account set, such a statement raises
`TenantNotSet` instead of returning every tenant's rows. Code that really must see
all tenants (operators' pages, scheduled jobs) says so with `unscoped()`; a test
keeps the list of those places short and approved.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import abort
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction, with_loader_criteria
from sqlalchemy.sql import visitors

from app.extensions import Base, db
from app.models.base import TenantScoped

_current_account_id: ContextVar[int | None] = ContextVar("current_account_id", default=None)
_unscoped: ContextVar[bool] = ContextVar("unscoped", default=False)

ModelT = TypeVar("ModelT")


class TenantNotSet(RuntimeError):
    """A tenant-owned table was queried with no account set and outside `unscoped()`."""


class CrossTenantWrite(RuntimeError):
    """A new row names another account than the current one."""


def current_account_id() -> int | None:
    return _current_account_id.get()


@contextmanager
def tenant_context(account_id: int) -> Iterator[None]:
    """Scope every tenant-owned query in the block to one account."""
    token = _current_account_id.set(account_id)
    unscoped_token = _unscoped.set(False)
    try:
        yield
    finally:
        _unscoped.reset(unscoped_token)
        _current_account_id.reset(token)


@contextmanager
def unscoped() -> Iterator[None]:
    """See every tenant's rows in the block. Each use is on the approved list (tests)."""
    token = _unscoped.set(True)
    try:
        yield
    finally:
        _unscoped.reset(token)


def enter_tenant(account_id: int) -> object:
    """Set the account for the rest of a request; `leave_tenant` undoes it at teardown."""
    return _current_account_id.set(account_id)


def leave_tenant(token: Any) -> None:
    _current_account_id.reset(token)


def _touches_tenant_table(state: ORMExecuteState) -> bool:
    if any(
        isinstance(m.class_, type) and issubclass(m.class_, TenantScoped) for m in state.all_mappers
    ):
        return True
    # `all_mappers` names only the selected entities: a tenant table that is only joined,
    # or inside a subquery, EXISTS or CTE, is found by walking the whole statement.
    tenant_tables = {
        mapper.local_table
        for mapper in Base.registry.mappers
        if issubclass(mapper.class_, TenantScoped)
    }
    statement: Any = state.statement
    return any(
        isinstance(element, sa.Table) and element in tenant_tables
        for element in visitors.iterate(statement)
    )


@event.listens_for(Session, "do_orm_execute")
def _add_tenant_criteria(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    # Refreshing columns of an object already loaded needs no new check.
    if state.is_column_load or _unscoped.get():
        return
    account_id = _current_account_id.get()
    if account_id is None:
        if _touches_tenant_table(state):
            raise TenantNotSet(
                "tenant-owned rows queried with no account set; use tenant_context() "
                "or, for operators and jobs, unscoped()"
            )
        return
    state.statement = _scoped(state.statement, account_id)


@lru_cache(maxsize=1024)
def _scoped(statement: Any, account_id: int) -> Any:
    """`statement` limited to one account. Remembered, so that a statement built once (the
    pages' hot queries are) is not copied and its cache key not worked out again at each
    execution; a statement built anew for each call only passes through."""
    return statement.options(
        with_loader_criteria(
            TenantScoped,
            lambda cls: cls.account_id == account_id,
            include_aliases=True,
        )
    )


@event.listens_for(Session, "before_flush")
def _check_new_rows(session: Session, _tx: UOWTransaction, _instances: Any) -> None:
    if _unscoped.get():
        return
    account_id = _current_account_id.get()
    for obj in session.new:
        if not isinstance(obj, TenantScoped):
            continue
        if account_id is None:
            raise TenantNotSet(f"new {type(obj).__name__} with no account set")
        if obj.account_id is None:
            obj.account_id = account_id
        elif obj.account_id != account_id:
            raise CrossTenantWrite(
                f"new {type(obj).__name__} for account {obj.account_id} "
                f"while working for account {account_id}"
            )


def get_or_404(model: type[ModelT], object_id: int) -> ModelT:
    """Load one row by id through the tenant filter; 404 when it is not this tenant's."""
    row = db.session.scalars(sa.select(model).where(model.id == object_id)).one_or_none()  # type: ignore[attr-defined]
    if row is None:
        abort(404)
    return row
