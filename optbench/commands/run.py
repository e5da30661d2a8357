"""``optbench run``: train one optimizer on one problem and write the record.

Also the training options shared with ``optbench sweep`` (their arguments and their values);
strings become values with the converters of :mod:`optbench.commands._parsing`.
"""

import math

from .. import runner, schedules, tables
from . import UsageError
from ._parsing import batch_size, check_table_path, integer, key_values, number

BUDGET_HELP = (
    "without --epochs or --steps: "
    f"{runner.DEFAULT_EPOCHS} epochs for problems with data, "
    f"{runner.DEFAULT_STEPS} steps for closed-form problems"
)


# --------------------------------------------------------------------------------------------
# optimizer, problem and schedule options: KEY=VALUE, typed by their defaults
# --------------------------------------------------------------------------------------------
def optimizer_options(optimizer, items, option="--opt"):
    return {
        key: runner.parse_optimizer_option(optimizer, key, text)
        for key, text in key_values(option, items)
    }


def problem_options(problem, items, option="--problem-opt"):
    return {
        key: runner.parse_problem_option(problem, key, text)
        for key, text in key_values(option, items)
    }


def schedule_options(name, items, option="--schedule-opt"):
    pairs = key_values(option, items)
    if name is None:
        if pairs:
            raise UsageError(f"{option} needs --schedule")
        return {}
    valid = schedules.schedule_options(name)
    parsed = {}
    for key, text in pairs:
        if key not in valid:
            raise UsageError(
                f"schedule {name} has no option {key!r}; its options are: {', '.join(valid)}"
            )
        parsed[key] = valid[key].parse(key, text)
    return parsed


def early_stopping(args):
    if args.early_stopping is None:
        if args.patience is not None or args.min_delta is not None:
            raise UsageError("--patience and --min-delta need --early-stopping MONITOR")
        return None
    return runner.EarlyStopping(
        monitor=args.early_stopping,
        patience=5 if args.patience is None else integer("--patience", args.patience),
        min_delta=0.0 if args.min_delta is None else number("--min-delta", args.min_delta),
    )


# --------------------------------------------------------------------------------------------
# arguments shared with `optbench sweep`
# --------------------------------------------------------------------------------------------
def add_training_arguments(parser, *, grid):
    """Budget, schedule, logging, early stopping and divergence options (``grid``: the
    option forms of ``optbench sweep``, where an option may name its optimizer/problem)."""
    prefix = "[OPTIMIZER.]" if grid else ""
    problem_prefix = "[PROBLEM.]" if grid else ""
    parser.add_argument(
        "--opt",
        action="append",
        metavar=f"{prefix}KEY=VALUE",
        help="optimizer option, repeatable (e.g. momentum=0.9, nesterov=true, "
        "betas=0.9,0.999, clip_norm=1); values are parsed by the type of the option's default; "
        + ("prefix the optimizer's name to set it for one optimizer only; " if grid else "")
        + "see `optbench list optimizers`",
    )
    parser.add_argument(
        "--problem-opt",
        action="append",
        metavar=f"{problem_prefix}KEY=VALUE",
        help="problem option, repeatable (e.g. norm=batch); "
        + ("prefix the problem's name to set it for one problem only; " if grid else "")
        + "see `optbench list problems`",
    )
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument(
        "--epochs", metavar="N", help=f"passes over the training set ({BUDGET_HELP})"
    )
    budget.add_argument("--steps", metavar="N", help="optimizer updates (instead of --epochs)")
    parser.add_argument(
        "--schedule",
        metavar="NAME",
        help=f"learning-rate schedule: {', '.join(schedules.SCHEDULES)} (default: constant)",
    )
    parser.add_argument(
        "--schedule-opt",
        action="append",
        metavar="KEY=VALUE",
        help="schedule option, repeatable (e.g. T_max=500, warmup=100); "
        "see `optbench list schedules`",
    )
    parser.add_argument(
        "--log-every",
        default="1",
        metavar="N",
        help="steps between logged rows (epoch ends and the last step are always logged; "
        "default 1)",
    )
    parser.add_argument(
        "--early-stopping",
        metavar="MONITOR",
        help=f"stop when MONITOR ({', '.join(runner.MONITORS)}) stops improving",
    )
    parser.add_argument(
        "--patience", metavar="N", help="checks without improvement before stopping (default 5)"
    )
    parser.add_argument(
        "--min-delta", metavar="X", help="smallest change that counts as improvement (default 0)"
    )
    parser.add_argument(
        "--divergence-bound",
        metavar="X",
        help="a mini-batch loss above X ends the run as diverged (a non-finite loss always does)",
    )


def training_values(args):
    """The budget, logging and divergence values common to run and sweep."""
    return {
        "epochs": None if args.epochs is None else integer("--epochs", args.epochs),
        "steps": None if args.steps is None else integer("--steps", args.steps),
        "log_every": integer("--log-every", args.log_every),
        "early_stopping": early_stopping(args),
        "divergence_bound": None
        if args.divergence_bound is None
        else number("--divergence-bound", args.divergence_bound),
    }


# --------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------
def add_arguments(parser):
    parser.add_argument("--problem", required=True, help="problem name (see `optbench list`)")
    parser.add_argument("--optimizer", required=True, help="optimizer name (see `optbench list`)")
    parser.add_argument(
        "--lr",
        metavar="X",
        help="learning rate (default: the optimizer's lr in the registry, see `optbench list`)",
    )
    parser.add_argument(
        "--batch-size", default="32", metavar="N", help="mini-batch size or 'full' (default 32)"
    )
    parser.add_argument(
        "--seed",
        default="0",
        metavar="N",
        help="seed of the problem and of the batch order (default 0)",
    )
    add_training_arguments(parser, grid=False)
    parser.add_argument(
        "--record-params",
        action="store_true",
        help="record the parameters (param_0, param_1) at every logged step (2-D problems)",
    )
    parser.add_argument(
        "--record-layer-grad-norms",
        action="store_true",
        help="record each layer's gradient norm (problems that report them)",
    )
    parser.add_argument(
        "--lr-range-test",
        action="store_true",
        help="instead of training at --lr, ramp the rate exponentially from --min-lr to "
        "--max-lr over --steps steps (default 100) and print the suggested rate",
    )
    parser.add_argument("--min-lr", default="1e-6", metavar="X", help="range test start (1e-6)")
    parser.add_argument("--max-lr", default="10", metavar="X", help="range test end (10)")
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="write the record to PATH, as CSV or Parquet by its suffix (.csv, .parquet)",
    )


def _summary(record, elapsed_label="training"):
    last = record.iloc[-1]
    parts = [
        f"{last['problem']} {last['optimizer']} lr={last['lr']:g}: "
        f"{int(last['step'])} steps ({last['epoch']:.3g} epochs)"
    ]
    if last["diverged"]:
        parts.append(f"diverged at step {int(last['step'])}")
    for column, label in (
        ("full_train_loss", "train loss"),
        ("test_loss", "test loss"),
        ("distance_to_optimum", "distance to optimum"),
    ):
        if not math.isnan(last[column]):
            parts.append(f"{label} {last[column]:.4g}")
    if not math.isnan(last["test_accuracy"]):
        parts.append(f"test accuracy {100 * last['test_accuracy']:.2f}%")
    parts.append(f"{last['wall_time']:.3g} s {elapsed_label}")
    return ", ".join(parts)


def command(args):
    check_table_path(args.out)
    info = runner.resolve_optimizer(args.optimizer)
    runner.resolve_problem_class(args.problem)
    size = batch_size("--batch-size", args.batch_size)
    common = {
        "batch_size": None if size == "full" else size,
        "seed": integer("--seed", args.seed, low=0),
        "optimizer_options": optimizer_options(info, args.opt),
        "problem_options": problem_options(args.problem, args.problem_opt),
    }
    training = training_values(args)
    if args.lr_range_test:
        if args.schedule or args.epochs is not None or args.lr is not None:
            raise UsageError(
                "--lr-range-test sets its own rates and length: use --min-lr, --max-lr, --steps"
            )
        result = runner.lr_range_test(
            info,
            args.problem,
            min_lr=number("--min-lr", args.min_lr, positive=True),
            max_lr=number("--max-lr", args.max_lr, positive=True),
            steps=training["steps"] or 100,
            **common,
        )
        record = result.record
        divergence = (
            "no divergence"
            if result.divergence_lr is None
            else (f"diverged at {result.divergence_lr:.3g}")
        )
        print(
            f"suggested lr {result.lr:.3g} (loss lowest at {result.min_loss_lr:.3g}, "
            f"steepest at {result.steepest_lr:.3g}, {divergence})"
        )
    else:
        record = runner.run(
            info,
            args.problem,
            lr=None if args.lr is None else number("--lr", args.lr),
            schedule=args.schedule,
            schedule_options=schedule_options(args.schedule, args.schedule_opt),
            record_params=args.record_params,
            record_layer_grad_norms=args.record_layer_grad_norms,
            **common,
            **training,
        )
        print(_summary(record))
    if args.out is not None:
        tables.write_table(record, args.out)
        print(f"wrote {len(record)} rows to {args.out}")
    return 0
