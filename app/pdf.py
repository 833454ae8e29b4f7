"""PDF rendering with WeasyPrint, allowed to read nothing but the app's own static files,
and file storage that never leaves a half-written file behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from flask import current_app
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse


class StaticFilesOnly(URLFetcher):
    """Refuses every URL but files under the static folder: user data in a document
    (a lead's name, a note) can never make the renderer fetch anything."""

    def __init__(self, static_root: Path) -> None:
        super().__init__(allowed_protocols={"file"}, allow_redirects=False)
        self.static_root = static_root.resolve()

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        parts = urlsplit(url)
        path = Path(url2pathname(parts.path)).resolve()
        if parts.scheme != "file" or parts.netloc or not path.is_relative_to(self.static_root):
            raise ValueError(f"refused to fetch {url!r}: only the app's static files are allowed")
        return super().fetch(url, headers)


def render_pdf(html: str) -> bytes:
    static_root = Path(current_app.static_folder or "static")
    document = HTML(
        string=html,
        base_url=static_root.resolve().as_uri() + "/",
        url_fetcher=StaticFilesOnly(static_root),
    )
    pdf: bytes = document.write_pdf()
    return pdf


def files_root() -> Path:
    """Where generated files live (FILES_DIR; by default instance/files)."""
    return Path(current_app.config["FILES_DIR"])


def store_file(relative: str, content: bytes) -> Path:
    """Write `content` under instance/files atomically (temp file + rename)."""
    target = files_root() / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return target
