"""Call reports: ask for one, watch it render, download it.

Anyone with VIEW_REPORTS works with every report of the account, except a seat member: they see,
ask for and download their own seat's reports only. Another seat's report is a 404, as another
account's is. Files are served only here, as attachments that no cache keeps.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, abort, flash, g, redirect, request, send_file, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from app.calls.queries import format_moment
from app.extensions import db
from app.models import Report, ReportStatus, utcnow
from app.pdf import files_root
from app.permissions import Permission
from app.reports import bp
from app.reports.forms import ReportForm
from app.reports.operations import (
    ReportNotRetryable,
    ReportRequest,
    ReportRequestError,
    can_retry,
    request_report,
    retry_report,
)
from app.reports.queries import (
    describe_reports,
    download_name,
    member_report,
    period_for_key,
    period_options,
    report_list,
)
from app.seats.queries import seat_choices
from app.web import (
    add_form_error,
    can,
    current_account,
    current_membership,
    is_htmx_request,
    render,
    render_invalid,
    requires,
)

MIME_TYPES = {"pdf": "application/pdf", "csv": "text/csv"}


def _own_seat() -> int | None:
    """The seat a seat member is limited to; None for members who see every seat."""
    if can(Permission.VIEW_ALL_SEATS):
        return None
    seat_id = current_membership().seat_id
    if seat_id is None:  # a seat member without a seat sees nothing rather than everything
        abort(404)
    return seat_id


def _report_or_404(report_id: int) -> Report:
    report = member_report(report_id, _own_seat())
    if report is None:
        abort(404)
    return report


def _zone() -> ZoneInfo:
    return ZoneInfo(current_account().timezone)


def _form() -> ReportForm:
    own = _own_seat()
    seats = [(seat_id, label) for seat_id, label in seat_choices() if own in (None, seat_id)]
    form = ReportForm()
    form.fill_choices(seats, period_options(_zone()), master_allowed=own is None)
    return form


def format_size(size: int | None) -> str:
    """A file size for people: "812 bytes", "48 KB", "1.4 MB"."""
    if size is None:
        return "—"
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB"


@bp.context_processor
def _report_helpers() -> dict[str, Any]:
    """Formatting for the report rows; nothing on an error page of a request that never
    reached its account (a 404 for a stranger)."""
    if g.get("account") is None:
        return {}
    zone = _zone()
    now = utcnow()
    return {
        "format_size": format_size,
        "local_time": lambda moment: format_moment(
            moment.astimezone(zone), now.astimezone(zone).date()
        ),
        "can_retry": lambda report: can_retry(report, now),
    }


def _index(form: ReportForm, invalid: bool = False) -> Response:
    listing = report_list(_own_seat(), request.args.get("page", 1, type=int) or 1)
    answer = render_invalid if invalid else render
    return answer(
        "reports/index.html",
        form=form,
        reports=listing,
        page_url=lambda number: url_for("reports.index", page=number),
    )


@bp.get("/")
@requires(Permission.VIEW_REPORTS)
def index() -> Response:
    """The request form and the account's reports, newest first."""
    return _index(_form())


@bp.post("/")
@requires(Permission.VIEW_REPORTS)
def create() -> Response | BaseResponse:
    """Ask for a report: it is queued for the worker and shows in the list at once."""
    form = _form()
    if not form.validate_on_submit():
        return _index(form, invalid=True)
    period = None
    if form.period_key is not None:
        period = period_for_key(form.period_key)
        if period is None:
            abort(404)
    try:
        report = request_report(
            ReportRequest(
                seat_id=form.seat_id,
                period_id=period.id if period else None,
                date_from=form.date_from.data,
                date_to=form.date_to.data,
                format=form.report_format,
            ),
            current_user._get_current_object(),
        )
    except ReportRequestError as refusal:
        db.session.rollback()
        add_form_error(form, str(refusal), refusal.field)
        return _index(form, invalid=True)
    db.session.commit()
    flash(
        "Your report is being prepared. It appears below, ready to download in a moment.", "success"
    )
    return redirect(url_for("reports.index", _anchor=f"report-{report.id}"), 303)


@bp.get("/<int:report_id>")
@requires(Permission.VIEW_REPORTS)
def show(report_id: int) -> Response:
    """One report; its row alone for htmx (the list polls it while it renders)."""
    [item] = describe_reports([_report_or_404(report_id)])
    return render("reports/show.html", partial="reports/_report.html", item=item)


@bp.post("/<int:report_id>/retry")
@requires(Permission.VIEW_REPORTS)
def retry(report_id: int) -> Response | BaseResponse:
    """Render a failed (or stalled) report again."""
    report = _report_or_404(report_id)
    try:
        retry_report(report)
    except ReportNotRetryable:
        db.session.rollback()
        flash("That report is not waiting for a retry.", "info")
    else:
        db.session.commit()
    if is_htmx_request():
        [item] = describe_reports([report])
        return render("reports/show.html", partial="reports/_report.html", item=item)
    return redirect(url_for("reports.index", _anchor=f"report-{report.id}"), 303)


@bp.get("/<int:report_id>/download")
@requires(Permission.VIEW_REPORTS)
def download(report_id: int) -> Response:
    """The report's file, as an attachment no cache keeps."""
    report = _report_or_404(report_id)
    if report.status is not ReportStatus.READY or not report.file_path:
        abort(404)
    root = files_root().resolve()
    path = (root / report.file_path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        abort(404)
    response = send_file(
        path,
        mimetype=MIME_TYPES[report.format.value],
        as_attachment=True,
        download_name=download_name(report, current_account().slug),
        conditional=False,
        etag=False,
    )
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
