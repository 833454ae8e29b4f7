"""Forms of the operator console's call-data and job pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileSize
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp

MAX_IMPORT_BYTES = 20 * 1024 * 1024


class ConfirmForm(FlaskForm):
    """A one-button action (its only field is the CSRF token)."""


class ApiKeyForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[
            DataRequired("Name the key, e.g. after the dialer that uses it."),
            Length(max=100),
        ],
        description="Who uses the key, e.g. “Five9 production”.",
        render_kw={"maxlength": 100, "autocomplete": "off"},
    )


class ImportForm(FlaskForm):
    """Upload a dialer export; or name one uploaded for a dry run, to import it for real."""

    file = FileField(
        "Call-report export (CSV)",
        validators=[FileSize(MAX_IMPORT_BYTES, message="The file is larger than 20 MB.")],
        description="UTF-8 CSV whose header row names the columns (any order).",
        render_kw={"accept": ".csv,text/csv"},
    )
    upload = HiddenField(validators=[Optional(), Regexp(r"^[0-9a-f]{64}$")])
    filename = HiddenField(validators=[Optional(), Length(max=200)])
