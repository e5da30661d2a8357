"""The ``optbench`` command line: one sub-command per module, imported only when it runs.

Each command module provides ``add_arguments(parser)`` and ``command(args) -> int``. A bad
value raises :class:`UsageError` (or ``ValueError``/``TypeError`` from the library's own
validation), which ends the program with a one-line message and exit status 2, never a
traceback.
"""

import argparse
import importlib
import sys

from .commands import UsageError

# name -> (module, one-line help); the order is the order of ``optbench --help``
COMMANDS = {
    "run": ("optbench.commands.run", "train one optimizer on one problem, write the log"),
    "sweep": ("optbench.commands.sweep", "optimizers x learning rates x batch sizes x problems"),
    "tune": ("optbench.commands.tune", "a tuning campaign: quasi-random trials in studies"),
    "targets": ("optbench.commands.targets", "rerun the procedure of the fixed targets"),
    "list": ("optbench.commands.listing", "problems, optimizers, schedules and their options"),
    "check": ("optbench.commands.check", "conformance checks of optimizers against their specs"),
    "throughput": ("optbench.commands.throughput", "kernel speed against the memory roofline"),
    "instructions": ("optbench.commands.instructions", "instruction counts under Valgrind"),
    "report": ("optbench.commands.report", "convergence and throughput report (the main job)"),
    "pack": ("optbench.commands.pack", "baseline packs: build, merge, show"),
    "compare": ("optbench.commands.compare", "ratios between two result sets"),
    "regress": ("optbench.commands.regress", "asv comparison of two commits; fails on regressions"),
}


def _parser(argv):
    parser = argparse.ArgumentParser(
        prog="optbench",
        description="Benchmarks of neural-network optimizers and normalization layers.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        # only the requested command's module is imported: `optbench list` stays fast
        if name == wanted:
            module = importlib.import_module(module_name)
            module.add_arguments(command_parser)
            modules[name] = module
    return parser, modules


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, modules = _parser(argv)
    args = parser.parse_args(argv)
    try:
        return modules[args.command].command(args) or 0
    except (UsageError, ValueError, TypeError) as error:
        print(f"optbench {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"optbench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
