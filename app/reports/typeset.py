"""Table rows set as single lines of text, with every cell at its column's edge.

WeasyPrint spends its time per line box, not per character: a page of 47 rows drawn as a table
(or as eight column blocks) costs eight line boxes or more per row, one line per row costs one.
So each row is one pre-formatted line: a cell's text is measured with the very Pango layout
WeasyPrint will use (same font, size and features), cut with an ellipsis when it is wider than
its column, and moved to its column's left edge (or, for numbers, right edge) with Unicode
space characters of known widths (em, en, figure, thin, hair...) chosen to land within a few
hundredths of a millimetre. Tab stops would be simpler, but WeasyPrint draws a tab 2.4% wider than
Pango lays it out, so columns after a tab drift.

This uses WeasyPrint's text layer (`weasyprint.text.line_break`), which is not a public API:
the version is pinned, and tests check the columns line up in the rendered PDF.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from typing import Any

from weasyprint import HTML
from weasyprint.formatting_structure.boxes import TextBox
from weasyprint.text.line_break import Layout, line_size

from app.reports.layout import Column, one_line

PX_PER_MM = 96 / 25.4
ELLIPSIS = "…"
_EM_SPACE = "\u2003"
# En, figure, three-per-em, normal, four-per-em, thin, six-per-em and hair spaces.
_FINE_SPACES = ("\u2002", "\u2007", "\u2004", " ", "\u2005", "\u2009", "\u2006", "\u200a")


def _text_style(css: str) -> Any:
    """The computed style of text in an element styled `css` (WeasyPrint's own object)."""
    page = HTML(string=f'<div style="white-space: pre; {css}">x</div>').render().pages[0]
    box: Any = page._page_box
    while not isinstance(box, TextBox):
        box = box.children[0]
    return box.style


class _Measure:
    """Widths in CSS pixels of strings set in one style, cached."""

    def __init__(self, css: str) -> None:
        self.style = _text_style(css)
        self.layout = Layout(self.style)
        self.size = float(self.style["font_size"])
        self.cache: dict[str, float] = {}

    def width(self, text: str) -> float:
        found = self.cache.get(text)
        if found is None:
            self.layout.set_text(text)
            line, _next = self.layout.get_first_line()
            found = self.cache[text] = float(line_size(line, self.style)[0])
        return found

    def drawn_width(self, char: str) -> float:
        """A space's width as WeasyPrint draws it: rounded to 1/1000 em."""
        return round(self.width(char) / self.size * 1000) * self.size / 1000


class Typesetter:
    """Sets rows of cells as lines for a `white-space: pre` block whose text style is
    `css` (regular) or `bold_css` (totals)."""

    def __init__(self, css: str, bold_css: str, padding_mm: float) -> None:
        self.measures = {False: _Measure(css), True: _Measure(f"{css}; {bold_css}")}
        self.padding_px = padding_mm * PX_PER_MM
        self._pads = {bold: self._pad_table(m) for bold, m in self.measures.items()}
        self._pad_widths = {
            bold: [width for width, _pad in pads] for bold, pads in self._pads.items()
        }

    def lines(self, rows: Sequence[Sequence[str]], columns: Sequence[Column], bold: bool) -> str:
        """The rows as text lines, one per row, joined by newlines."""
        return "\n".join(self.line(row, columns, bold) for row in rows)

    def line(self, cells: Sequence[str], columns: Sequence[Column], bold: bool = False) -> str:
        measure = self.measures[bold]
        parts: list[str] = []
        x = 0.0
        for raw, column in zip(cells, columns, strict=True):
            left = column.x_mm * PX_PER_MM + self.padding_px
            room = column.width_mm * PX_PER_MM - 2 * self.padding_px
            text = self.fit(one_line(raw), room, measure)
            width = measure.width(text)
            start = left + room - width if column.numeric else left
            if start > x:
                pad, pad_width = self._pad(start - x, bold)
                parts.append(pad)
                x += pad_width
            elif parts:
                parts.append(" ")  # never run two cells together
                x += measure.drawn_width(" ")
            parts.append(text)
            x += width
        return "".join(parts)

    @staticmethod
    def fit(text: str, room: float, measure: _Measure) -> str:
        """`text`, cut with an ellipsis to fit `room` pixels."""
        if measure.width(text) <= room:
            return text
        low, high = 0, len(text)
        while low < high:  # the longest prefix that fits with the ellipsis
            middle = (low + high + 1) // 2
            if measure.width(text[:middle].rstrip() + ELLIPSIS) <= room:
                low = middle
            else:
                high = middle - 1
        return text[:low].rstrip() + ELLIPSIS

    def _pad_table(self, measure: _Measure) -> list[tuple[float, str]]:
        """Every combination of up to four of the narrower spaces, by width: a gap is then
        em spaces and at most four others (every glyph costs drawing time)."""
        widths = {char: measure.drawn_width(char) for char in _FINE_SPACES}
        combos: dict[float, str] = {0.0: ""}
        for count in (1, 2, 3, 4):
            for chars in itertools.combinations_with_replacement(_FINE_SPACES, count):
                combos.setdefault(round(sum(widths[char] for char in chars), 4), "".join(chars))
        return sorted(combos.items())

    def _pad(self, gap: float, bold: bool) -> tuple[str, float]:
        """Spaces as close to `gap` pixels wide as the space widths allow; and their width."""
        em = self.measures[bold].drawn_width(_EM_SPACE)
        # The last em or so is left to the finer spaces, which land closest with some room.
        ems = max(0, int(gap // em) - 1)
        rest = gap - ems * em
        pads, widths = self._pads[bold], self._pad_widths[bold]
        index = bisect.bisect_left(widths, rest)
        nearest = [i for i in (index - 1, index) if 0 <= i < len(pads)]
        width, fine = min((pads[i] for i in nearest), key=lambda pad: abs(pad[0] - rest))
        return _EM_SPACE * ems + fine, ems * em + width
