"""The report as data: sections of paragraphs, figures and tables, rendered by
:mod:`.render_html` and :mod:`.render_markdown` from the same blocks.

A :class:`Table` is shown exactly as its data file holds it (same rows, columns and order);
only the number formatting differs, so a reader (or a test) can check every cell against the
CSV file.
"""

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MISSING = "\u2013"  # an en dash: a value that does not exist (a target not reached, no peer)


@dataclass
class Text:
    """A paragraph of plain text; spans between backticks are set as code."""

    text: str


@dataclass
class Figure:
    """A saved figure: paths relative to the report directory (PNG, SVG, data CSVs)."""

    name: str
    caption: str
    png: str
    svg: str
    data: tuple[str, ...] = ()


@dataclass
class Table:
    """A table shown cell for cell as ``frame``, whose full-precision copy is ``data`` (a CSV
    path relative to the report directory)."""

    name: str
    caption: str
    frame: pd.DataFrame
    data: str


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)

    @property
    def anchor(self):
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")


@dataclass
class Document:
    title: str
    sections: list[Section] = field(default_factory=list)
    subtitle: str = ""


def format_cell(value):
    """The text of one table cell: floats to 4 significant digits (scientific notation outside
    [1e-3, 1e5)), integers in full, NaN/None/inf as ``MISSING``/``inf``, anything else ``str``."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value != 0 and not 1e-3 <= abs(value) < 1e5:
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def table_cells(frame):
    """The header and the rows of ``frame`` as strings, cell by cell (see :func:`format_cell`)."""
    header = [str(column) for column in frame.columns]
    rows = [[format_cell(value) for value in row] for row in frame.itertuples(index=False)]
    return header, rows
