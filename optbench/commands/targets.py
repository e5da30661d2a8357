"""``optbench targets``: rerun the procedure that sets the fixed targets
(:mod:`optbench.targets`) and compare with the targets stored in the package.

Every campaign and re-run is a cell under ``--out``: an interrupted run resumes. ``--write``
stores the measured targets (the file the package ships is ``optbench/data/targets.json``).
"""

import sys

import pandas as pd

from .. import targets
from . import UsageError
from ._parsing import check_file_path, comma_list, integer

WORKLOAD_SETS = {"quick": targets.QUICK_WORKLOADS}


def add_arguments(parser):
    parser.add_argument(
        "--workloads",
        default="quick",
        help="a set of workloads (quick: the quick report's problems), or comma-separated "
        "problem names of it",
    )
    parser.add_argument(
        "--trials", default=str(targets.TRIALS), metavar="N", help="trials per baseline (50)"
    )
    parser.add_argument(
        "--seeds", default=str(targets.SEEDS), metavar="N", help="re-runs of each best (5)"
    )
    parser.add_argument("--out", metavar="DIR", help="directory of the runs (resumable)")
    parser.add_argument("--jobs", default="1", metavar="N", help="local worker processes")
    parser.add_argument("--write", metavar="PATH", help="write the targets as JSON here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _workloads(text):
    if text in WORKLOAD_SETS:
        return WORKLOAD_SETS[text]
    chosen = comma_list("--workloads", text)
    known = {w.problem: w for workloads in WORKLOAD_SETS.values() for w in workloads}
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise UsageError(
            f"--workloads: unknown {unknown[0]!r}; choose a set ({', '.join(WORKLOAD_SETS)}) "
            f"or problems of it ({', '.join(known)})"
        )
    return tuple(known[name] for name in chosen)


def command(args):
    check_file_path(args.write, "--write")
    workloads = _workloads(args.workloads)
    trials, seeds = integer("--trials", args.trials), integer("--seeds", args.seeds)
    jobs = integer("--jobs", args.jobs)
    entries = []
    for workload in workloads:
        print(f"setting the target of {workload.key}", file=sys.stderr, flush=True)
        entries.append(
            targets.set_target(
                workload,
                trials=trials,
                seeds=seeds,
                out=args.out,
                jobs=jobs,
                progress=not args.no_progress,
            )
        )
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(targets.comparison(entries).to_string(index=False))
    if args.write:
        version = targets.stored()["version"] + 1
        targets.write(
            targets.document(entries, version=version, trials=trials, seeds=seeds), args.write
        )
        print(f"wrote {len(entries)} targets (version {version}) to {args.write}")
    return 0
