"""``optbench compare A B``: ratios B/A between two result sets, with spread, changes marked."""

import os
import sys

from .. import tables
from ..report import compare as comparison
from ..report import document
from . import UsageError
from ._parsing import check_table_path


def add_arguments(parser):
    parser.add_argument(
        "a", metavar="A", help="baseline: a report directory, a results directory or a table"
    )
    parser.add_argument("b", metavar="B", help="the result set compared with A (same kinds)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=comparison.DEFAULT_THRESHOLD,
        help="relative change below which nothing is marked (default %(default)s = 5%%)",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="also write the table here (.csv or .parquet; default: print only)",
    )
    parser.add_argument(
        "--only-changes", action="store_true", help="print only the rows marked as changed"
    )
    parser.add_argument(
        "--fail-on-worse",
        action="store_true",
        help="exit with status 1 when any item got worse beyond noise, or none was compared",
    )


def command(args):
    check_table_path(args.out)
    if args.out is not None:
        inputs = comparison.sources(args.a) + comparison.sources(args.b)
        if os.path.realpath(args.out) in {os.path.realpath(path) for path in inputs}:
            raise UsageError(f"--out {args.out!r}: is one of the inputs; give another file")
    a, b = comparison.load(args.a), comparison.load(args.b)
    table = comparison.compare(a, b, threshold=args.threshold)
    missing = comparison.unmatched(a, b)
    if args.out is not None:
        tables.write_table(table, args.out)
    shown = table[table["change"] != ""] if args.only_changes else table
    print(_text(shown))
    worse = int((table["change"] == "worse").sum())
    better = int((table["change"] == "better").sum())
    print(
        f"\n{len(table)} items compared: {worse} worse, {better} better beyond noise "
        f"(threshold {args.threshold:.0%}, interquartile ranges apart); "
        f"{len(missing)} measured on one side only",
        file=sys.stderr,
    )
    if args.out is not None:
        print(f"table written to {os.path.abspath(args.out)}", file=sys.stderr)
    if args.fail_on_worse and table.empty:
        print(
            "optbench compare: --fail-on-worse: nothing was compared (no item measured in both)",
            file=sys.stderr,
        )
        return 1
    return 1 if args.fail_on_worse and worse else 0


def _text(table):
    header, rows = document.table_cells(table)
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True))]
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)
