"""``optbench instructions``: the instructions one call of each kernel benchmark executes, counted
under Valgrind (:mod:`optbench.instructions`).

``--list`` prints the benchmarks; ``--benchmarks REGEX`` chooses some; ``--repeat N`` counts
them in N separate processes and prints, per benchmark, the smallest and largest count and how
many distinct values the N processes gave (the determinism check); ``--out`` writes every
process's counts as CSV.
"""

import sys

import pandas as pd

from .. import instructions, tables
from . import UsageError
from ._parsing import check_table_path, integer


def add_arguments(parser):
    parser.add_argument("--benchmarks", metavar="REGEX", help="names matching REGEX (default all)")
    parser.add_argument("--list", action="store_true", help="print the benchmarks and stop")
    parser.add_argument(
        "--calls", default=str(instructions.CALLS), metavar="N", help="counted calls per benchmark"
    )
    parser.add_argument(
        "--repeat", default="1", metavar="N", help="separate Valgrind processes (default 1)"
    )
    parser.add_argument("--out", metavar="PATH", help="every count as a table (.csv, .parquet)")


def command(args):
    names = instructions.select(args.benchmarks)
    if args.list:
        print("\n".join(names))
        return 0
    calls, repeat = integer("--calls", args.calls), integer("--repeat", args.repeat)
    check_table_path(args.out)
    if instructions.valgrind_path() is None:
        raise UsageError("valgrind is not installed (Debian: apt-get install valgrind)")
    runs = []
    for run in range(repeat):
        print(f"counting {len(names)} benchmarks, process {run + 1} of {repeat}", file=sys.stderr)
        runs.append(instructions.measure(names, calls=calls).assign(process=run + 1))
    table = pd.concat(runs, ignore_index=True)
    if args.out:
        tables.write_table(table, args.out)
    summary = instructions.determinism(table)
    with pd.option_context("display.width", 200, "display.max_rows", None):
        print(summary.to_string(index=False))
    return 0
