"""``optbench regress BASE HEAD``: run the asv suite of two commits, fail on regressions.

Exit status: 0 when nothing regressed, 1 when a timing or peak memory regressed beyond
``--factor`` (and the rounds tell it from noise), an instruction count grew beyond
``--count-threshold``, a deterministic track changed beyond ``--tolerance``, or a benchmark
that ran at BASE fails at HEAD; 2 for a bad argument; 3 when the comparison could not be made
(git or asv failed). See :mod:`optbench.regress` for the method.

::

    optbench regress main HEAD                           # every benchmark, 5 rounds
    optbench regress main HEAD --quick --rounds 7 --bench '^optimizers\\.OptimizerStep'
    optbench regress v0.1 HEAD --publish                 # and the HTML site under reports/asv
    optbench regress main HEAD --instructions            # instruction counts alone, 1% threshold
"""

import sys

from .. import regress, tables
from ._parsing import check_file_path, integer, number


def add_arguments(parser):
    defaults = regress.Options()
    parser.add_argument("base", metavar="BASE", help="the reference commit (hash, branch, tag)")
    parser.add_argument("head", metavar="HEAD", help="the commit under test")
    parser.add_argument(
        "--factor",
        default=str(defaults.factor),
        help=f"fail when a timing or peak memory grows by more than this (default "
        f"{defaults.factor})",
    )
    parser.add_argument(
        "--alpha",
        default=str(defaults.alpha),
        help=f"one-sided Mann-Whitney p-value over rounds a change must reach (default "
        f"{defaults.alpha})",
    )
    parser.add_argument(
        "--rounds",
        default=str(defaults.rounds),
        help=f"rounds per commit, in alternating order (default {defaults.rounds})",
    )
    parser.add_argument(
        "--processes",
        default=str(defaults.processes),
        help=f"benchmark processes per commit and round, the fastest counts (default "
        f"{defaults.processes})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="asv --quick: one sample and one process per benchmark and round",
    )
    parser.add_argument(
        "--bench",
        "-b",
        action="append",
        default=[],
        metavar="REGEX",
        help="only benchmarks whose name(params) matches (repeatable; default: all)",
    )
    parser.add_argument(
        "--tolerance",
        default=str(defaults.tolerance),
        help=f"relative tolerance of deterministic tracks (default {defaults.tolerance})",
    )
    parser.add_argument(
        "--statistic",
        choices=regress.STATISTICS,
        default=defaults.statistic,
        help=f"a timing's value: the fastest sample and round, or asv's median and the median "
        f"of rounds (default {defaults.statistic})",
    )
    parser.add_argument(
        "--deterministic",
        default=defaults.deterministic,
        metavar="REGEX",
        help=f"benchmarks compared exactly, run once (default {defaults.deterministic!r})",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="compare the instruction counts alone (benchmarks/instructions.py, under "
        "Valgrind): BASE and HEAD counted at the same time, once; a change beyond "
        "--count-threshold fails",
    )
    parser.add_argument(
        "--count-threshold",
        default=str(defaults.count_threshold),
        help=f"fail when an instruction count grows by more than this fraction (default "
        f"{defaults.count_threshold})",
    )
    parser.add_argument(
        "--accept",
        action="append",
        default=[],
        metavar="REGEX",
        help="benchmarks whose name(params) matches may regress or change: an expected "
        "change, reported as accepted, does not fail (repeatable)",
    )
    parser.add_argument("--python", help="interpreter that runs the benchmarks (default: this)")
    parser.add_argument("--machine", help="asv machine name (default: asv's, created if absent)")
    parser.add_argument("--repo", default=".", help="the git repository (default: .)")
    parser.add_argument(
        "--workdir", help="exported trees and run files (default REPO/.asv/regress)"
    )
    parser.add_argument("--output", "-o", help="write the comparison table as CSV here")
    parser.add_argument("--all", action="store_true", help="print unchanged benchmarks too")
    parser.add_argument("--keep", action="store_true", help="keep the run's asv logs and results")
    parser.add_argument(
        "--publish", action="store_true", help="asv publish the results (reports/asv)"
    )
    parser.add_argument("--show-stderr", action="store_true", help="benchmarks' stderr in logs")


def options_from(args):
    return regress.Options(
        factor=number("--factor", args.factor),
        alpha=number("--alpha", args.alpha),
        rounds=integer("--rounds", args.rounds),
        processes=integer("--processes", args.processes),
        quick=args.quick,
        bench=tuple(args.bench) or ((regress.ONCE,) if args.instructions else ()),
        tolerance=number("--tolerance", args.tolerance),
        statistic=args.statistic,
        deterministic=args.deterministic,
        count_threshold=number("--count-threshold", args.count_threshold),
        accept=tuple(args.accept),
        concurrent=args.instructions,
        python=args.python,
        machine=args.machine,
        workdir=args.workdir,
        keep=args.keep,
        publish=args.publish,
        show_stderr=args.show_stderr,
    )


def command(args):
    check_file_path(args.output, "--output")
    options = options_from(args)
    try:
        comparison = regress.compare_commits(args.repo, args.base, args.head, options)
    except regress.RegressError as error:
        print(f"optbench regress: {error}", file=sys.stderr)
        return 3
    print(f"BASE {comparison.base[:12]}  HEAD {comparison.head[:12]}  ({comparison.seconds:.0f} s)")
    print(regress.format_table(comparison.table, show_all=args.all, options=options))
    if comparison.run_dir:
        print(f"asv logs and results: {comparison.run_dir}")
    if args.output:
        tables.write_csv(comparison.table, args.output)
    return 1 if comparison.failed else 0
