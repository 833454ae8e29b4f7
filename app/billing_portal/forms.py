from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import IntegerField, TextAreaField
from wtforms.validators import NumberRange, Optional


class ConfirmForm(FlaskForm):
    """A one-step confirmation (its only field is the CSRF token)."""


class CancelForm(FlaskForm):
    reason = TextAreaField(
        "Why are you leaving?",
        validators=[Optional()],
        description="A sentence helps the ISA team improve; it is not required.",
        render_kw={"rows": 2, "maxlength": 1000},
    )


class LeadsForm(FlaskForm):
    class Meta:
        csrf = False  # a GET form that changes nothing

    leads = IntegerField(
        "Leads a month",
        validators=[Optional(), NumberRange(min=0, max=100_000, message="Between 0 and 100,000.")],
    )
