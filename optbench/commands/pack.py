"""``optbench pack``: make, merge and show baseline packs (:mod:`optbench.report.packs`).

``optbench pack build --profile quick --out quick.parquet`` runs the profile's tuned studies
(resumably, under ``--runs``: by default the report's own runs directory, so that a pack made
after ``optbench report`` reuses its runs) and writes them with this machine's description;
``optbench pack merge --out all.parquet A.parquet B.parquet`` joins packs from several
machines or sweeps; ``optbench pack show PACK`` prints a pack's machines, studies and
references. A PACK argument is a file or the name of a pack shipped in the package.
"""

import dataclasses
import os
import sys

import pandas as pd

from . import UsageError, _parsing


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="run a profile's tuned studies and write them as a pack")
    build.add_argument("--profile", default="quick", choices=("tiny", "quick", "full"))
    build.add_argument("--out", required=True, metavar="PATH", help="the pack (.parquet)")
    build.add_argument(
        "--runs",
        metavar="DIR",
        help="directory of the runs, reused and resumable (default reports/<profile>, the "
        "report's)",
    )
    build.add_argument("--optimizers", help="comma-separated (default: the profile's)")
    build.add_argument("--jobs", default="1", metavar="N", help="local worker processes")
    build.add_argument("--no-progress", action="store_true", help="no progress output")
    merge = sub.add_parser("merge", help="join packs of several machines or sweeps")
    merge.add_argument("--out", required=True, metavar="PATH", help="the merged pack")
    merge.add_argument("packs", nargs="+", metavar="PACK")
    show = sub.add_parser("show", help="a pack's machines, studies and references")
    show.add_argument("pack", metavar="PACK")


def load(text, option="PACK"):
    """The pack named by ``text``: a shipped pack's profile name, else a file."""
    from ..report import packs

    shipped = packs.shipped_path(text) if os.sep not in text else None
    path = shipped or text
    if not os.path.isfile(path):
        raise UsageError(f"{option} {text!r}: no such file, and no pack of that name is shipped")
    return packs.read(path)


def _check_out(path):
    """Refuse, before any work, an output path that is not a writable ``.parquet`` file."""
    if not path.endswith(".parquet"):
        raise UsageError(f"--out {path!r}: a pack's file name must end in .parquet")
    _parsing.check_file_path(path)


def command(args):
    return {"build": _build, "merge": _merge, "show": _show}[args.action](args)


def _build(args):
    from ..report import packs, profiles, runs

    _check_out(args.out)
    profile = profiles.get(args.profile)
    if args.optimizers is not None:
        names = _parsing.comma_list("--optimizers", args.optimizers, _parsing.optimizer_name)
        profile = dataclasses.replace(profile, optimizers=tuple(dict.fromkeys(names)))
    jobs = _parsing.integer("--jobs", args.jobs)
    out_dir = args.runs or os.path.join("reports", profile.name)
    _parsing.check_directory_path(out_dir, "--runs")
    tuned = runs.tune_profile(profile, out_dir, jobs=jobs, progress=not args.no_progress)
    pack = packs.from_tuned(profile, tuned)
    packs.write(pack, args.out)
    print(
        f"wrote the {profile.name} pack ({len(pack.optimizers)} optimizers, "
        f"{len(pack.studies)} studies, {len(pack.runs)} logged steps) to {args.out}",
        file=sys.stderr,
    )
    return 0


def _merge(args):
    from ..report import packs

    _check_out(args.out)
    merged = packs.merge([load(text) for text in args.packs])
    packs.write(merged, args.out)
    print(
        f"wrote {len(args.packs)} packs merged ({len(merged.machines)} machines, "
        f"{len(merged.optimizers)} optimizers, {len(merged.studies)} studies) to {args.out}",
        file=sys.stderr,
    )
    return 0


def _show(args):
    from ..report import packs

    pack = load(args.pack)
    print(
        f"pack of profile {pack.profile}, made {pack.created}; fixed targets v"
        f"{pack.targets_version}; search seeds {list(pack.search_seeds)}, seeds "
        f"{list(pack.seeds)}, Moré-Wild tolerance {pack.tolerance:g}"
    )
    print(f"optimizers: {', '.join(pack.optimizers)}")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        for identifier, description in pack.machines.items():
            print(f"\nmachine {identifier}:")
            for key, value in description.items():
                print(f"  {key}: {value}")
        print("\nreferences:")
        print(packs.references(pack).to_string())
        print("\nabsolute scores (steps to target against the references):")
        print(packs.scores(pack).to_string())
    return 0
