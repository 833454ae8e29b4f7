"""The report's pages, decided in Python before WeasyPrint runs (plain values, no Flask).

Every table row of the PDF has one fixed height and never wraps (a long name ends in an
ellipsis), and every block has a fixed height, so how much fits on a page is known in advance.
The whole document is paginated here: each page knows its number and the total, so the detail
can be rendered as independent chunks in parallel processes and their "page X of Y" footers are
right without a first pass to count pages.

A block of table rows is one pre-formatted text block, a line per row, its cells placed at their
columns by `app.reports.typeset`: WeasyPrint then lays out one line box per row instead of a
table's boxes per cell, which is what makes a 10,000-lead report quick. The page looks like a
table, and its text reads back row by row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# Geometry, in millimetres, shared with templates/pdf/report.html (it reads these values).
PAGE_WIDTH_MM = 215.9  # US Letter
PAGE_HEIGHT_MM = 279.4
MARGIN_TOP_MM = 17.0
MARGIN_BOTTOM_MM = 16.0
MARGIN_SIDE_MM = 14.0
CONTENT_WIDTH_MM = PAGE_WIDTH_MM - 2 * MARGIN_SIDE_MM
LINE_MM = 4.8
# The content area is 246.4 mm: 51 lines; one is kept spare against rounding.
PAGE_LINES = 50
# A group heading is not left at the foot of a page without at least this many of its rows.
MIN_ROWS_AFTER_HEADING = 3

# Anything that would start a new line, or move the pen like one, inside a cell.
_LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


@dataclass(frozen=True)
class Column:
    """One column of a table: its header, width and alignment; `x_mm` is set by `columns`."""

    label: str
    width_mm: float
    numeric: bool = False
    x_mm: float = 0.0


def columns(*specs: tuple[str, float] | tuple[str, float, bool]) -> tuple[Column, ...]:
    """Columns laid left to right; the widths are scaled to fill the content width exactly."""
    total = sum(spec[1] for spec in specs)
    scale = CONTENT_WIDTH_MM / total
    placed, x = [], 0.0
    for spec in specs:
        width = round(spec[1] * scale, 2)
        numeric = bool(spec[2]) if len(spec) > 2 else False
        placed.append(Column(spec[0], width, numeric, round(x, 2)))
        x += width
    return tuple(placed)


def one_line(text: str) -> str:
    """`text` as one line: control characters and line separators become spaces, so a value
    from the dialer can never add a line to a fixed-height row."""
    return _LINE_BREAKING.sub(" ", text)


@dataclass(frozen=True)
class Heading:
    """A section title (level 1, two lines) or a group heading (level 2: a seat; two lines,
    the second for `meta`; level 3: a client band inside a table, one line)."""

    title: str
    meta: str = ""
    level: int = 1
    continued: bool = False
    kind: str = field(default="heading", init=False)

    @property
    def lines(self) -> int:
        return 1 if self.level == 3 else 2

    def again(self) -> Heading:
        """The heading repeated at the top of the next page."""
        return Heading(self.title, self.meta, self.level, continued=True)


@dataclass(frozen=True)
class HeaderRow:
    """The column headers, repeated on every page a table runs over."""

    columns: tuple[Column, ...]
    kind: str = field(default="header", init=False)

    @property
    def lines(self) -> int:
        return 1


@dataclass(frozen=True)
class Rows:
    """Consecutive table rows, one line each. `total` styles them as a totals row."""

    columns: tuple[Column, ...]
    cells: tuple[tuple[str, ...], ...]
    total: bool = False
    kind: str = field(default="rows", init=False)

    @property
    def lines(self) -> int:
        return len(self.cells)


@dataclass(frozen=True)
class Note:
    """A line of muted text inside a table's flow (for example "No leads")."""

    text: str
    kind: str = field(default="note", init=False)

    @property
    def lines(self) -> int:
        return 1


@dataclass(frozen=True)
class Gap:
    """An empty line between two groups."""

    kind: str = field(default="gap", init=False)

    @property
    def lines(self) -> int:
        return 1


Block = Heading | HeaderRow | Rows | Note | Gap


@dataclass
class Page:
    """One page of the document: the cover, or blocks of a table section."""

    number: int
    kind: str  # "cover" or "table"
    blocks: list[Block] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return sum(block.lines for block in self.blocks)


@dataclass(frozen=True)
class Group:
    """Rows under one heading (a seat, or a client in the summary); `empty` is shown when
    there are no rows."""

    heading: Heading | None
    rows: Sequence[tuple[str, ...]]
    empty: str = ""


class _Flow:
    """Fills pages with blocks, `PAGE_LINES` lines each."""

    def __init__(self, first_number: int) -> None:
        self.pages: list[Page] = []
        self.next_number = first_number

    @property
    def page(self) -> Page:
        return self.pages[-1]

    @property
    def lines_left(self) -> int:
        return PAGE_LINES - self.page.lines

    @property
    def at_top(self) -> bool:
        return not self.page.blocks

    def new_page(self) -> None:
        self.pages.append(Page(self.next_number, "table"))
        self.next_number += 1

    def place(self, block: Block) -> None:
        if block.lines > self.lines_left:
            raise ValueError(f"a {block.kind} block of {block.lines} lines does not fit")
        self.page.blocks.append(block)


def paginate_table(
    title: Heading,
    table_columns: tuple[Column, ...],
    groups: Iterable[Group],
    first_number: int,
    header_per_group: bool,
    totals: tuple[str, ...] | None = None,
) -> list[Page]:
    """A table section starting on a new page, numbered from `first_number`.

    With `header_per_group` (the lead detail) each group heading is followed by the column
    headers; otherwise (the seat summary) every page starts with them and group headings are
    one-line bands. A group that runs over a page is continued under its heading again.
    """
    flow = _Flow(first_number)
    flow.new_page()
    flow.place(title)
    header = HeaderRow(table_columns)
    if not header_per_group:
        flow.place(header)

    def start_page(heading: Heading | None) -> None:
        flow.new_page()
        if not header_per_group:
            flow.place(header)
        if heading is not None:
            flow.place(heading.again())
            if header_per_group:
                flow.place(header)

    for group in groups:
        prelude: list[Block] = []
        if group.heading is not None:
            prelude.append(group.heading)
        if header_per_group:
            prelude.append(header)
        follows_rows = not flow.at_top and flow.page.blocks[-1] is not header
        gap = 1 if follows_rows and group.heading is not None else 0
        wanted = min(MIN_ROWS_AFTER_HEADING, max(1, len(group.rows)))
        if gap + sum(block.lines for block in prelude) + wanted > flow.lines_left:
            flow.new_page()
            if not header_per_group:
                flow.place(header)
            gap = 0
        if gap:
            flow.place(Gap())
        for block in prelude:
            flow.place(block)
        if not group.rows:
            flow.place(Note(group.empty or "Nothing to show."))
            continue
        remaining = list(group.rows)
        while remaining:
            if flow.lines_left == 0:
                start_page(group.heading)
            take = flow.lines_left
            flow.place(Rows(table_columns, tuple(remaining[:take])))
            remaining = remaining[take:]
    if totals is not None:
        if flow.lines_left < 1:
            start_page(None)
        flow.place(Rows(table_columns, (totals,), total=True))
    return flow.pages


@dataclass(frozen=True)
class Chunk:
    """Consecutive pages rendered as one WeasyPrint document."""

    pages: tuple[Page, ...]

    @property
    def first_number(self) -> int:
        return self.pages[0].number


def chunked(pages: Sequence[Page], pages_per_chunk: int) -> list[Chunk]:
    """Split the document into consecutive chunks of at most `pages_per_chunk` pages."""
    if pages_per_chunk < 1:
        raise ValueError("pages_per_chunk must be at least 1")
    return [
        Chunk(tuple(pages[start : start + pages_per_chunk]))
        for start in range(0, len(pages), pages_per_chunk)
    ]
