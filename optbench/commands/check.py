"""``optbench check NAME...``: the conformance suite (``optbench.testing``) of registered
optimizers; exit 0 when every check passes, 1 with one line per failure otherwise."""

import time

from .. import registry, testing
from . import UsageError, _parsing


def add_arguments(parser):
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="optimizers to check (default: all registered)"
    )
    parser.add_argument(
        "--checks",
        help=f"comma-separated checks (default all: {','.join(testing.CHECKS)})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random data (default 0)")


def command(args):
    names = args.names or registry.names()
    specs = [registry.get(name) for name in names]
    checks = list(testing.CHECKS)
    if args.checks is not None:
        checks = _parsing.comma_list("--checks", args.checks, _check_name)
    failed = 0
    for spec in specs:
        start = time.perf_counter()
        failures = testing.run_checks(spec, checks=checks, seed=args.seed)
        seconds = time.perf_counter() - start
        if failures:
            failed += 1
            failed_checks = len({failure.check for failure in failures})
            print(
                f"{spec.name}: {failed_checks} of {len(checks)} checks failed "
                f"({len(failures)} failures, {seconds:.1f} s)"
            )
            for failure in failures:
                print(f"  {failure}")
        else:
            skipped = testing.skipped_checks(spec, checks)
            ran = len(checks) - len(skipped)
            notes = "".join(f", {name} skipped: {why}" for name, why in skipped.items())
            plural = "s" if ran != 1 else ""
            passed = f"{ran} check{plural} passed" if ran else "no check applies"
            print(f"{spec.name}: {passed}{notes} ({seconds:.1f} s)")
    return 1 if failed else 0


def _check_name(option, text):
    if text not in testing.CHECKS:
        raise UsageError(f"{option} {text!r}: choose from {', '.join(testing.CHECKS)}")
    return text
