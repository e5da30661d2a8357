"""``optbench throughput``: kernel speed against the memory roofline and against the peers.

Prints one table of the hot timings (optimizers and normalization layers, see
:func:`optbench.throughput.table`), one of the rooflines (the STREAM-style kernel of each
access pattern) and the measurement warnings (rows above 1.05 of their roofline), one of the
training steps of whole networks against the same networks in torch (``--training``), one of
the dispatch latencies (hot and after the threads idled) unless ``--no-latency``, the
start-up costs with ``--startup``, and writes every row to ``--out`` as CSV
(:func:`optbench.tables.write_csv`: atomically, floats exact), a path checked
before anything is measured.

Example, the targets of issue 8 (2 threads, float32)::

    optbench throughput --threads 2 --dtypes float32 --sizes 1e4,1e5,1e6,3e7 --out tp.csv
"""

import sys

import pandas as pd

from .. import peers, registry, tables, throughput
from . import UsageError
from ._parsing import check_file_path, comma_list, integer, number


def add_arguments(parser):
    parser.add_argument("--threads", default="2", help="Numba and torch threads (default 2)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"sizes {','.join(map(str, throughput.QUICK_SIZES))}, two norm shapes, 3 rounds",
    )
    parser.add_argument(
        "--optimizers",
        help="comma-separated registry names (default all: "
        + ",".join(registry.names())
        + "); 'none' for none",
    )
    parser.add_argument("--sizes", help="comma-separated total elements, e.g. 1e3,1e5,3e7")
    parser.add_argument("--dtypes", default="float32,float64", help="float32,float64 (default)")
    parser.add_argument(
        "--layouts", default=",".join(throughput.LAYOUTS), help="flat,100 arrays (default both)"
    )
    parser.add_argument("--no-norms", action="store_true", help="skip the normalization layers")
    parser.add_argument(
        "--norms",
        default=",".join(peers.NORMS),
        help="comma-separated normalization layers (default all)",
    )
    parser.add_argument(
        "--norm-shapes", help="comma-separated ROWSxFEATURES, e.g. 32x1024,4096x4096"
    )
    parser.add_argument(
        "--training",
        default=",".join(throughput.TRAINING_PROBLEMS),
        help="comma-separated problems whose training step is timed against torch (default "
        "all of them); 'none' for none",
    )
    parser.add_argument(
        "--batch-sizes", help="comma-separated batch sizes of the training steps (default 32)"
    )
    parser.add_argument(
        "--peers",
        default=",".join(throughput.PEERS),
        help="comma-separated peers to time (default all available); 'none' for none",
    )
    parser.add_argument("--repeats", help="rounds per group (default 5, 3 with --quick)")
    parser.add_argument(
        "--min-batch", help="least seconds per timed batch (default 0.02, 0.005 with --quick)"
    )
    parser.add_argument("--no-latency", action="store_true", help="skip the dispatch latencies")
    parser.add_argument(
        "--startup", action="store_true", help="also time import, first compile and cached load"
    )
    parser.add_argument("--out", help="write every row to this CSV file")


def _size(option, text):
    value = number(option, text, positive=True)
    if value != int(value):
        raise UsageError(f"{option} {text!r}: expected a whole number of elements")
    return int(value)


def _shape(option, text):
    rows, sep, features = text.lower().partition("x")
    if not sep:
        raise UsageError(f"{option} {text!r}: expected ROWSxFEATURES, e.g. 32x1024")
    return (integer(option, rows, low=2), integer(option, features, low=2))


def _choices(option, text, allowed, *, allow_none=False):
    if allow_none and text.strip().lower() == "none":
        return ()
    values = comma_list(option, text)
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise UsageError(
            f"{option}: unknown {', '.join(unknown)}; choose from {', '.join(allowed)}"
        )
    return tuple(values)


def _print_table(title, frame):
    print(title)
    if frame.empty:
        print("  (none)\n")
        return
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(frame.to_string(index=False))
    print()


def command(args):
    check_file_path(args.out)
    names = registry.names()
    optimizers = (
        _choices("--optimizers", args.optimizers, names, allow_none=True)
        if args.optimizers
        else None
    )
    sizes = comma_list("--sizes", args.sizes, _size) if args.sizes else None
    norm_shapes = (
        comma_list("--norm-shapes", args.norm_shapes, _shape) if args.norm_shapes else None
    )
    training = _choices("--training", args.training, throughput.TRAINING_PROBLEMS, allow_none=True)
    batch_sizes = (
        comma_list("--batch-sizes", args.batch_sizes, integer) if args.batch_sizes else None
    )
    options = {
        "threads": integer("--threads", args.threads),
        "optimizers": optimizers,
        "sizes": sizes,
        "dtypes": _choices("--dtypes", args.dtypes, throughput.DTYPES),
        "layouts": _choices("--layouts", args.layouts, throughput.LAYOUTS),
        "norms": not args.no_norms,
        "norm_names": _choices("--norms", args.norms, peers.NORMS),
        "norm_shapes": norm_shapes,
        "training_problems": training,
        "training": bool(training),
        "training_batch_sizes": batch_sizes,
        "peer_names": _choices("--peers", args.peers, throughput.PEERS, allow_none=True),
        "latency": not args.no_latency,
        "quick": args.quick,
        "progress": lambda message: print(message, file=sys.stderr, flush=True),
    }
    if args.repeats:
        options["repeats"] = integer("--repeats", args.repeats)
    if args.min_batch:
        options["min_batch_seconds"] = number("--min-batch", args.min_batch, positive=True)
    frame = throughput.measure(**options)
    environment = frame.iloc[0] if len(frame) else None
    if environment is not None:
        print(
            f"CPU: {environment['cpu']}; Python {environment['python']}, NumPy "
            f"{environment['numpy']}, Numba {environment['numba']} "
            f"({environment['numba_threading_layer'] or 'no parallel run'}), torch "
            f"{environment['torch'] or 'not installed'}; {options['threads']} threads\n"
        )
    _print_table("Throughput (hot, median per call)", throughput.table(frame))
    _print_table(
        "Rooflines (STREAM-style kernels of each access pattern, r: arrays read, u: updated "
        "in place, w: written; in each round the roofline is the better of serial and parallel)",
        throughput.table(frame, kinds=("roofline",)),
    )
    warnings = throughput.roofline_warnings(frame)
    if warnings:
        print(
            f"Measurement warnings: {len(warnings)} rows above {throughput.ROOFLINE_LIMIT} of "
            "their roofline (marked !), which should bound them: not results; measure again"
        )
        print("\n".join(f"  {line}" for line in warnings) + "\n")
    if options["training"]:
        steps = throughput.table(frame, kinds=("training",)).drop(columns=["GB/s", "roof", "n"])
        _print_table("Training step (forward, loss, backward, Adam; median per step)", steps)
    if options["latency"]:
        latency = throughput.table(frame, latency=True)
        _print_table("Dispatch latency (single steps: hot, after sleep, after work)", latency)
    times = None
    if args.startup:
        times = throughput.startup_times()
        print("Start-up (new processes):")
        for key, value in times.items():
            print(f"  {key:32s} {value:.3f} s")
        print()
    _print_table(
        "Targets (float32, optbench, hot medians)",
        throughput.targets(frame, times),
    )
    if args.out:
        tables.write_csv(frame, args.out)
        print(f"wrote {len(frame)} rows to {args.out}")
    return 0
