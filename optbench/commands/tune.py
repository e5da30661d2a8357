"""``optbench tune``: a tuning campaign, trials sampled quasi-randomly from the optimizer's
search space in independent studies (:mod:`optbench.tuning`).

``--out`` is a directory: every finished trial is written there at once, so running the same
command again after an interruption (a SIGKILL included) runs only the trials still missing;
``trials.parquet`` (every trial) and ``best.parquet`` (each study's best) are written when the
campaign ends.

Example, AlgoPerf's external tuning budget (5 trials in each of 3 studies)::

    optbench tune --optimizer adamw --problem mnist1d_mlp --trials 5 --studies 3 \\
        --epochs 20 --out results/adamw-mnist1d
"""

import time

import pandas as pd

from .. import runner, sweep, tuning
from . import UsageError
from . import run as run_command
from ._parsing import batch_size, comma_list, integer


def add_arguments(parser):
    parser.add_argument("--optimizer", required=True, help="optimizer name (see `optbench list`)")
    parser.add_argument("--problem", required=True, help="problem name (see `optbench list`)")
    parser.add_argument("--trials", default="5", metavar="N", help="trials per study (default 5)")
    parser.add_argument("--studies", default="3", metavar="N", help="studies (default 3)")
    parser.add_argument(
        "--search",
        metavar="A,B",
        help="search-space keys to sample besides lr (default: every key the optimizer "
        "declares; `optbench list optimizers` shows them)",
    )
    parser.add_argument(
        "--opt",
        action="append",
        metavar="KEY=VALUE",
        help="optimizer option held fixed in every trial, repeatable (not a searched key)",
    )
    parser.add_argument(
        "--problem-opt", action="append", metavar="KEY=VALUE", help="problem option, repeatable"
    )
    parser.add_argument(
        "--schedule",
        metavar="NAME",
        help="learning-rate schedule of every trial (see `optbench list schedules`); "
        "--search may then name " + ", ".join(tuning.SCHEDULE_SPACE),
    )
    parser.add_argument(
        "--schedule-opt",
        action="append",
        metavar="KEY=VALUE",
        help="schedule option held fixed, repeatable (e.g. warmup_fraction=0.05)",
    )
    parser.add_argument(
        "--track",
        default="external",
        choices=tuning.TRACKS,
        help="external: sampled trials (default); self: the optimizer's defaults, one run per "
        f"study, {tuning.SELF_TUNING_BUDGET:g} times the budget (AlgoPerf's self-tuning track)",
    )
    parser.add_argument(
        "--batch-size", default="32", metavar="N", help="mini-batch size or 'full' (default 32)"
    )
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--epochs", metavar="N", help="passes over the training set per trial")
    budget.add_argument("--steps", metavar="N", help="optimizer updates per trial")
    parser.add_argument(
        "--log-every", default="1", metavar="N", help="steps between logged rows (default 1)"
    )
    parser.add_argument(
        "--metric",
        default="final_loss",
        metavar="NAME",
        help="tuning metric, one of " + ", ".join(sweep.METRICS) + " (default final_loss)",
    )
    parser.add_argument("--seed", default="0", metavar="N", help="campaign seed (default 0)")
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="directory of the trials; resumes from it"
    )
    parser.add_argument("--jobs", default="1", metavar="N", help="local worker processes")
    parser.add_argument(
        "--scheduler", metavar="ADDRESS", help="run the trials on this Dask scheduler's cluster"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def command(args):
    sweep.check_out(args.out, "--out", tune=True)
    info = runner.resolve_optimizer(args.optimizer)
    runner.resolve_problem_class(args.problem)
    if args.metric not in sweep.METRICS:
        raise UsageError(f"--metric {args.metric!r}: choose from {', '.join(sweep.METRICS)}")
    self_tuning = args.track == "self"
    if self_tuning and (args.search is not None or args.trials != "5"):
        raise UsageError("--track self runs the defaults: no --search, no --trials")
    campaign = tuning.Campaign(
        optimizer=info.name,
        problem=args.problem,
        trials=1 if self_tuning else integer("--trials", args.trials),
        studies=integer("--studies", args.studies),
        search=None if args.search is None else comma_list("--search", args.search),
        fixed=run_command.optimizer_options(info, args.opt),
        batch_size=batch_size("--batch-size", args.batch_size),
        epochs=None if args.epochs is None else integer("--epochs", args.epochs),
        steps=None if args.steps is None else integer("--steps", args.steps),
        problem_options=run_command.problem_options(args.problem, args.problem_opt),
        log_every=integer("--log-every", args.log_every),
        metric=args.metric,
        seed=integer("--seed", args.seed, low=0),
        schedule=args.schedule,
        schedule_options=run_command.schedule_options(args.schedule, args.schedule_opt),
        track=args.track,
    )
    start = time.perf_counter()
    result = tuning.run(
        campaign,
        args.out,
        jobs=integer("--jobs", args.jobs),
        scheduler=args.scheduler,
        progress=not args.no_progress,
    )
    shown = result.trials.drop(columns=["optimizer", "problem", "cell"])
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(shown.to_string(index=False))
        print("\nbest trial of each study:")
        searched = ["lr", *(key for key in campaign.space() if key != "lr")]
        print(result.best[["study", "trial", *searched, "score"]].to_string(index=False))
    summary = tuning.summary(result)
    print(
        f"\n{len(result.trials)} trials in {campaign.studies} studies, "
        f"{time.perf_counter() - start:.1f} s; median best {campaign.metric} over studies: "
        f"{summary['median_best_score']:.4g}; results in {args.out}"
    )
    return 0
