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

WORKLOAD_SETS = {"quick": targets.QUICK_WORKLOADS, "full": targets.FULL_WORKLOADS}


def add_arguments(parser):
    parser.add_argument(
        "--workloads",
        default="quick",
        help="a set of workloads (quick or full: the report profile's problems with held-out "
        "data, at its budgets), or comma-separated problems of the quick set (full:NAME: of "
        "the full set)",
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
    # a plain problem name is the quick set's; SET:PROBLEM names another set's
    known = {w.problem: w for w in WORKLOAD_SETS["quick"]}
    known |= {f"{name}:{w.problem}": w for name, ws in WORKLOAD_SETS.items() for w in ws}
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
        stored = targets.stored()
        version = stored["version"] + 1
        document = targets.document(
            entries, version=version, trials=trials, seeds=seeds, keep=stored["targets"]
        )
        targets.write(document, args.write)
        kept = len(document["targets"]) - len(entries)
        print(
            f"wrote {len(entries)} targets measured now and {kept} stored ones (version "
            f"{version}) to {args.write}"
        )
    return 0
