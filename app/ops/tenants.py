"""Tenants in the operator console: the searchable list, and each tenant's pages as its
client sees them (dashboard, seats, reports, invoices), read-only, with its audit log.

A tenant's pages run inside its tenant context and reuse the client's own queries and
partials. Those partials link to client pages; `mirror_url_for` sends each link to the
console page that mirrors it instead, so an operator never lands on a client URL.
Opening a tenant page is audited ("operator viewed"); htmx refreshes of a page are not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, abort, request, url_for

from app.accounts.queries import AuditFilters, audit_page, member_rows
from app.audit import record_operator_action
from app.billing_portal.queries import billing_state, invoices
from app.extensions import db
from app.models import Account, Invoice, Seat
from app.ops import bp
from app.ops.tenant_queries import tenant_page, tenant_row
from app.reports.queries import report_list
from app.seats.queries import SeatFilters, SeatSort, client_labels, seat_page, state_counts
from app.tenancy import get_or_404, tenant_context
from app.usage.queries import SEAT_SORTS, UnknownPeriod, open_period, shown_period
from app.usage.views import dashboard_context
from app.web import is_htmx_request, render

# Client endpoint -> the console endpoint that shows the same page read-only.
MIRRORS: dict[str, str] = {
    "usage.dashboard": "ops.tenant_dashboard",
    "usage.seat_dashboard": "ops.tenant_seat_usage",
    "seats.index": "ops.tenant_seats",
    "seats.show": "ops.tenant_seat_usage",
    "reports.index": "ops.tenant_reports",
    "billing_portal.index": "ops.tenant_invoices",
    "billing_portal.invoice": "ops.tenant_invoice",
    "accounts.audit": "ops.tenant_audit",
}

# The tenant's tabs in the console: (label, endpoint).
TENANT_TABS: tuple[tuple[str, str], ...] = (
    ("Overview", "ops.tenant"),
    ("Dashboard", "ops.tenant_dashboard"),
    ("Seats", "ops.tenant_seats"),
    ("Reports", "ops.tenant_reports"),
    ("Invoices", "ops.tenant_invoices"),
    ("Audit log", "ops.tenant_audit"),
)


def mirror_url_for(account: Account) -> Callable[..., str]:
    """`url_for` for the client's partials inside the console (see the module docstring)."""

    def build(endpoint: str, **values: Any) -> str:
        if endpoint in MIRRORS:
            return url_for(MIRRORS[endpoint], account_id=account.id, **values)
        return url_for(endpoint, **values)

    return build


@bp.get("/")
def index() -> Response:
    """Every tenant, searchable by name or owner email (live, htmx)."""
    q = request.args.get("q", "").strip()[:100]
    listing = tenant_page(q, request.args.get("page", 1, type=int) or 1)
    return render(
        "ops/index.html",
        partial="ops/_tenant_results.html",
        listing=listing,
        q=q,
        page_url=lambda page: url_for("ops.index", q=q or None, page=page),
    )


def _account(account_id: int) -> Account:
    account = db.session.get(Account, account_id)
    if account is None:
        abort(404)
    return account


@contextmanager
def _viewing(account: Account, page: str) -> Iterator[dict[str, Any]]:
    """Inside the tenant: audit the visit (not its htmx refreshes) and give the context
    every tenant page shares."""
    with tenant_context(account.id):
        if not is_htmx_request():
            record_operator_action(
                "operator.viewed", account_id=account.id, target=account, details={"page": page}
            )
            db.session.commit()
        yield {
            "account": account,
            "tenant": tenant_row(account),
            "tabs": [
                (label, url_for(endpoint, account_id=account.id), endpoint == request.endpoint)
                for label, endpoint in TENANT_TABS
            ],
            "url_for": mirror_url_for(account),
            "zone": ZoneInfo(account.timezone),
        }


@bp.get("/tenants/<int:account_id>/")
def tenant(account_id: int) -> Response:
    """A tenant at a glance: its plan, people and latest audit entries."""
    account = _account(account_id)
    with _viewing(account, "overview") as shared:
        log = audit_page(AuditFilters(), shared["zone"], per_page=10)
        return render(
            "ops/tenant.html",
            state=billing_state(account),
            members=member_rows(),
            log=log,
            filters=AuditFilters(),
            page_url=lambda page: url_for("ops.tenant_audit", account_id=account.id, page=page),
            **shared,
        )


@bp.get("/tenants/<int:account_id>/dashboard")
def tenant_dashboard(account_id: int) -> Response:
    """The client's usage dashboard, as they see it (it refreshes like theirs)."""
    return _dashboard(_account(account_id), None)


@bp.get("/tenants/<int:account_id>/seats/<int:seat_id>/usage")
def tenant_seat_usage(account_id: int, seat_id: int) -> Response:
    """One seat's usage, as the client sees it."""
    return _dashboard(_account(account_id), seat_id)


def _dashboard(account: Account, seat_id: int | None) -> Response:
    page_name = "dashboard" if seat_id is None else "seat usage"
    with _viewing(account, page_name) as shared:
        if seat_id is not None:
            get_or_404(Seat, seat_id)
        try:
            shown = shown_period(request.args.get("period", ""), seat_id)
        except UnknownPeriod:
            abort(404)
        context: dict[str, Any] = {"period": None}
        if shown is not None:
            period, _ = shown
            sort = request.args.get("sort", "called")
            context = dashboard_context(
                account,
                period,
                seat_id,
                sort if sort in SEAT_SORTS else "called",
                request.args.get("dir", "desc") != "asc",
                request.args.get("page", 1, type=int) or 1,
            )
            context["billing_url"] = url_for("ops.tenant_invoices", account_id=account.id)
        return render(
            "ops/tenant_dashboard.html", partial="usage/_live.html", **{**shared, **context}
        )


@bp.get("/tenants/<int:account_id>/seats")
def tenant_seats(account_id: int) -> Response:
    """The client's seat list (search, filters, pages), as they see it."""
    account = _account(account_id)
    with _viewing(account, "seats") as shared:
        filters = SeatFilters.from_args(request.args)
        period = open_period()
        return render(
            "ops/tenant_seats.html",
            partial="seats/_results.html",
            listing=seat_page(period.id if period else None, filters),
            filters=filters,
            sorts=SeatSort,
            period=period,
            sees_all=True,
            clients=client_labels(),
            counts=state_counts(),
            page_url=lambda page: url_for(
                "ops.tenant_seats", account_id=account.id, **filters.query_args(page=page)
            ),
            **shared,
        )


@bp.get("/tenants/<int:account_id>/reports")
def tenant_reports(account_id: int) -> Response:
    """The client's call reports and their state."""
    account = _account(account_id)
    with _viewing(account, "reports") as shared:
        return render(
            "ops/tenant_reports.html",
            reports=report_list(None, request.args.get("page", 1, type=int) or 1),
            page_url=lambda page: url_for("ops.tenant_reports", account_id=account.id, page=page),
            **shared,
        )


@bp.get("/tenants/<int:account_id>/invoices")
def tenant_invoices(account_id: int) -> Response:
    """The client's billing page: plan, the next invoice so far, and issued invoices."""
    account = _account(account_id)
    with _viewing(account, "invoices") as shared:
        return render(
            "ops/tenant_invoices.html", state=billing_state(account), invoices=invoices(), **shared
        )


@bp.get("/tenants/<int:account_id>/invoices/<int:invoice_id>")
def tenant_invoice(account_id: int, invoice_id: int) -> Response:
    """One issued invoice with its lines."""
    account = _account(account_id)
    with _viewing(account, "invoice") as shared:
        return render("ops/tenant_invoice.html", invoice=get_or_404(Invoice, invoice_id), **shared)


@bp.get("/tenants/<int:account_id>/audit")
def tenant_audit(account_id: int) -> Response:
    """The tenant's audit log, operators' visits included."""
    account = _account(account_id)
    with _viewing(account, "audit log") as shared:
        filters = AuditFilters.from_args(request.args)
        return render(
            "ops/tenant_audit.html",
            partial="accounts/_audit_results.html",
            log=audit_page(filters, shared["zone"]),
            filters=filters,
            page_url=lambda page: url_for(
                "ops.tenant_audit", account_id=account.id, **filters.query_args(page=page)
            ),
            **shared,
        )
