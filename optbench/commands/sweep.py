"""``optbench sweep``: problems x optimizers x learning rates x batch sizes x seeds.

``--out`` is a directory (or a ``.parquet``/``.csv`` table path): every finished cell is
written there at once, and running the same command again resumes an interrupted sweep.
"""

import time

from .. import runner, sweep
from . import UsageError
from . import run as run_command
from ._parsing import batch_size, comma_list, integer, key_values, number


def add_arguments(parser):
    parser.add_argument(
        "--problems", required=True, metavar="A,B", help="comma-separated problem names"
    )
    parser.add_argument(
        "--optimizers", required=True, metavar="A,B", help="comma-separated optimizer names"
    )
    parser.add_argument(
        "--lrs",
        metavar="X,Y",
        help="learning rates for every optimizer (default: per optimizer, its registry lr "
        "times 10**k for k = -2, -1.5, ..., 1)",
    )
    parser.add_argument(
        "--batch-sizes", default="32", metavar="N,M", help="mini-batch sizes or 'full' (32)"
    )
    parser.add_argument("--seeds", default="0", metavar="N,M", help="seeds (default 0)")
    run_command.add_training_arguments(parser, grid=True)
    parser.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="directory for the cells and results.parquet, or a .parquet/.csv table path; "
        "an interrupted sweep resumes from it",
    )
    parser.add_argument(
        "--jobs", default="1", metavar="N", help="local worker processes (default 1)"
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the cells on the Dask cluster of this scheduler (e.g. tcp://host:8786)",
    )
    parser.add_argument(
        "--tune",
        action="store_true",
        help="then choose the best lr per problem, optimizer and batch size by --metric and "
        "re-run it with --final-seeds",
    )
    parser.add_argument(
        "--metric",
        default="final_loss",
        metavar="NAME",
        help="tuning metric, one of "
        + ", ".join(sweep.METRICS)
        + " (default final_loss: "
        + sweep.METRICS["final_loss"][1]
        + "); diverged runs rank last",
    )
    parser.add_argument(
        "--final-seeds",
        metavar="N,M",
        help="seeds of the tuned re-runs (default: the 3 after the largest of --seeds)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _positive_number(option, text):
    return number(option, text, positive=True)


def _seed(option, text):
    return integer(option, text, low=0)


def _split_prefixed(option, pairs, names):
    """``{name: [KEY=VALUE, ...]}``: a key ``name.key`` applies to ``name``, a bare key to
    every name."""
    by_name = {name: [] for name in names}
    for key, text in pairs:
        prefix, dot, rest = key.partition(".")
        if dot:
            if prefix not in by_name:
                raise UsageError(
                    f"{option} {key}={text}: {prefix!r} is not in the grid ({', '.join(names)})"
                )
            by_name[prefix].append(f"{rest}={text}")
        else:
            for items in by_name.values():
                items.append(f"{key}={text}")
    return by_name


def grid_from_args(args):
    problems = comma_list("--problems", args.problems)
    optimizers = comma_list("--optimizers", args.optimizers)
    for name in problems:
        runner.resolve_problem_class(name)
    for name in optimizers:
        runner.resolve_optimizer(name)
    opt_items = _split_prefixed("--opt", key_values("--opt", args.opt), optimizers)
    problem_items = _split_prefixed(
        "--problem-opt", key_values("--problem-opt", args.problem_opt), problems
    )
    return sweep.Grid(
        problems=problems,
        optimizers=optimizers,
        lrs=None if args.lrs is None else comma_list("--lrs", args.lrs, _positive_number),
        batch_sizes=comma_list("--batch-sizes", args.batch_sizes, batch_size),
        seeds=comma_list("--seeds", args.seeds, _seed),
        optimizer_options={
            name: run_command.optimizer_options(name, items) for name, items in opt_items.items()
        },
        problem_options={
            name: run_command.problem_options(name, items) for name, items in problem_items.items()
        },
        schedule=args.schedule,
        schedule_options=run_command.schedule_options(args.schedule, args.schedule_opt),
        **run_command.training_values(args),
    )


def command(args):
    sweep.check_out(args.out, "--out", tune=args.tune)
    grid = grid_from_args(args)
    jobs = integer("--jobs", args.jobs)
    if (args.final_seeds is not None or args.metric != "final_loss") and not args.tune:
        raise UsageError("--final-seeds and --metric need --tune")
    if args.metric not in sweep.METRICS:
        raise UsageError(f"--metric {args.metric!r}: choose from {', '.join(sweep.METRICS)}")
    backend = {"jobs": jobs, "scheduler": args.scheduler, "progress": not args.no_progress}
    start = time.perf_counter()
    if args.tune:
        seeds = None
        if args.final_seeds is not None:
            seeds = comma_list("--final-seeds", args.final_seeds, _seed)
        result = sweep.tune(grid, metric=args.metric, seeds=seeds, out=args.out, **backend)
        table = result.final
        print(result.best.to_string(index=False))
    else:
        table = sweep.sweep(grid, out=args.out, **backend)
    cells = table["cell"].nunique()
    diverged = table.groupby("cell")["diverged"].any().sum()
    print(
        f"{cells} cells ({diverged} diverged), {len(table)} rows in "
        f"{time.perf_counter() - start:.1f} s; results in {args.out}"
    )
    return 0
