"""Rendering a report's PDF: its pages in chunks, in a small pool of processes, merged.

The document is paginated in advance (`app.reports.layout`), so each chunk is rendered once,
knowing the number of its first page and the total: its footer counts from there
(`@page :first { counter-reset: page N }`). The pool's processes are forked from the job's
process once the report's content is read, and live until the report is done: each inherits
the content, the page plan and the app (for its templates) from the fork, builds the HTML of
the chunks it is given by index, typesets their rows (`app.reports.typeset`) and renders them;
only page numbers go in and PDF bytes come out, and no pool process touches the database.
A chunk that comes back with another page count than planned (it should not happen: every
block has a fixed height) is caught, and the chunks are rendered again with the page numbers
they really have, so the footers are never wrong.
"""

from __future__ import annotations

import io
import logging
import math
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app, has_app_context, render_template
from markupsafe import Markup
from pypdf import PdfReader, PdfWriter
from weasyprint import HTML

from app.calls.queries import format_speed
from app.pdf import StaticFilesOnly
from app.reports import layout
from app.reports.document import (
    DETAIL_COLUMNS,
    SUMMARY_COLUMNS,
    document_pages,
    generated_label,
)
from app.reports.queries import ReportContent
from app.reports.typeset import Typesetter

log = logging.getLogger(__name__)

# Below this many pages the pool costs more than it saves.
POOL_THRESHOLD_PAGES = 12
MIN_CHUNK_PAGES = 4
MAX_CHUNK_PAGES = 24
# The text of table rows: templates/pdf/report.html sets the same on `.rows`.
ROW_FONT_CSS = "font-family: 'DejaVu Sans', sans-serif; font-size: 7.5pt"
ROW_BOLD_CSS = "font-weight: 700"
CELL_PADDING_MM = 1.4

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RenderedPdf:
    """The merged PDF and how it was made."""

    data: bytes
    pages: int
    chunks: int
    passes: int
    seconds: float


@dataclass(frozen=True)
class _ChunkJob:
    """What every chunk of one report needs; pool processes inherit it when forked."""

    app: Flask
    content: ReportContent
    chunks: tuple[layout.Chunk, ...]
    static_root: str


_job: _ChunkJob | None = None
_typesetter: Typesetter | None = None


def chunk_size(total_pages: int, processes: int) -> int:
    """Pages per chunk: about three chunks per process, so one slow chunk does not leave a
    process idle at the end, within bounds that keep each chunk's fixed cost small."""
    wanted = math.ceil(total_pages / max(1, processes * 3))
    return max(MIN_CHUNK_PAGES, min(MAX_CHUNK_PAGES, wanted))


def css_string(text: str) -> Markup:
    """`text` as a quoted CSS string: every character but letters, digits and spaces is a hex
    escape, so nothing in it can end the string or the style element it sits in."""
    escaped = "".join(
        char if (char.isascii() and char.isalnum()) or char == " " else f"\\{ord(char):x} "
        for char in text
    )
    return Markup(f'"{escaped}"')  # noqa: S704 - every character but [a-z0-9 ] is escaped


def typesetter() -> Typesetter:
    """This process's typesetter (measuring needs WeasyPrint's fonts: made once)."""
    global _typesetter
    if _typesetter is None:
        _typesetter = Typesetter(ROW_FONT_CSS, ROW_BOLD_CSS, CELL_PADDING_MM)
    return _typesetter


def chunk_html(
    content: ReportContent, pages: Sequence[layout.Page], first_number: int, total: int
) -> str:
    """The HTML of one chunk of the document (needs the app, for its templates)."""
    setter = typesetter()
    return render_template(
        "pdf/report.html",
        content=content,
        pages=pages,
        first_number=first_number,
        total_pages=total,
        geometry=layout,
        detail_columns=DETAIL_COLUMNS,
        summary_columns=SUMMARY_COLUMNS,
        generated=generated_label(content.generated_at),
        css_string=css_string,
        format_speed=format_speed,
        typeset=lambda block: setter.lines(block.cells, block.columns, block.total),
        row_font_css=Markup(ROW_FONT_CSS),  # noqa: S704 - a constant of this module
    )


def render_chunk(index: int, first_number: int, total: int) -> tuple[bytes, int]:
    """Chunk `index` of the current report to PDF bytes, and its page count. Runs in a pool
    process (or in the job's own for a small report)."""
    job = _job
    if job is None:
        raise RuntimeError("no report is being rendered in this process")
    # In the job's own process the app context is the job's (a second one would close the
    # job's database session when it ends); a forked pool process inherited it too.
    context = nullcontext() if has_app_context() else job.app.app_context()
    with context:
        html = chunk_html(job.content, job.chunks[index].pages, first_number, total)
    root = Path(job.static_root)
    document = HTML(
        string=html, base_url=root.as_uri() + "/", url_fetcher=StaticFilesOnly(root)
    ).render()
    return document.write_pdf(), len(document.pages)


def render_report_pdf(
    content: ReportContent, processes: int = 2, progress: Progress | None = None
) -> RenderedPdf:
    """The report's PDF. `progress(pages_done, pages_total)` is called as chunks finish."""
    global _job
    started = time.perf_counter()
    pages = document_pages(content)
    total = len(pages)
    use_pool = processes > 1 and total >= POOL_THRESHOLD_PAGES
    chunks = layout.chunked(pages, chunk_size(total, processes) if use_pool else total)
    report = progress or (lambda _done, _total: None)
    report(0, total)
    _job = _ChunkJob(
        app=current_app._get_current_object(),  # type: ignore[attr-defined]
        content=content,
        chunks=tuple(chunks),
        static_root=str(Path(current_app.static_folder or "static").resolve()),
    )
    # Made before the fork, so every pool process starts with them: the fonts measured and
    # WeasyPrint warm, the template compiled.
    typesetter()
    current_app.jinja_env.get_template("pdf/report.html")
    pool = _pool(processes) if use_pool else None
    try:
        numbers = [chunk.first_number for chunk in chunks]
        results = _render_all(chunks, numbers, total, pool, report)
        passes = 1
        counts = [count for _data, count in results]
        planned = [len(chunk.pages) for chunk in chunks]
        if counts != planned:
            # A layout assumption failed: number the pages as they came out, and render again.
            log.warning("report chunks had %s pages, planned %s", counts, planned)
            total = sum(counts)
            numbers = [1 + sum(counts[:index]) for index in range(len(chunks))]
            report(0, total)
            results = _render_all(chunks, numbers, total, pool, report)
            passes = 2
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        _job = None
    title = f"{content.title} · {content.account_name}"
    data = merge_pdfs([data for data, _count in results], title)
    return RenderedPdf(data, total, len(chunks), passes, time.perf_counter() - started)


def _pool(processes: int) -> ProcessPoolExecutor:
    # Forked, after `_job` is set: the children start at once, with WeasyPrint imported and
    # the report's content in memory.
    context = multiprocessing.get_context("fork")
    return ProcessPoolExecutor(max_workers=processes, mp_context=context)


def _render_all(
    chunks: Sequence[layout.Chunk],
    numbers: Sequence[int],
    total: int,
    pool: ProcessPoolExecutor | None,
    progress: Progress,
) -> list[tuple[bytes, int]]:
    results: list[tuple[bytes, int] | None] = [None] * len(chunks)
    done = 0
    if pool is None:
        for index in range(len(chunks)):
            results[index] = render_chunk(index, numbers[index], total)
            done += len(chunks[index].pages)
            progress(done, total)
    else:
        futures: dict[Future[tuple[bytes, int]], int] = {
            pool.submit(render_chunk, index, numbers[index], total): index
            for index in range(len(chunks))
        }
        for future in as_completed(futures):
            index = futures[future]
            results[index] = future.result()
            done += len(chunks[index].pages)
            progress(done, total)
    return [result for result in results if result is not None]


def merge_pdfs(parts: Sequence[bytes], title: str) -> bytes:
    """Concatenate PDFs (their bookmarks too) into one."""
    writer = PdfWriter()
    for part in parts:
        writer.append(PdfReader(io.BytesIO(part)), import_outline=True)
    writer.add_metadata({"/Title": title, "/Creator": "Seatwise", "/Producer": "Seatwise"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
