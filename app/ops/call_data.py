"""Call data in the operator console: the dialer's API keys, the CSV import, recent refusals."""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Response, abort, flash, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from app.api.auth import VERIFIED_FOR, create_api_key, revoke_api_key
from app.audit import record_operator_action
from app.calls.importer import COLUMN_NAMES, ImportResult, import_call_report
from app.calls.rejections import Refusal, recent_refusals, record_refusals
from app.extensions import db
from app.models import ApiKey, utcnow
from app.ops import bp
from app.ops.forms_calls import ApiKeyForm, ConfirmForm, ImportForm
from app.pdf import files_root
from app.web import add_form_error, render, render_invalid

# A file checked by a dry run waits here for the real import; older ones are removed.
_STASH_DIR = "ops-imports"
_STASH_SECONDS = 24 * 3600


def _page(**more: Any) -> dict[str, Any]:
    keys = db.session.scalars(sa.select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.id))
    return {
        "keys": list(keys),
        "key_form": ApiKeyForm(formdata=None),
        "import_form": ImportForm(formdata=None),
        "confirm_form": ConfirmForm(),
        "refusals": recent_refusals(),
        "columns": COLUMN_NAMES,
        "new_key": None,
        "result": None,
        **more,
    }


@bp.get("/call-data")
def call_data() -> Response:
    """API keys, the CSV import and the recent ingestion errors."""
    return render("ops/call_data.html", **_page())


@bp.post("/call-data/keys")
def call_data_keys_create() -> Response:
    """Create an API key; its secret is in this answer only (only its hash is stored)."""
    form = ApiKeyForm()
    if not form.validate_on_submit():
        return render_invalid("ops/call_data.html", **_page(key_form=form))
    new = create_api_key(form.name.data.strip())
    record_operator_action("api_key.created", target=new.key, details={"prefix": new.key.prefix})
    db.session.commit()
    return render("ops/call_data.html", **_page(new_key=new))


@bp.post("/call-data/keys/<int:key_id>/revoke")
def call_data_keys_revoke(key_id: int) -> BaseResponse:
    """Revoke an API key: the dialer's requests with it are refused within `VERIFIED_FOR`
    seconds (the time another web process may still trust the key it verified)."""
    key = db.session.get(ApiKey, key_id)
    if key is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if key.revoked_at is not None:
        flash(f"The key “{key.name}” was revoked already.", "info")
    else:
        revoke_api_key(key.prefix, utcnow())
        record_operator_action("api_key.revoked", target=key, details={"prefix": key.prefix})
        db.session.commit()
        flash(
            f"Revoked the key “{key.name}” ({key.prefix}): requests with it are refused "
            f"within {VERIFIED_FOR:.0f} seconds.",
            "success",
        )
    return redirect(url_for("ops.call_data"), 303)


@bp.post("/call-data/import")
def call_data_import() -> Response:
    """Dry-run or import a dialer export: an uploaded file, or the one a dry run checked."""
    form = ImportForm()
    dry_run = request.form.get("action") != "import"
    if not form.validate_on_submit():
        return render_invalid("ops/call_data.html", **_page(import_form=form))
    loaded = _uploaded_text(form)
    if loaded is None:
        return render_invalid("ops/call_data.html", **_page(import_form=form))
    name, content, text = loaded
    digest = hashlib.sha256(content).hexdigest()
    result = import_call_report(io.StringIO(text, newline=""), dry_run=dry_run)
    if result.file_errors:
        db.session.rollback()
        for error in result.file_errors:
            add_form_error(form, error, "file")
        return render_invalid("ops/call_data.html", **_page(import_form=form))
    if dry_run:
        db.session.rollback()
        _stash(digest, content)
    else:
        _record_import(name, result)
        db.session.commit()
        _stash_path(digest).unlink(missing_ok=True)
    return render(
        "ops/call_data.html",
        **_page(result=result, file_name=name, upload=digest),
    )


def _uploaded_text(form: ImportForm) -> tuple[str, bytes, str] | None:
    """The file's name, bytes and text; None, with the error on the form, when it has none."""
    upload = form.file.data
    if upload is not None and upload.filename:
        content = upload.read()
        name = Path(upload.filename).name[:200]
    elif form.upload.data:
        path = _stash_path(form.upload.data)
        if not path.exists():
            add_form_error(form, "That dry run is too old: choose the file again.", "file")
            return None
        content = path.read_bytes()
        name = form.filename.data or "upload.csv"
    else:
        add_form_error(form, "Choose the CSV file to import.", "file")
        return None
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        add_form_error(form, "The file is not UTF-8 text: export the report as UTF-8 CSV.", "file")
        return None
    return name, content, text


def _record_import(name: str, result: ImportResult) -> None:
    record_refusals(
        "import",
        name,
        (Refusal(bad.line, "", "; ".join(bad.reasons)) for bad in result.bad_rows),
    )
    record_operator_action(
        "calls.imported",
        details={
            "file": name,
            "rows": result.rows_read,
            "bad_rows": len(result.bad_rows),
            "leads_created": result.leads_created,
            "attempts_created": result.attempts_created,
            "duplicates": result.duplicates,
        },
    )


def _stash_path(digest: str) -> Path:
    return files_root() / _STASH_DIR / f"{digest}.csv"


def _stash(digest: str, content: bytes) -> None:
    """Keep a dry-run file for its real import, and drop stashed files older than a day."""
    folder = files_root() / _STASH_DIR
    folder.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - _STASH_SECONDS
    for old in folder.glob("*.csv"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
    _stash_path(digest).write_bytes(content)
