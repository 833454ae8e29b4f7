"""The tenant filter fails closed: every ORM read and bulk write of a tenant-owned model is
limited to the current account, a read with no account raises, and the places that see every
tenant (`unscoped()`) are an explicit, approved list."""

from __future__ import annotations

import ast
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.exceptions import NotFound

from app.extensions import db
from app.models import (
    Account,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    Membership,
    Person,
    Report,
    ReportFormat,
    Seat,
)
from app.tenancy import (
    CrossTenantWrite,
    TenantNotSet,
    get_or_404,
    tenant_context,
    unscoped,
)
from tests import factories

APP_DIR = Path(__file__).resolve().parents[2] / "app"

# Every place in app/ that sees all tenants, as "file:function" -> (uses, why it must).
# A new `unscoped()` or engine connection fails test_unscoped_uses_are_the_approved_list until
# it is added here.
APPROVED_UNSCOPED: dict[str, tuple[int, str]] = {
    "app/usage/polls.py:UnchangedPolls._poll (engine connection)": (
        1,
        "an unchanged dashboard poll reads the account, the session user's membership, the "
        "period and its version in one Core statement, filtered by the account in the URL, "
        "before any tenant is set, on a connection out of any transaction",
    ),
    "app/web.py:_user_rows": (
        1,
        "a tenant page finds its account among the user's memberships, and the account "
        "switcher lists them all",
    ),
    "app/ops/tenant_queries.py:tenant_page": (
        1,
        "the operator console lists every account with its owner, plan and usage counters",
    ),
    "app/ops/catalogue.py:catalogue_rows": (
        1,
        "the plan catalogue counts each plan's subscribers and open periods across accounts",
    ),
    "app/audit.py:record_operator_action": (
        1,
        "an operator's console-wide action (catalogue, settings) is audited with no account",
    ),
    "app/billing_portal/closing.py:due_period_ids": (
        1,
        "the scheduler finds due periods of every account before it knows any account",
    ),
    "app/billing_portal/closing.py:_close_batch": (
        1,
        "the close job works a batch of due periods spanning accounts; each row names its account",
    ),
    "app/billing_portal/invoice_pdf.py:deliver_invoice": (
        1,
        "the invoice job gets an invoice id and looks up which account it belongs to",
    ),
    "app/calls/batch.py:record_lead_batch": (
        1,
        "a dialer API batch spans accounts; rows are found by seat reference, written per seat",
    ),
    "app/calls/batch.py:record_attempt_batch": (
        1,
        "a dialer API batch spans accounts; rows are found by seat reference, written per seat",
    ),
    "app/calls/importer.py:_seats_by_reference": (
        1,
        "a dialer's export names seats of every account by reference (unique across accounts); "
        "each row is then recorded inside its seat's own account",
    ),
    "app/ops/billing_runs.py:_open_past_end": (
        1,
        "the operators' billing runs page lists every account's periods past their end",
    ),
    "app/ops/billing_runs.py:billing_run_period": (
        1,
        "an operator re-runs the close of any account's period; the audit names its account",
    ),
    "app/reports/jobs.py:render_report": (
        1,
        "the report job gets a report id and looks up which account it belongs to",
    ),
    "app/reports/jobs.py:deliver_master_reports": (
        1,
        "the period close's batch spans accounts: the job finds each closed period's account, "
        "then makes its master report inside that account",
    ),
    "app/reports/jobs.py:sweep_waiting_reports": (
        1,
        "the sweep queues again every account's reports left waiting while Redis was down; "
        "it reads ids only, and each job opens its report's account",
    ),
}


def seat_ids_of(account: Account) -> set[int]:
    with unscoped():
        return set(db.session.scalars(sa.select(Seat.id).where(Seat.account_id == account.id)))


# The one statement object reused for both tenants: its cached compiled form must not
# remember the first tenant's id.
SEATS_BY_ID = sa.select(Seat).order_by(Seat.id)


def test_the_same_query_returns_each_tenants_own_rows(
    account: Account, other_account: Account
) -> None:
    a_ids, b_ids = seat_ids_of(account), seat_ids_of(other_account)
    assert a_ids
    assert b_ids
    assert not a_ids & b_ids

    for current, expected in [(account, a_ids), (other_account, b_ids), (account, a_ids)]:
        with tenant_context(current.id):
            assert {seat.id for seat in db.session.scalars(SEATS_BY_ID)} == expected
            count = db.session.scalar(sa.select(sa.func.count(Seat.id)))
            assert count == len(expected)


def test_unscoped_sees_every_tenant(account: Account, other_account: Account) -> None:
    with unscoped():
        seen = set(db.session.scalars(sa.select(Seat.id)))
    assert seat_ids_of(account) | seat_ids_of(other_account) <= seen


def test_unscoped_inside_a_tenant_context_ends_with_its_block(
    account: Account, other_account: Account
) -> None:
    with tenant_context(account.id):
        with unscoped():
            assert seat_ids_of(other_account) <= set(db.session.scalars(sa.select(Seat.id)))
        assert set(db.session.scalars(sa.select(Seat.id))) == seat_ids_of(account)


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(sa.select(Seat), id="entity"),
        pytest.param(sa.select(Seat.id), id="column"),
        pytest.param(sa.select(sa.func.count(Seat.id)), id="aggregate"),
        pytest.param(
            sa.select(Account.id).join(Seat, Seat.account_id == Account.id), id="joined only"
        ),
        pytest.param(
            sa.select(Account.id).where(Account.id.in_(sa.select(Membership.account_id))),
            id="subquery",
        ),
        pytest.param(
            sa.select(Account.id).where(sa.exists().where(Person.account_id == Account.id)),
            id="exists",
        ),
    ],
)
def test_a_tenant_select_with_no_tenant_raises(
    statement: sa.Select[tuple[object, ...]], account: Account
) -> None:
    with pytest.raises(TenantNotSet):
        db.session.execute(statement).all()


def test_a_select_of_shared_tables_needs_no_tenant(account: Account) -> None:
    assert db.session.scalar(sa.select(Account.slug).where(Account.id == account.id)) == (
        account.slug
    )


def test_a_bulk_update_for_tenant_a_cannot_touch_tenant_b(
    account: Account, other_account: Account
) -> None:
    b_ids = seat_ids_of(other_account)
    theirs = factories.first_seat(other_account)
    label_before = theirs.client_label
    with tenant_context(account.id):
        everything = db.session.execute(
            sa.update(Seat)
            .values(client_label="renamed")
            .execution_options(synchronize_session=False)
        )
        aimed_at_b = db.session.execute(
            sa.update(Seat).where(Seat.id.in_(b_ids)).values(client_label="taken over")
        )
    assert everything.rowcount == len(seat_ids_of(account))
    assert aimed_at_b.rowcount == 0
    with unscoped():
        labels = {
            row.id: row.client_label
            for row in db.session.execute(sa.select(Seat.id, Seat.client_label))
        }
    assert all(labels[seat_id] == "renamed" for seat_id in seat_ids_of(account))
    assert not {labels[seat_id] for seat_id in b_ids} & {"renamed", "taken over"}
    # The session's copy of B's seat was not "synchronised" with the refused update either.
    assert theirs.client_label == label_before


def _report(account: Account) -> Report:
    with tenant_context(account.id):
        report = Report(
            format=ReportFormat.CSV,
            date_from=datetime.now(UTC).date(),
            date_to=datetime.now(UTC).date(),
        )
        db.session.add(report)
        db.session.flush()
    return report


def test_a_bulk_delete_for_tenant_a_cannot_touch_tenant_b(
    account: Account, other_account: Account
) -> None:
    mine, theirs = _report(account).id, _report(other_account).id
    with tenant_context(account.id):
        aimed_at_b = db.session.execute(sa.delete(Report).where(Report.id == theirs))
        everything = db.session.execute(sa.delete(Report))
    assert aimed_at_b.rowcount == 0
    assert everything.rowcount == 1
    with unscoped():
        left = set(db.session.scalars(sa.select(Report.id).where(Report.id.in_([mine, theirs]))))
    assert left == {theirs}


def test_a_new_row_for_another_account_is_refused(account: Account, other_account: Account) -> None:
    savepoint = db.session.begin_nested()
    with tenant_context(account.id):
        db.session.add(
            Person(account_id=other_account.id, name="Planted", email="planted@ex.example")
        )
        with pytest.raises(CrossTenantWrite):
            db.session.flush()
    savepoint.rollback()
    with unscoped():
        assert db.session.scalar(sa.select(Person).where(Person.name == "Planted")) is None


def test_a_new_row_without_an_account_gets_the_current_one(account: Account) -> None:
    with tenant_context(account.id):
        person = Person(name="Filled in", email="filled@ex.example")
        db.session.add(person)
        db.session.flush()
        stored = db.session.scalar(sa.select(Person.account_id).where(Person.id == person.id))
    assert person.account_id == account.id
    assert stored == account.id


def test_a_new_tenant_row_with_no_tenant_set_is_refused(account: Account) -> None:
    savepoint = db.session.begin_nested()
    db.session.add(Person(account_id=account.id, name="Nobody's", email="n@ex.example"))
    with pytest.raises(TenantNotSet):
        db.session.flush()
    savepoint.rollback()


def test_get_or_404_refuses_another_tenants_id(account: Account, other_account: Account) -> None:
    mine, theirs = factories.first_seat(account), factories.first_seat(other_account)
    with tenant_context(account.id):
        assert get_or_404(Seat, mine.id) is mine
        # `theirs` is already in the session's identity map: the lookup must still go
        # through the filtered select, not hand back the cached object.
        with pytest.raises(NotFound):
            get_or_404(Seat, theirs.id)
        with pytest.raises(NotFound):
            get_or_404(Seat, max(seat_ids_of(other_account)) + 1000)


def test_a_lazy_loaded_relationship_honours_the_filter(
    account: Account, other_account: Account
) -> None:
    with tenant_context(account.id):
        invoice = db.session.scalars(
            sa.select(Invoice).where(Invoice.kind == InvoiceKind.SIGNUP)
        ).one()
        own_lines = {line.id for line in invoice.lines}
    assert own_lines
    # Corrupt data on purpose: a line of the other tenant hanging off this invoice.
    with unscoped():
        planted = InvoiceLine(
            account_id=other_account.id,
            invoice_id=invoice.id,
            position=99,
            kind="planted",
            description="Not yours",
            quantity=1,
            unit_cents=100,
            amount_cents=100,
        )
        db.session.add(planted)
        db.session.flush()
        linked = set(
            db.session.scalars(
                sa.select(InvoiceLine.id).where(InvoiceLine.invoice_id == invoice.id)
            )
        )
    assert linked == own_lines | {planted.id}  # only the filter keeps it out below

    with tenant_context(account.id):
        db.session.expire(invoice, ["lines"])
        assert {line.id for line in invoice.lines} == own_lines

    # Loaded with no filter at all, then lazy-loading inside the tenant: still filtered.
    invoice_id = invoice.id
    db.session.expunge(invoice)
    with unscoped():
        invoice = db.session.scalars(sa.select(Invoice).where(Invoice.id == invoice_id)).one()
    with tenant_context(account.id):
        assert {line.id for line in invoice.lines} == own_lines


# --- the approved list of unscoped() uses -------------------------------------------------


class _UnscopedFinder(ast.NodeVisitor):
    """Counts `unscoped()` calls (under any imported alias), any touch of the private
    `_unscoped` switch and any connection taken from an engine (`db.engine.connect()`, or a
    bind's engine `db.engines[key]` at all: statements on its connections pass no tenant
    filter), by enclosing function."""

    def __init__(self, module: str, private_allowed: bool) -> None:
        self.module = module
        self.private_allowed = private_allowed
        self.names = {"unscoped"}
        self.scope: list[str] = []
        self.found: Counter[str] = Counter()

    def _key(self, suffix: str = "") -> str:
        return f"{self.module}:{'.'.join(self.scope) or '<module>'}{suffix}"

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "unscoped":
                self.names.add(alias.asname or alias.name)
        self.generic_visit(node)

    def _visit_scope(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _visit_scope  # noqa: N815

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (isinstance(func, ast.Name) and func.id in self.names) or (
            isinstance(func, ast.Attribute) and func.attr == "unscoped"
        ):
            self.found[self._key()] += 1
        engine = func.value if isinstance(func, ast.Attribute) else None
        if (
            isinstance(func, ast.Attribute)
            and func.attr in {"connect", "begin", "raw_connection"}
            and isinstance(engine, ast.Attribute)
            and engine.attr == "engine"
        ):
            self.found[self._key(" (engine connection)")] += 1
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        # A bind's engine (db.engines[...]) serves nothing but connections of its own, so taking
        # it counts, connected at once or kept for later.
        if isinstance(node.value, ast.Attribute) and node.value.attr == "engines":
            self.found[self._key(" (engine connection)")] += 1
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "_unscoped" and not self.private_allowed:
            self.found[self._key(" (touches _unscoped directly)")] += 1

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr == "_unscoped" and not self.private_allowed:
            self.found[self._key(" (touches _unscoped directly)")] += 1
        self.generic_visit(node)


def unscoped_uses(source: str, module: str) -> Counter[str]:
    finder = _UnscopedFinder(module, private_allowed=module == "app/tenancy.py")
    finder.visit(ast.parse(source))
    return finder.found


def test_unscoped_uses_are_the_approved_list() -> None:
    found: Counter[str] = Counter()
    for path in sorted(APP_DIR.rglob("*.py")):
        module = path.relative_to(APP_DIR.parent).as_posix()
        found += unscoped_uses(path.read_text(encoding="utf-8"), module)
    approved = {key: count for key, (count, _why) in APPROVED_UNSCOPED.items()}
    new = {key: n for key, n in found.items() if approved.get(key) != n}
    gone = {key: n for key, n in approved.items() if found.get(key) != n}
    assert (new, gone) == ({}, {}), (
        "unscoped() uses differ from APPROVED_UNSCOPED in tests/integration/test_tenancy.py.\n"
        f"  found but not approved (or a different count): {new}\n"
        f"  approved but not found: {gone}\n"
        "Each place that sees every tenant needs a reviewed entry with its reason."
    )


def test_the_unscoped_scan_finds_aliases_attributes_and_the_private_switch() -> None:
    source = (
        "from app import tenancy\n"
        "from app.tenancy import unscoped as everyone, _unscoped\n"
        "def sneaky():\n"
        "    with everyone():\n"
        "        pass\n"
        "class Job:\n"
        "    def run(self):\n"
        "        with tenancy.unscoped():\n"
        "            pass\n"
        "        with tenancy.unscoped():\n"
        "            pass\n"
        "def sneakier():\n"
        "    _unscoped.set(True)\n"
        "def sneakiest():\n"
        "    with db.engine.connect() as connection:\n"
        "        pass\n"
        "    with db.engines['other'].connect() as connection:\n"
        "        pass\n"
        "    engine = db.engines['other']\n"
        "    with engine.connect() as connection:\n"
        "        pass\n"
    )
    assert unscoped_uses(source, "app/x.py") == {
        "app/x.py:sneaky": 1,
        "app/x.py:Job.run": 2,
        "app/x.py:sneakier (touches _unscoped directly)": 1,
        "app/x.py:sneakiest (engine connection)": 3,
    }
