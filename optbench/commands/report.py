"""``optbench report``: run the default suite (or ``--quick``) and write ``reports/<name>/``.

Re-running the same command reuses every finished training run (under ``<report>/runs/``);
an interrupted build continues where it stopped.
"""

import dataclasses
import os
import re
import sys
import time

from . import UsageError, _parsing
from ._parsing import check_directory_path


def add_arguments(parser):
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the quick profile (under 5 minutes on 2 cores) instead of the full one",
    )
    parser.add_argument(
        "--profile",
        choices=("tiny", "quick", "full"),
        help="the profile by name (overrides --quick; tiny is the test suite's smoke test)",
    )
    parser.add_argument(
        "--name", help="report name: the directory under --out-dir (default: the profile name)"
    )
    parser.add_argument(
        "--out-dir", default="reports", help="parent directory of the report (default reports)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="Numba threads for the throughput measurement (default: all Numba threads)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="worker processes for the training runs (default 1; each run is single-threaded, "
        "and each sweep starts its own workers: more pays off only for long profiles)",
    )
    parser.add_argument(
        "--no-throughput",
        action="store_true",
        help="skip the throughput measurement (and the ranking's kernel seconds)",
    )
    parser.add_argument(
        "--asv-results",
        default=".asv/results",
        help="asv results directory for the history section (default .asv/results)",
    )
    parser.add_argument(
        "--optimizers",
        help="comma-separated optimizers of the convergence studies, plugins' included "
        "(default: the profile's)",
    )
    parser.add_argument(
        "--baseline",
        metavar="PACK",
        help="compare --optimizers with a baseline pack instead of running a profile: a pack "
        "file, or the name of a shipped pack (quick); only the named optimizers run, on the "
        "pack's studies, grids and seeds",
    )
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="judge on Moré-Wild targets over the runs present and score relative to the best "
        "present, even where a shipped pack of the profile holds fixed references",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress output")


def command(args):
    from ..report import build, profiles

    names = None
    if args.optimizers is not None:
        names = _parsing.comma_list("--optimizers", args.optimizers, _parsing.optimizer_name)
        names = tuple(dict.fromkeys(names))
    baseline = None
    if args.baseline is not None:
        from .pack import load

        if args.profile or args.quick:
            raise UsageError("--baseline: the pack sets the studies; give no --profile or --quick")
        if names is None:
            raise UsageError("--baseline: name the optimizers to compare with --optimizers")
        baseline = load(args.baseline, "--baseline")
        profile = baseline.profile_for(names)
    else:
        profile = profiles.get(args.profile or ("quick" if args.quick else "full"))
        if names is not None:
            profile = dataclasses.replace(profile, optimizers=names)
    name = args.name or profile.name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UsageError(
            f"--name {name!r}: use letters, digits, '.', '_' and '-' (it names a directory)"
        )
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    out_dir = os.path.join(args.out_dir, name)
    check_directory_path(out_dir, "--out-dir")
    start = time.perf_counter()
    index = build.build(
        profile,
        out_dir,
        jobs=args.jobs,
        threads=args.threads,
        throughput=not args.no_throughput,
        asv_results=args.asv_results,
        progress=not args.no_progress,
        baseline=baseline,
        reference=None if args.no_reference else "shipped",
    )
    seconds = time.perf_counter() - start
    print(f"report written to {os.path.abspath(index)} in {seconds:.0f} s", file=sys.stderr)
    print(os.path.abspath(index))
    return 0
