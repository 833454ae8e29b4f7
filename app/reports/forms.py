"""The form that asks for a call report: which seats, which period or dates, which format."""

from __future__ import annotations

from collections.abc import Sequence

from flask_wtf import FlaskForm
from wtforms import DateField, RadioField, SelectChoice, SelectField
from wtforms.validators import InputRequired, Optional

from app.calls.queries import PeriodOption
from app.models import ReportFormat

MASTER = "master"
DATES = "dates"


class ReportForm(FlaskForm):
    """`scope` is "master" or a seat id; `period` a month key ("M2") or "dates"."""

    scope = SelectField("Report", validators=[InputRequired()])
    period = SelectField("Covering", validators=[InputRequired()])
    date_from = DateField("First day", validators=[Optional()])
    date_to = DateField("Last day", validators=[Optional()])
    format = RadioField(
        "Format",
        choices=[
            SelectChoice(ReportFormat.PDF.value, "PDF, to read and print"),
            SelectChoice(ReportFormat.CSV.value, "CSV, for a spreadsheet"),
        ],
        default=ReportFormat.PDF.value,
        validators=[InputRequired()],
    )

    def fill_choices(
        self,
        seats: Sequence[tuple[int, str]],
        periods: Sequence[PeriodOption],
        master_allowed: bool,
    ) -> None:
        """The seats and periods this member may choose from (a seat member: their own seat,
        no master report)."""
        master = [SelectChoice(MASTER, "Master report: all seats")] if master_allowed else []
        self.scope.choices = master + [
            SelectChoice(str(seat_id), label) for seat_id, label in seats
        ]
        self.period.choices = [SelectChoice(option.key, option.label) for option in periods] + [
            SelectChoice(DATES, "Dates I choose")
        ]
        if self.is_submitted():
            return  # a value not among the choices is the validator's to refuse
        # Unsent, a select holds "None" (its coerced default): start on the first choice.
        scopes = [choice.value for choice in self.scope.choices]
        periods_ = [choice.value for choice in self.period.choices]
        if self.scope.data not in scopes:
            self.scope.data = scopes[0] if scopes else None
        if self.period.data not in periods_:
            self.period.data = periods_[0]

    @property
    def seat_id(self) -> int | None:
        return None if self.scope.data == MASTER else int(self.scope.data)

    @property
    def period_key(self) -> str | None:
        return None if self.period.data == DATES else self.period.data

    @property
    def report_format(self) -> ReportFormat:
        return ReportFormat(self.format.data)
